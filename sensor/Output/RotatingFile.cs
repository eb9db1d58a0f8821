using System.IO.Compression;
using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Output;

/// <summary>When a log file is rotated, and how many compressed backups are kept.</summary>
/// <param name="MaxBytes">Rotate before the file would pass this many bytes; 0: never by size.</param>
/// <param name="MaxAge">Rotate once the file is this old (since its first line, or since this process opened it where the file system keeps no birth time); null: never by age.</param>
/// <param name="Backups">How many rotated files are kept, PATH.1.gz (newest) to PATH.N.gz; 0 keeps none.</param>
public sealed record FileRotation(long MaxBytes, TimeSpan? MaxAge, int Backups)
{
    /// <summary>No rotation at all: for a file logrotate rotates (and SIGHUP reopens).</summary>
    public static FileRotation None { get; } = new(0, null, 0);

    /// <summary>Whether this file is rotated by Guard at all.</summary>
    public bool Rotates => MaxBytes > 0 || MaxAge is not null;
}

/// <summary>
/// A log file of whole lines, rotated by size and age into gzip-compressed
/// backups (PATH.1.gz newest to PATH.N.gz), mode 0600 throughout, that
/// several processes may append to at once (<see cref="AppendFile"/>): writers
/// hold a shared flock while they write, a rotation takes the exclusive one
/// on the file and a lock on its directory, so a rotation never cuts a write
/// and two rotations never run at once. A line is never split across files:
/// a write that would pass the size limit is cut at a line's end.
///
/// Why this is ours and not a library's: the well-kept .NET file sinks
/// (Serilog.Sinks.File, NLog's file target) write their own event objects
/// through their own pipelines, keep no gzip backups without further
/// plug-ins, cannot create files 0600, do not reopen on SIGHUP, and do not
/// rotate safely under several appending processes; what is needed here is a
/// few hundred lines over open(O_APPEND), flock and System.IO.Compression.
/// </summary>
public sealed class RotatingFile : IDisposable
{
    private readonly FileRotation rotation;
    private readonly string directory;
    private AppendFile? file;
    private DateTime bornUtc;
    // The compression of the latest backup, holding the directory's lock until it is done.
    private Task? compressing;
    private bool recovered;

    /// <summary>A file at <paramref name="path"/> (made on the first write, with its directory), rotated as <paramref name="rotation"/> says.</summary>
    public RotatingFile(string path, FileRotation rotation)
    {
        Path = System.IO.Path.GetFullPath(path);
        this.rotation = rotation;
        directory = System.IO.Path.GetDirectoryName(Path)!;
    }

    /// <summary>The file's path; backups are PATH.1.gz, PATH.2.gz, ...</summary>
    public string Path { get; }

    /// <summary>The latest write error ("No space left on device"); null once a write succeeds again.</summary>
    public string? LastError { get; private set; }

    /// <summary>The path of backup <paramref name="n"/> (1 newest).</summary>
    public string Backup(int n) => $"{Path}.{n}.gz";

    /// <summary>
    /// Appends <paramref name="lines"/> (whole lines, each ending in '\n') and
    /// rotates as the limits say; returns how many lines could not be written
    /// (0 normally; see <see cref="LastError"/>). A line cut short by a full
    /// disk is taken back, so the file holds only whole lines.
    /// </summary>
    public int Append(ReadOnlySpan<byte> lines)
    {
        while (!lines.IsEmpty)
        {
            AppendFile f;
            FileStatus status;
            try
            {
                f = Current();
                f.LockForWriting();
                if (!f.IsAt())
                {
                    // Renamed away by a rotation in another process, or by logrotate: follow the path.
                    Close();
                    continue;
                }
                status = f.Status();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Close();
                LastError = e.Message;
                return Count(lines);
            }
            int take = lines.Length;
            bool full = false;
            if (rotation.MaxBytes > 0 && status.Size + lines.Length > rotation.MaxBytes)
            {
                int room = (int)Math.Clamp(rotation.MaxBytes - status.Size, 0, lines.Length);
                take = lines[..room].LastIndexOf((byte)'\n') + 1;
                if (take == 0 && status.Size > 0)
                {
                    // Not one more line fits: rotate first.
                    f.Unlock();
                    Rotate(f);
                    continue;
                }
                // An empty file takes its first line whatever its length.
                if (take == 0)
                    take = lines.IndexOf((byte)'\n') + 1 is int end and > 0 ? end : lines.Length;
                full = true;
            }
            int written = f.Write(lines[..take], out int errno);
            if (written < take)
            {
                int whole = lines[..written].LastIndexOf((byte)'\n') + 1;
                if (written > whole)
                    f.TakeBack(written - whole);
                f.Unlock();
                LastError = $"cannot write {Path}: {Libc.ErrorText(errno)}";
                return Count(lines[whole..]);
            }
            f.Unlock();
            LastError = null;
            lines = lines[take..];
            if (full)
                Rotate(f);
        }
        return 0;
    }

    /// <summary>Rotates the file if it is older than the limit and holds anything; called now and then by the writer.</summary>
    public void RotateIfOld(DateTime utcNow)
    {
        if (rotation.MaxAge is not { } age || file is null || utcNow - bornUtc < age)
            return;
        try
        {
            if (file.IsAt() && file.Status().Size > 0)
                Rotate(file);
        }
        catch (IOException e)
        {
            LastError = e.Message;
        }
    }

