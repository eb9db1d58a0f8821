using System.Globalization;
using System.Text;

namespace Guard.Sensor.Processes;

/// <summary>/proc/PID/stat: enough to place a process in the tree.</summary>
public readonly record struct ProcfsStat(int Pid, int ParentPid, long StartTicks, byte[] Name, bool IsKernelThread);

/// <summary>The rest of what /proc says of a process, read when it is first shown.</summary>
public readonly record struct ProcfsDetails(byte[] Executable, byte[] Args, uint Uid, string? CgroupPath, string? WorkingDirectory)
{
    /// <summary>The arguments went on past <see cref="ProcfsReader.ArgsLimit"/>: <see cref="Args"/> is their start.</summary>
    public bool ArgsTruncated { get; init; }
}

/// <summary>Span-based readers for /proc/PID files; a process that vanished mid-read is simply skipped.</summary>
public static class ProcfsReader
{
    /// <summary>PF_KTHREAD in /proc/PID/stat's flags (include/linux/sched.h).</summary>
    public const uint PfKthread = 0x00200000;

    /// <summary>The most of /proc/PID/cmdline read (64 KiB): arguments past it are cut, and said to be.</summary>
    public const int ArgsLimit = 64 << 10;

    public static IEnumerable<int> Pids(string proc = "/proc")
    {
        foreach (string dir in Directory.EnumerateDirectories(proc))
        {
            if (int.TryParse(Path.GetFileName(dir.AsSpan()), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                yield return pid;
        }
    }

    /// <summary>Whether the process with this pid is the one that started at <paramref name="startTicks"/> (clock ticks since boot), not a reuse of its pid.</summary>
    public static bool IsRunning(int pid, long startTicks) => TryReadStat(pid, out ProcfsStat stat) && stat.StartTicks == startTicks;

    public static bool TryReadStat(int pid, out ProcfsStat stat)
    {
        stat = default;
        try
        {
            byte[] bytes = File.ReadAllBytes($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            if (!TryParseStat(bytes, out byte[] name, out int ppid, out long start, out uint flags))
                return false;
            stat = new ProcfsStat(pid, ppid, start, name, (flags & PfKthread) != 0);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Every process /proc shows now, by pid; one that vanished mid-read is left out.</summary>
    public static Dictionary<int, ProcfsStat> Stats()
    {
        var stats = new Dictionary<int, ProcfsStat>();
        foreach (int pid in Pids())
        {
            if (TryReadStat(pid, out ProcfsStat stat))
                stats[pid] = stat;
        }
        return stats;
    }

    /// <summary>The thread ids of process <paramref name="pid"/> (/proc/PID/task); empty once it is gone.</summary>
    public static List<int> Threads(int pid)
    {
        var tids = new List<int>();
        try
        {
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/task"))
            {
                if (int.TryParse(Path.GetFileName(task), NumberStyles.None, CultureInfo.InvariantCulture, out int tid))
                    tids.Add(tid);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Gone while we read: the threads seen stand.
        }
        return tids;
    }

    /// <summary>
    /// Whether no thread of <paramref name="pid"/> can run on: each stopped
    /// (T), traced (t), a zombie or dead, as /proc/PID/task/*/stat says; true
    /// once the process is gone. A thread inside fork() finishes it first.
    /// </summary>
    public static bool AllThreadsStopped(int pid)
    {
        try
        {
            foreach (string task in Directory.EnumerateDirectories($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/task"))
            {
                byte[] stat = ReadOrEmpty(Path.Join(task, "stat"));
                int close = stat.AsSpan().LastIndexOf((byte)')');
                if (close < 0 || close + 2 >= stat.Length)
                    continue; // it left while we read
                if (stat[close + 2] is not ((byte)'T' or (byte)'t' or (byte)'Z' or (byte)'X'))
                    return false;
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true; // gone
        }
    }

    public static bool TryReadDetails(int pid, out ProcfsDetails details)
    {
        details = default;
        string dir = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}";
        try
        {
            byte[] args = ReadArgs($"{dir}/cmdline", out bool truncated);
            details = new ProcfsDetails(ReadLink($"{dir}/exe"), args, ReadUid(dir), ReadCgroupPath(dir), ReadLinkText($"{dir}/cwd")) { ArgsTruncated = truncated };
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Parses /proc/PID/stat: the name sits in the last parentheses, so a ')' in it is safe.</summary>
    public static bool TryParseStat(ReadOnlySpan<byte> stat, out byte[] name, out int ppid, out long startTicks, out uint flags)
    {
        bool parsed = TryParseStat(stat, out Range nameRange, out ppid, out startTicks, out flags);
        name = parsed ? stat[nameRange].ToArray() : [];
        return parsed;
    }

    /// <summary>Parses /proc/PID/stat as <see cref="TryParseStat(ReadOnlySpan{byte}, out byte[], out int, out long, out uint)"/> does, allocating nothing: the name is where <paramref name="name"/> says in <paramref name="stat"/>.</summary>
    public static bool TryParseStat(ReadOnlySpan<byte> stat, out Range name, out int ppid, out long startTicks, out uint flags)
    {
        name = default;
        ppid = 0;
        startTicks = 0;
        flags = 0;
        int open = stat.IndexOf((byte)'(');
        int close = stat.LastIndexOf((byte)')');
        if (open < 0 || close < open)
            return false;
        name = (open + 1)..close;
        ReadOnlySpan<byte> rest = stat[(close + 1)..];
        // Fields after the name, counting from 3 (state).
        int field = 2;
        foreach (Range r in rest.Split((byte)' '))
        {
            ReadOnlySpan<byte> token = rest[r];
            if (token.IsEmpty)
                continue;
            field++;
            switch (field)
            {
                case 4:
                    if (!System.Buffers.Text.Utf8Parser.TryParse(token, out ppid, out _))
                        return false;
                    break;
                case 9:
                    if (!System.Buffers.Text.Utf8Parser.TryParse(token, out flags, out _))
                        return false;
                    break;
                case 22:
                    return System.Buffers.Text.Utf8Parser.TryParse(token, out startTicks, out _);
            }
        }
        return false;
    }

    /// <summary>
    /// /proc/PID/cmdline whole, up to <see cref="ArgsLimit"/> bytes (a miner's
    /// flag past the 1,024 an exec record keeps is read here), its final NUL
    /// dropped; <paramref name="truncated"/> when there was more. Empty when gone.
    /// </summary>
    public static byte[] ReadArgs(string path, out bool truncated)
    {
        truncated = false;
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ArgsLimit + 1);
        try
        {
            int length = ReadStart(path, buffer.AsSpan(0, ArgsLimit + 1));
            truncated = length > ArgsLimit;
            length = Math.Min(length, ArgsLimit);
            if (!truncated && length > 0 && buffer[length - 1] == 0)
                length--;
            return buffer.AsSpan(0, length).ToArray();
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static byte[] ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (IOException)
        {
            return [];
        }
    }

    private static byte[] ReadLink(string path) => ReadLinkText(path) is { } text ? Encoding.UTF8.GetBytes(text) : [];

    private static string? ReadLinkText(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The real uid on /proc/PID/status's "Uid:" line; 0 when it cannot be read.
    /// Read into a pooled buffer and parsed as bytes: the sensor reads this for
    /// every process on the host at start (10,000 and more), and a StreamReader
    /// and a string per line would leave megabytes for the collector each time.
    /// </summary>
    private static uint ReadUid(string dir)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(SmallFileLimit);
        try
        {
            ReadOnlySpan<byte> text = buffer.AsSpan(0, ReadStart($"{dir}/status", buffer));
            int at = text.IndexOf("\nUid:"u8);
            if (at < 0)
                return 0;
            ReadOnlySpan<byte> rest = text[(at + 5)..].TrimStart("\t "u8);
            return System.Buffers.Text.Utf8Parser.TryParse(rest, out uint uid, out _) ? uid : 0;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The most of a small /proc file (status, cgroup) read: 16 KiB, past any status and a cgroup path at PATH_MAX.</summary>
    private const int SmallFileLimit = 16 << 10;

    /// <summary>Reads the start of <paramref name="path"/> into <paramref name="buffer"/>; returns how many bytes.</summary>
    /// <exception cref="IOException">The file cannot be opened or read (the process is gone).</exception>
    private static int ReadStart(string path, Span<byte> buffer)
    {
        using Microsoft.Win32.SafeHandles.SafeFileHandle file = File.OpenHandle(path);
        int length = 0, n;
        while (length < buffer.Length && (n = RandomAccess.Read(file, buffer[length..], length)) > 0)
            length += n;
        return length;
    }

    /// <summary>The cgroup v2 path of process <paramref name="pid"/> (its leader's), or null once it is gone.</summary>
    public static string? TryReadCgroupPath(int pid)
    {
        try
        {
            return ReadCgroupPath($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The cgroup v2 path ("0::/path") of a process; null when it has none.</summary>
    /// <exception cref="IOException">The file cannot be read (the process is gone).</exception>
    public static string? ReadCgroupPath(string dir)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(SmallFileLimit);
        try
        {
            ReadOnlySpan<byte> text = buffer.AsSpan(0, ReadStart($"{dir}/cgroup", buffer));
            int at = text.StartsWith("0::"u8) ? 0 : text.IndexOf("\n0::"u8) is >= 0 and int i ? i + 1 : -1;
            if (at < 0)
                return null;
            ReadOnlySpan<byte> line = text[(at + 3)..];
            int end = line.IndexOf((byte)'\n');
            return Encoding.UTF8.GetString(end < 0 ? line : line[..end]);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static string? ReadWorkingDirectory(int pid) => ReadLinkText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cwd");
}
