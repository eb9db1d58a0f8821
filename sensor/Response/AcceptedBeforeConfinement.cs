using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>
/// The TCP sockets a cgroup job accepted before it was confined. From its
/// confinement on, the kernel marks each socket the job accepts as it is
/// established (bpf/confine.bpf.c guard_confine_sockops); one accepted
/// before has no mark, and egress would judge it as outbound, from its peer.
/// The sensor, once the job's programs are attached (so nothing accepted in
/// between is missed), finds them with sock_diag in each network namespace
/// the job's processes are in: a socket of the job's cgroup (or one below
/// it) in a connected state whose local port a listener of that namespace
/// holds, and which the job's connect program did not judge; and marks them
/// by cookie (confine_inbound). The kernel keeps no sign of how a socket
/// opened once it is established, so a socket the job connected from its
/// listener's port before it was confined is taken for accepted here.
/// </summary>
public static class AcceptedBeforeConfinement
{
    /// <summary>How long one sock_diag read may wait, ms.</summary>
    public const int DiagTimeoutMs = 200;

    /// <summary>Network namespaces read at most per job: a job in more is marked in part.</summary>
    public const int MaxNamespaces = 16;

    /// <summary>
    /// TCP states (include/net/tcp_states.h) in which a socket still sends: established (1),
    /// FIN_WAIT1 (4), FIN_WAIT2 (5), CLOSE_WAIT (8), LAST_ACK (9), CLOSING (11). A child still
    /// in SYN_RECV is marked by the kernel when it is established.
    /// </summary>
    private const uint ConnectedStates = (1u << 1) | (1u << 4) | (1u << 5) | (1u << 8) | (1u << 9) | (1u << 11);

    /// <summary>
    /// Marks the sockets the job of cgroup directory <paramref name="jobDirectory"/>
    /// accepted before it was confined; returns the cookies marked. Runs on a thread
    /// of its own (it enters the job's network namespaces), bounded in namespaces and
    /// time. Shortfalls (a namespace that cannot be read, a dump cut short) are added
    /// to <paramref name="shortfalls"/>; a socket not marked is judged as outbound.
    /// </summary>
    public static List<ulong> Mark(ConfineKernel kernel, string jobDirectory, List<string> shortfalls)
    {
        var marked = new List<ulong>();
        var found = new List<string>();
        var thread = new Thread(() => MarkOnThisThread(kernel, jobDirectory, marked, found)) { IsBackground = true, Name = "guard-accepted" };
        thread.Start();
        bool ended = thread.Join(TimeSpan.FromSeconds(5));
        lock (found)
        {
            if (!ended)
                found.Add("the search for its accepted sockets ran out of time (5 s)");
            shortfalls.AddRange(found);
        }
        lock (marked)
            return [.. marked];
    }

    private static void MarkOnThisThread(ConfineKernel kernel, string jobDirectory, List<ulong> marked, List<string> shortfalls)
    {
        try
        {
            HashSet<ulong> cgroups = CgroupIds(jobDirectory);
            using var namespaces = new NetworkNamespaces();
            foreach (FileDescriptor ns in NamespacesOf(jobDirectory, shortfalls))
            {
                using (ns)
                {
                    using SockDiag diag = namespaces.OpenDiag(ns, DiagTimeoutMs);
                    foreach (ulong cookie in Accepted(diag, cgroups, kernel, shortfalls))
                    {
                        kernel.MarkAccepted(cookie);
                        lock (marked)
                            marked.Add(cookie);
                    }
                }
            }
        }
        catch (Exception e) when (e is SensorException or StrandedThreadException or IOException or UnauthorizedAccessException)
        {
            lock (shortfalls)
                shortfalls.Add($"its accepted sockets could not all be read: {e.Message}");
        }
    }

    /// <summary>The job's sockets in <paramref name="diag"/>'s namespace that sit on a listener's port and were not judged at a connect.</summary>
    private static IEnumerable<ulong> Accepted(SockDiag diag, HashSet<ulong> cgroups, ConfineKernel kernel, List<string> shortfalls)
    {
        var listenerPorts = new HashSet<int>();
        var sockets = new List<InetDiagSocket>();
        foreach (ushort family in new[] { (ushort)Sockets.AfInet, (ushort)Sockets.AfInet6 })
        {
            listenerPorts.UnionWith(diag.TcpListeners(family, out bool allListeners).Select(l => l.Local.Port));
            sockets.AddRange(diag.TcpSockets(family, ConnectedStates, out bool allSockets));
            if (!allListeners || !allSockets)
            {
                lock (shortfalls)
                    shortfalls.Add($"a network namespace holds more than {SockDiag.MaxDumped} TCP sockets of one kind; the first were read");
            }
        }
        return sockets
            .Where(s => cgroups.Contains(s.CgroupId) && listenerPorts.Contains(s.Local.Port) && !kernel.JudgedAtConnect(s.Cookie))
            .Select(s => s.Cookie)
            .Distinct();
    }

    /// <summary>The ids of the job's cgroup and every cgroup below it (a cgroup v2 directory's inode is its id).</summary>
    private static HashSet<ulong> CgroupIds(string jobDirectory)
    {
        var ids = new HashSet<ulong>();
        if (Libc.InodeOf(jobDirectory) is { } own)
            ids.Add(own);
        foreach (string dir in Directory.EnumerateDirectories(jobDirectory, "*", SearchOption.AllDirectories))
        {
            if (Libc.InodeOf(dir) is { } id)
                ids.Add(id);
        }
        return ids;
    }

    /// <summary>One descriptor of each network namespace the job's processes are in (read from /proc/PID/ns/net), at most <see cref="MaxNamespaces"/>.</summary>
    private static List<FileDescriptor> NamespacesOf(string jobDirectory, List<string> shortfalls)
    {
        var seen = new HashSet<ulong>();
        var opened = new List<FileDescriptor>();
        foreach (int pid in Cgroupfs.ProcessesBelow(jobDirectory))
        {
            string link = $"/proc/{pid.ToString(System.Globalization.CultureInfo.InvariantCulture)}/ns/net";
            ulong? inode = NetworkNamespaces.ParseInode(ReadLink(link));
            if (inode is not { } n || seen.Contains(n))
                continue;
            if (seen.Count >= MaxNamespaces)
            {
                lock (shortfalls)
                    shortfalls.Add($"its processes are in more than {MaxNamespaces} network namespaces; the first {MaxNamespaces} were read");
                break;
            }
            FileDescriptor? ns = FileDescriptor.TryOpenReadOnly(link, out _);
            // Opened, then read again: the pid may have been another process's by then.
            if (ns is null || NetworkNamespaces.InodeOf(ns) != n)
            {
                ns?.Dispose();
                continue;
            }
            seen.Add(n);
            opened.Add(ns);
        }
        return opened;
    }

    private static string? ReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // gone
        }
    }
}
