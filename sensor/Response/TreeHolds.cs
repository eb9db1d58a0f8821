using System.Diagnostics;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Holds for a process tree with no cgroup of its own: every member, found by
/// recorded lineage and live parents (<see cref="StoppedTree"/>), stopped
/// (SIGSTOP through its pidfd) and pinned in the kernel's quarantine_tgids map
/// by tgid and start, which denies it network and GPU devices and holds (and
/// stops) any child it forks. The tree-mode programs attach once, at the
/// cgroup root, and serve every tree hold. Every signal to a member goes
/// through a pidfd checked, once open, to be the process the map holds.
/// </summary>
internal sealed class TreeHolds
{
    /// <summary>How long a kill goes on signalling members that turn up (children of a member someone continued).</summary>
    private static readonly TimeSpan KillLimit = TimeSpan.FromSeconds(2);

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
        ulong id = (ulong)Libc.NowNs(Libc.ClockRealtime) | (1UL << 63); // never a cgroup id
        string name = Printable.Of(stat.Name);
        using QuarantineKernel? kernel = Begin(target, stat.StartTicks, id, request.ToRecord(QuarantineMode.Tree, 0, target.Pid, stat.StartTicks, $"tree:{target.Pid}({name})"), request.GpuDevices);
        if (kernel is null)
            return QuarantineOutcome.HoldRefused(request, $"process {target.Pid} is held already");
        // A tree found to hold a guard mid-stop is let go with SIGCONT: the hold must be gone first, or the kernel refuses it.
        using StoppedTree tree = StoppedTree.Stop(root, stat.StartTicks, (pid, startTicks) => kernel.HoldTgid(pid, startTicks, id), () => Forget(kernel, id));
        if (tree.Refusal is { } why)
        {
            Forget(kernel, id);
            return QuarantineOutcome.HoldRefused(request, why);
        }
        int sockets = 0;
        foreach (Pidfd member in tree.Members)
            sockets += HeldSockets.Mark(kernel, member, id);
        int[] pids = tree.Pids;
        return new QuarantineOutcome(QuarantineOutcome.HoldAction, true,
            $"quarantined the tree of {target.Pid} ({name}): {pids.Length} process{(pids.Length == 1 ? "" : "es")} stopped; network ({sockets} open socket{(sockets == 1 ? "" : "s")}) and GPU devices denied"
            + (tree.LineageNote is { } note ? $"; {note}" : ""),
            pids, null, request.OrderedBy, request.OrderedByUid);
    }

    /// <summary>
    /// Loads the programs and writes the hold, root first, under the lock every
    /// guard takes to add or remove quarantine pins: a sensor pruning at the same
    /// moment sees either no hold (and leaves the pins, taken since) or one with
    /// a live member, never a record with none, which it would end. Null (nothing
    /// written) when the root is held already.
    /// </summary>
    private QuarantineKernel? Begin(ProcessTarget target, long startTicks, ulong id, in GuardQuarantine record, IReadOnlyList<GpuDevice> gpuDevices)
    {
        using FileDescriptor pinsLock = QuarantineKernel.LockPins();
        QuarantineKernel kernel = QuarantineKernel.Load();
        try
        {
            if (kernel.IsHeld(target.Pid, startTicks, out ulong already) && kernel.Records().Any(r => r.Id == already))
            {
                kernel.Dispose();
                return null;
            }
            kernel.EnsureTreeLinks(cgroupfs.Root);
            foreach (GpuDevice device in gpuDevices)
                kernel.DenyDevice(device);
            // Held by the record only once it exists: until then the entry holds nobody.
            kernel.HoldTgid(target.Pid, startTicks, id);
            kernel.Put(id, record);
            return kernel;
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
    }

    /// <summary>The live members of hold <paramref name="id"/>, ascending: the processes the kernel map holds (dropped there at exit) that /proc shows with the start they were held with.</summary>
    public static List<int> Members(QuarantineKernel kernel, ulong id) =>
        [.. kernel.HeldBy(id).Where(m => ProcfsReader.TryReadStat(m.Tgid, out ProcfsStat s) && s.StartTicks == m.StartTicks).Select(m => m.Tgid).Order()];

    /// <summary>
    /// Sends SIGKILL to every member of hold <paramref name="id"/> as the kernel
    /// holds them now, each through a pidfd checked once open to be that member;
    /// goes on while new members turn up (a continued member may fork; its child
    /// is held), for up to 2 s. Returns the pids the signal reached.
    /// </summary>
    public static List<int> Kill(QuarantineKernel kernel, ulong id)
    {
        var signalled = new HashSet<(int, long)>();
        var killed = new List<int>();
        var clock = Stopwatch.StartNew();
        bool found = true;
        while (found && clock.Elapsed < KillLimit)
        {
            found = false;
            foreach ((int pid, long startTicks) in kernel.HeldBy(id))
            {
                if (!signalled.Add((pid, startTicks)))
                    continue;
                found = true;
                using Pidfd? member = OpenMember(kernel, id, pid, startTicks);
                if (member?.Signal(StoppedTree.SigKill) == 0)
                    killed.Add(pid);
            }
        }
        return killed;
    }

    /// <summary>
    /// Lets the members of hold <paramref name="id"/> go from the tgid map (its
    /// record must be gone already) and, when <paramref name="resume"/>, sends
    /// each SIGCONT through a pidfd checked first to be that member; returns
    /// those continued.
    /// </summary>
    public static List<int> End(QuarantineKernel kernel, ulong id, bool resume) => End(kernel, id, _ => resume);

    /// <summary>
    /// Lets the members of hold <paramref name="id"/> go from the tgid map (its
    /// record must be gone already) and sends SIGCONT, through a pidfd checked
    /// first to be that member, to each that <paramref name="resume"/> picks (a
    /// cgroup hold's members that the kernel stopped outside its cgroup); returns
    /// those continued.
    /// </summary>
    public static List<int> End(QuarantineKernel kernel, ulong id, Func<int, bool> resume)
    {
        var resumed = new List<int>();
        foreach ((int pid, long startTicks) in kernel.HeldBy(id))
        {
            using Pidfd? member = resume(pid) ? OpenMember(kernel, id, pid, startTicks) : null;
            kernel.ForgetTgid(pid, id);
            // Its stops left pending by refused continues would stop nobody now; cancelled all the same.
            kernel.ForgetThreadStops(ProcfsReader.Threads(pid));
            if (member?.Signal(StoppedTree.SigCont) == 0)
                resumed.Add(pid);
        }
        kernel.ForgetContinues(id);
        return resumed;
    }

    /// <summary>
    /// A pidfd on the member <paramref name="pid"/> of hold <paramref name="id"/>, or null:
    /// checked once open that the map still holds that pid for this hold with the
    /// start <paramref name="startTicks"/>, and that /proc shows the same start, so
    /// a pid that changed hands since the map was read is never signalled.
    /// </summary>
    internal static Pidfd? OpenMember(QuarantineKernel kernel, ulong id, int pid, long startTicks)
    {
        Pidfd? member = Pidfd.TryOpen(pid, out _);
        if (member is null)
            return null;
        if (kernel.IsHeld(pid, startTicks, out ulong holder) && holder == id
            && ProcfsReader.TryReadStat(pid, out ProcfsStat stat) && stat.StartTicks == startTicks)
            return member;
        member.Dispose();
        return null;
    }

    /// <summary>Undoes a hold that did not take: record, tgids, and the pins no hold needs now.</summary>
    private static void Forget(QuarantineKernel kernel, ulong id)
    {
        kernel.Remove(id);
        foreach ((int pid, _) in kernel.HeldBy(id))
            kernel.ForgetTgid(pid, id);
        kernel.RemoveUnneededPins();
    }
}
