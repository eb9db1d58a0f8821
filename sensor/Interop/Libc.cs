using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>The few libc calls the sensor needs, by raw syscall where glibc is too new.</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    internal const int ClockRealtime = 0;
    internal const int ClockBoottime = 7;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Library, EntryPoint = "clock_gettime")]
    internal static partial int ClockGetTime(int clock, out Timespec time);

    [LibraryImport(Library, EntryPoint = "clock_getres")]
    private static partial int ClockGetResolution(int clock, out Timespec resolution);

    /// <summary>
    /// The step of the coarse clock the kernel stamps file times with (a tick:
    /// 4 ms at HZ=250): a file time may lag the moment it records by this much.
    /// </summary>
    internal static readonly long FileTimeStepNs = ClockGetResolution(ClockRealtimeCoarse, out Timespec r) == 0
        ? (r.Seconds * 1_000_000_000) + r.Nanoseconds : 10_000_000;

    private const int ClockRealtimeCoarse = 5;

    [LibraryImport(Library, EntryPoint = "vsnprintf")]
    internal static partial int VsnPrintf(byte* buffer, nuint size, byte* format, nint args);

    [LibraryImport(Library, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string type, nuint flags, nint data);

    [LibraryImport(Library, EntryPoint = "getpid")]
    internal static partial int GetPid();

    [LibraryImport(Library, EntryPoint = "getuid")]
    internal static partial uint GetUid();

    /// <summary>The person behind a command: under sudo, the one who ran sudo.</summary>
    internal static uint PersonUid() =>
        Environment.GetEnvironmentVariable("SUDO_UID") is { } sudo && uint.TryParse(sudo, System.Globalization.CultureInfo.InvariantCulture, out uint uid) ? uid : GetUid();

    /// <summary>Ends the process at once: no finalizers, no flush, no wait for any thread (_exit(2)).</summary>
    [LibraryImport(Library, EntryPoint = "_exit")]
    internal static partial void Exit(int status);

    /// <summary>write(2), errno kept (Marshal.GetLastPInvokeError).</summary>
    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "sysconf")]
    internal static partial long SysConf(int name);

    internal const int ScClockTicks = 2;

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4);

    internal const long SysCapget = 125;

    internal static long NowNs(int clock)
    {
        ClockGetTime(clock, out Timespec t);
        return (t.Seconds * 1_000_000_000) + t.Nanoseconds;
    }

    internal static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [LibraryImport(Library, EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, byte* buffer);

    /// <summary>statx(2) into <paramref name="buffer"/> (struct statx, 256 bytes); 0, or -1 with errno.</summary>
    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Library, EntryPoint = "geteuid")]
    internal static partial uint GetEuid();

    /// <summary>The uid that owns a path (not following a final symlink), or null when it cannot be read.</summary>
    internal static uint? OwnerOf(string path)
    {
        const int AtFdCwd = -100;
        const int AtSymlinkNoFollow = 0x100;
        const uint StatxUid = 0x8;
        // struct statx is the same on every architecture: stx_uid at byte 20 of 256.
        byte* buffer = stackalloc byte[256];
        return Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxUid, buffer) == 0 ? *(uint*)(buffer + 20) : null;
    }

    /// <summary>The major and minor of the character device at <paramref name="path"/> (symlinks followed); null when it cannot be read or is not a character device.</summary>
    internal static (uint Major, uint Minor)? CharacterDeviceOf(string path)
    {
        const int AtFdCwd = -100;
        const uint StatxType = 0x1;
        const ushort FileType = 0xF000, CharacterDevice = 0x2000; // S_IFMT, S_IFCHR
        // struct statx (include/uapi/linux/stat.h): stx_mode at 28, stx_rdev_major/minor at 128/132.
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0 || (*(ushort*)(buffer + 28) & FileType) != CharacterDevice)
            return null;
        return (*(uint*)(buffer + 128), *(uint*)(buffer + 132));
    }

    /// <summary>The inode number of a path, or null when it cannot be read.</summary>
    internal static ulong? InodeOf(string path)
    {
        // struct stat on x86-64 and arm64: st_dev then st_ino, both 8 bytes.
        byte* buffer = stackalloc byte[256];
        return Stat(path, buffer) == 0 ? *(ulong*)(buffer + 8) : null;
    }
}
