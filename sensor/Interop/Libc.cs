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

    [LibraryImport(Library, EntryPoint = "sysconf")]
    internal static partial long SysConf(int name);

    internal const int ScClockTicks = 2;

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4);

    internal const long SysCapget = 125;

    internal const int EpollCloexec = 0x80000;
    internal const int EpollCtlAdd = 1;
    internal const uint EpollIn = 1;
    internal const int EfdCloexec = 0x80000;
    internal const int EfdNonblock = 0x800;

    /// <summary>struct epoll_event: packed on x86-64 (12 bytes), naturally aligned (16) elsewhere.</summary>
    internal static int EpollEventSize => System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64 ? 12 : 16;

    [LibraryImport(Library, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate1(int flags);

    [LibraryImport(Library, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static partial int EpollCtl(int epollFd, int operation, int fd, byte* epollEvent);

    [LibraryImport(Library, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static partial int EpollWait(int epollFd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport(Library, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initial, int flags);

    [LibraryImport(Library, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buffer, nuint count);

    internal static long NowNs(int clock)
    {
        ClockGetTime(clock, out Timespec t);
        return (t.Seconds * 1_000_000_000) + t.Nanoseconds;
    }

    internal static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [LibraryImport(Library, EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, byte* buffer);

    /// <summary>
    /// The device (as the kernel encodes dev_t: major &lt;&lt; 20 | minor) and inode
    /// of what a path names, following links as exec does; null when it cannot be read.
    /// </summary>
    internal static (uint Device, ulong Inode)? FileIdOf(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (Stat(path, buffer) != 0)
            return null;
        ulong dev = *(ulong*)buffer;
        // glibc's encoding of st_dev, undone into the kernel's.
        ulong major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFFUL);
        ulong minor = (dev & 0xFF) | ((dev >> 12) & ~0xFFUL);
        return ((uint)((major << 20) | (minor & 0xFFFFF)), *(ulong*)(buffer + 8));
    }

    [LibraryImport(Library, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

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

    /// <summary>The inode number of a path, or null when it cannot be read.</summary>
    internal static ulong? InodeOf(string path)
    {
        // struct stat on x86-64 and arm64: st_dev then st_ino, both 8 bytes.
        byte* buffer = stackalloc byte[256];
        return Stat(path, buffer) == 0 ? *(ulong*)(buffer + 8) : null;
    }
}
