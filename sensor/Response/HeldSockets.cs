using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>
/// The sockets a held process has open, marked in the kernel (quarantine_socks)
/// through a duplicate of each descriptor (pidfd_getfd), so egress drops what
/// would still leave on them: its own, one it was passed, one made outside a
/// held cgroup.
/// </summary>
internal static class HeldSockets
{
    /// <summary>Marks every socket <paramref name="process"/> has open for hold <paramref name="id"/>; returns how many were not marked before.</summary>
    public static int Mark(QuarantineKernel kernel, Pidfd process, ulong id)
    {
        int marked = 0;
        foreach (FileDescriptor socket in process.DuplicateSockets())
        {
            using (socket)
            {
                if (kernel.MarkSocket(socket.Fd, id))
                    marked++;
            }
        }
        return marked;
    }

    /// <summary>Marks the sockets of each process <paramref name="pids"/> names that is still running (opened by pid: a cgroup's members, listed just now); returns how many were not marked before.</summary>
    public static int MarkAll(QuarantineKernel kernel, IEnumerable<int> pids, ulong id)
    {
        int marked = 0;
        foreach (int pid in pids)
        {
            using Pidfd? process = Pidfd.TryOpen(pid, out _);
            if (process is not null)
                marked += Mark(kernel, process, id);
        }
        return marked;
    }
}
