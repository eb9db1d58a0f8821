using System.Globalization;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>One mount: its file system type and its superblock's device (kernel encoding, major &lt;&lt; 20 | minor).</summary>
public readonly record struct Mount(string FileSystem, uint Device)
{
    /// <summary>
    /// FUSE (fuse, fuse.*, fuseblk): a file system any user can serve. A request
    /// its daemon reads and never answers cannot be interrupted, not even by
    /// SIGKILL: the asking thread, and its process's exit, wait for good.
    /// </summary>
    public bool ServedByAUser => FileSystem is "fuse" or "fuseblk" || FileSystem.StartsWith("fuse.", StringComparison.Ordinal);
}

/// <summary>The mounts of one mount namespace by mount id, as /proc/PID/mountinfo lists them when read.</summary>
public sealed class MountTable
{
    private readonly Dictionary<ulong, Mount> byId;

    private MountTable(Dictionary<ulong, Mount> byId) => this.byId = byId;

    /// <summary>The mount namespace of /proc/<paramref name="procDir"/> ("self", or a pid); empty when it cannot be read.</summary>
    public static MountTable Read(string procDir)
    {
        var byId = new Dictionary<ulong, Mount>();
        try
        {
            foreach (string line in File.ReadLines($"/proc/{procDir}/mountinfo"))
            {
                // "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw": id, parent, major:minor, ..., "-", type.
                string[] f = line.Split(' ');
                int dash = Array.IndexOf(f, "-", 6);
                int colon = f.Length > 2 ? f[2].IndexOf(':', StringComparison.Ordinal) : -1;
                if (dash < 0 || dash + 1 >= f.Length || colon <= 0
                    || !ulong.TryParse(f[0], CultureInfo.InvariantCulture, out ulong id)
                    || !uint.TryParse(f[2].AsSpan(0, colon), CultureInfo.InvariantCulture, out uint major)
                    || !uint.TryParse(f[2].AsSpan(colon + 1), CultureInfo.InvariantCulture, out uint minor))
                    continue;
                byId[id] = new Mount(f[dash + 1], FileStatus.KernelDevice(major, minor));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return new MountTable(byId);
    }

    /// <summary>The mount with this id (statx's stx_mnt_id), or null when this namespace has none.</summary>
    public Mount? Find(ulong mountId) => byId.TryGetValue(mountId, out Mount m) ? m : null;
}