    /// <summary>Closes the file; the next write opens whatever is at the path then (SIGHUP after logrotate moved it).</summary>
    public void Reopen() => Close();

    /// <summary>Waits for the latest backup's compression to finish (tests; a stop need not: the next start finishes it).</summary>
    public void WaitForCompression() => compressing?.Wait();

    /// <summary>Closes the file. A compression under way goes on; if the process ends first, the next open finishes it.</summary>
    public void Dispose() => Close();

    private AppendFile Current()
    {
        if (file is not null)
            return file;
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Guard runs on Linux");
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (!recovered && rotation.Rotates)
        {
            recovered = true;
            FinishInterruptedRotation();
        }
        file = AppendFile.Open(Path);
        bornUtc = file.Status().Size > 0 && file.BornUtc() is { } born && born <= DateTime.UtcNow ? born : DateTime.UtcNow;
        return file;
    }

    private void Close()
    {
        file?.Dispose();
        file = null;
    }

    /// <summary>
    /// Moves the full file to PATH.1 (the older backups one up, the oldest
    /// gone), and compresses it to PATH.1.gz on a thread of its own while
    /// writing goes on into a new file. The directory's lock is held from the
    /// shift to the end of the compression: a rotation elsewhere waits.
    /// </summary>
    private void Rotate(AppendFile f)
    {
        WaitForCompression();
        FileDescriptor directoryLock;
        try
        {
            directoryLock = AppendFile.LockDirectory(directory);
        }
        catch (IOException e)
        {
            LastError = e.Message;
            return;
        }
        bool handedOn = false;
        try
        {
            f.LockForRotation();
            // Someone else rotated it while this process waited.
            if (!f.IsAt() || f.Status().Size == 0)
                return;
            if (rotation.Backups == 0)
            {
                File.Delete(Path);
                return;
            }
            // A compression that failed left PATH.1: it becomes PATH.1.gz before the shift, or the rotation waits.
            string uncompressed = Path + ".1";
            if (File.Exists(uncompressed))
                Compress(uncompressed, Backup(1));
            for (int n = rotation.Backups - 1; n >= 1; n--)
            {
                if (File.Exists(Backup(n)))
                    File.Move(Backup(n), Backup(n + 1), overwrite: true);
            }
            File.Move(Path, uncompressed);
            // Closed first: the compression reads a file no descriptor of this process still writes or locks.
            Close();
            compressing = Task.Run(() =>
            {
                try
                {
                    Compress(uncompressed, Backup(1));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    LastError = e.Message; // PATH.1 stays, uncompressed: the next rotation or start compresses it
                }
                finally
                {
                    directoryLock.Dispose();
                }
            });
            handedOn = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LastError = e.Message;
        }
        finally
        {
            if (!handedOn)
                directoryLock.Dispose();
            Close(); // releases the exclusive lock: writers waiting on it see the file moved and follow the path
            bornUtc = DateTime.UtcNow;
        }
    }

    /// <summary>A rotation that a crash cut short left PATH.1 uncompressed: compress it now (its content is whole; PATH.1.gz, if there, is the same or older).</summary>
    private void FinishInterruptedRotation()
    {
        string uncompressed = Path + ".1";
        if (!File.Exists(uncompressed))
            return;
        using FileDescriptor directoryLock = AppendFile.LockDirectory(directory);
        if (File.Exists(uncompressed))
            Compress(uncompressed, Backup(1));
    }

    /// <summary>gzip <paramref name="source"/> into <paramref name="target"/> (mode 0600, 0640 in a shared directory; through a temporary name), then removes the source.</summary>
    private static void Compress(string source, string target)
    {
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Guard runs on Linux");
        string temporary = target + ".tmp";
        // Read through a plain descriptor: .NET's FileStream takes an flock of its own, which a writer's lock refuses.
        using FileDescriptor input = FileDescriptor.TryOpenReadOnly(source, out int errno)
            ?? throw new IOException($"cannot open {source}: {Libc.ErrorText(errno)}");
        using (var output = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            BufferSize = 1 << 16,
        }))
        {
            // The backup is read by whoever reads the file: the group too where the directory is shared (the umask aside).
            if (SharedDirectory.GroupOf(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(target)) ?? "/") is not null)
                SharedDirectory.Fit((int)output.SafeFileHandle.DangerousGetHandle(), System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(target)) ?? "/", target);
            using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
            {
                byte[] buffer = new byte[1 << 16];
                int n;
                while ((n = input.Read(buffer)) != 0)
                {
                    if (n < 0)
                        throw new IOException($"cannot read {source}: {Libc.ErrorText(-n)}");
                    gzip.Write(buffer, 0, n);
                }
            }
            output.Flush(flushToDisk: true);
        }
        File.Move(temporary, target, overwrite: true);
        File.Delete(source);
    }

    private static int Count(ReadOnlySpan<byte> lines)
    {
        int n = lines.Count((byte)'\n');
        return lines.Length > 0 && lines[^1] != (byte)'\n' ? n + 1 : n;
    }

    /// <summary>The lines of a backup, decompressed, for readers (guard status, tests).</summary>
    public static IEnumerable<string> ReadBackup(string gzPath)
    {
        using var input = new FileStream(gzPath, FileMode.Open, FileAccess.Read);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
            yield return line;
    }
}
