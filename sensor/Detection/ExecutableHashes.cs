using Guard.Sensor.Interop;

namespace Guard.Sensor.Detection;

/// <summary>
/// SHA-256 of executable files, each hashed once per inode, size and
/// modification time, shared by the deny list, the allow list and the
/// known-miner evidence.
/// </summary>
public sealed class ExecutableHashes
{
    private const long MaxHashedBytes = 256L << 20;
    private readonly Dictionary<(ulong Inode, long Size, DateTime Modified), string> hashes = [];

    /// <summary>The lower-case hex SHA-256 of the file, or null when it cannot be read (or is over 256 MB).</summary>
    public string? Of(string path)
    {
        try
        {
            var file = new FileInfo(path);
            if (!file.Exists || file.Length > MaxHashedBytes || Libc.InodeOf(path) is not ulong inode)
                return null;
            var key = (inode, file.Length, file.LastWriteTimeUtc);
            if (!hashes.TryGetValue(key, out string? hash))
            {
                using FileStream stream = file.OpenRead();
                hash = Sha256.HexOf(stream);
                hashes[key] = hash;
            }
            return hash;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The executable's path as it can be opened: relative ones from the process's working directory.</summary>
    public static string PathOf(Processes.ProcessEntry process)
    {
        string path = process.ExecutableText;
        return !path.StartsWith('/') && process.WorkingDirectory is { } cwd ? Path.Join(cwd, path) : path;
    }
}
