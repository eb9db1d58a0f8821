using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>
/// A process handle that cannot be confused with a later process of the same
/// pid. Raw syscalls (pidfd_open 434, pidfd_send_signal 424) so glibc older
/// than 2.36 works.
/// </summary>
public sealed unsafe partial class Pidfd : IDisposable
{
    private const long SysPidfdOpen = 434;
    private const long SysPidfdSendSignal = 424;
    private const long SysPidfdGetfd = 438;

    private readonly FileDescriptor fd;

    private Pidfd(FileDescriptor fd, int pid)
    {
        this.fd = fd;
        Pid = pid;
    }

    /// <summary>The pid the handle was opened on.</summary>
    public int Pid { get; }

    /// <summary>Opens a handle on whatever process holds <paramref name="pid"/> now; errno on failure.</summary>
    public static Pidfd? TryOpen(int pid, out int errno)
    {
        long fd = Libc.Syscall(SysPidfdOpen, pid, 0, 0, 0);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new Pidfd(new FileDescriptor((int)fd), pid);
    }

    /// <summary>Sends a signal to exactly the process this handle was opened on; errno on failure (ESRCH: it has exited).</summary>
    public int Signal(int signal)
    {
        long rc = Libc.Syscall(SysPidfdSendSignal, fd.Fd, signal, 0, 0);
        return rc == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>A descriptor of ours for the process's descriptor <paramref name="targetFd"/> (pidfd_getfd, Linux 5.6); null when it cannot be had.</summary>
    public FileDescriptor? DuplicateFd(int targetFd)
    {
        long dup = Libc.Syscall(SysPidfdGetfd, fd.Fd, targetFd, 0, 0);
        return dup < 0 ? null : new FileDescriptor((int)dup);
    }

    /// <summary>The process's socket descriptors (from /proc/PID/fd), each duplicated into this process; empty once it has exited.</summary>
    public List<FileDescriptor> DuplicateSockets() => DuplicateSockets(int.MaxValue, out _);

    /// <summary>
    /// At most <paramref name="max"/> of the process's socket descriptors, each
    /// duplicated into this process; <paramref name="all"/> is false when it holds more.
    /// The caller disposes what it gets.
    /// </summary>
    public List<FileDescriptor> DuplicateSockets(int max, out bool all)
    {
        var sockets = new List<FileDescriptor>();
        var links = new List<(int Fd, ulong Inode)>();
        // A process gone, or closing descriptors while we read: what was read stands.
        FdLinks.ReadSockets($"/proc/{Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/fd", links, int.MaxValue);
        all = links.Count <= max;
        foreach ((int fd, _) in links.Take(max))
        {
            if (DuplicateFd(fd) is { } ours)
                sockets.Add(ours);
        }
        return sockets;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for the process to exit (a zombie has exited); true when it has.</summary>
    public bool WaitExit(int timeoutMs)
    {
        var poll = new PollFd { Fd = fd.Fd, Events = PollIn };
        return Poll(&poll, 1, timeoutMs) > 0;
    }

    /// <summary>Whether the process has exited (a zombie has), asked now without waiting.</summary>
    public bool HasExited => WaitExit(0);

    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll")]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>Closes the handle; the process is not signalled.</summary>
    public void Dispose() => fd.Dispose();
}
