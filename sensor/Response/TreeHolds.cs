using System.Globalization;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Holds for a process tree with no cgroup of its own: every member stopped
/// (SIGSTOP through its pidfd) and its tgid pinned in the kernel's
/// quarantine_tgids map, which denies it network and GPU devices and holds
/// (and stops) any child it forks. The tree-mode programs attach once, at the
/// cgroup root, and serve every tree hold.
/// </summary>
internal sealed class TreeHolds
{
    private readonly Cgroupfs cgroupfs;

    /// <summary>Tree holds whose programs attach at <paramref name="cgroupfs"/>'s root.</summary>
    public TreeHolds(Cgroupfs cgroupfs) => this.cgroupfs = cgroupfs;

    /// <summary>
    /// Holds <paramref name="target"/> and every descendant. Refuses (no state
    /// left) a process that may not be touched, one held already, or a tree that
    /// holds this guard process. Throws <see cref="SensorException"/> when the
    /// kernel will not load, attach or take a map entry.
    /// </summary>
    public QuarantineOutcome Hold(ProcessTarget target, QuarantineRequest request)
    {
        using Pidfd? root = ProcessKiller.OpenChecked(target, out ProcfsStat stat, out string refusal);
        if (root is null)
            return QuarantineOutcome.HoldRefused(request, refusal);
        using QuarantineKernel kernel = QuarantineKernel.Load();
        if (kernel.IsHeld(target.Pid, out ulong already) && kernel.Records().Any(r => r.Id == already))
            return QuarantineOutcome.HoldRefused(request, $"process {target.Pid} is held already");
        kernel.EnsureTreeLinks(cgroupfs.Root);
        foreach (GpuDevice device in request.GpuDevices)
            kernel.DenyDevice(device);
        ulong id = (ulong)Libc.NowNs(Libc.ClockRealtime) | (1UL << 63); // never a cgroup id
        string name = Encoding.UTF8.GetString(stat.Name);
        kernel.Put(id, request.ToRecord(QuarantineMode.Tree, 0, target.Pid, stat.StartTicks, $"tree:{target.Pid}({name})"));
        using StoppedTree tree = StoppedTree.Stop(root, pid => kernel.HoldTgid(pid, id));
        if (tree.IncludesSelf)
        {
            Forget(kernel, id);
            return QuarantineOutcome.HoldRefused(request, $"the tree of {target.Pid} includes this guard process");
        }
        int sockets = 0;
        foreach (Pidfd member in tree.Members.Values)
            sockets += MarkSockets(kernel, member, id);
        int[] pids = [.. tree.Members.Keys];
        return new QuarantineOutcome(QuarantineOutcome.HoldAction, true,
            $"quarantined the tree of {target.Pid} ({name}): {pids.Length} process{(pids.Length == 1 ? "" : "es")} stopped; network ({sockets} open socket{(sockets == 1 ? "" : "s")}) and GPU devices denied",
            pids, null, request.OrderedBy, request.OrderedByUid);
    }

    /// <summary>The live members of hold <paramref name="id"/>, ascending: its tgids in the kernel map (dropped there at exit) that still have a /proc entry.</summary>
    public static List<int> Members(QuarantineKernel kernel, ulong id) =>
        [.. kernel.TgidsOf(id).Where(pid => Directory.Exists($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}")).Order()];

    /// <summary>Sends SIGKILL to each member of <paramref name="hold"/> through its own pidfd; returns those it reached.</summary>
    public static List<int> Kill(QuarantineHold hold)
    {
        var killed = new List<int>();
        foreach (int pid in hold.Pids)
        {
            // A member stays in the map until it exits, so the pid is still that member.
            using Pidfd? member = Pidfd.TryOpen(pid, out _);
            if (member?.Signal(StoppedTree.SigKill) == 0)
                killed.Add(pid);
        }
        return killed;
    }

    /// <summary>
    /// Lets the members of hold <paramref name="id"/> go from the tgid map (its
    /// record must be gone already) and, when <paramref name="resume"/>, sends
    /// each SIGCONT; returns those continued.
    /// </summary>
    public static List<int> End(QuarantineKernel kernel, ulong id, bool resume)
    {
        var resumed = new List<int>();
        foreach (int pid in kernel.TgidsOf(id))
        {
            kernel.ForgetTgid(pid);
            if (!resume)
                continue;
            using Pidfd? member = Pidfd.TryOpen(pid, out _);
            if (member?.Signal(StoppedTree.SigCont) == 0)
                resumed.Add(pid);
        }
        return resumed;
    }

    /// <summary>Undoes a hold that did not take: record, tgids, and the pins no hold needs now.</summary>
    private static void Forget(QuarantineKernel kernel, ulong id)
    {
        kernel.Remove(id);
        foreach (int pid in kernel.TgidsOf(id))
            kernel.ForgetTgid(pid);
        kernel.RemoveUnneededPins();
    }

    /// <summary>Marks every socket the process has open, so egress drops what it would still send on them.</summary>
    private static int MarkSockets(QuarantineKernel kernel, Pidfd process, ulong id)
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
}
