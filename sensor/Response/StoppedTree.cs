using System.Diagnostics;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// A process tree stopped from the top down, each member held by its own
/// pidfd so a signal can only reach the process that was seen. Members are
/// found pass after pass, two ways: the lineage the kernel recorded at fork
/// (<see cref="LineageKernel"/>: the creator, so a descendant re-parented by
/// setsid, a double fork or CLONE_PARENT is found, through exited links too)
/// and /proc's parent pids (for processes older than the recorder). While the
/// tree is being stopped the kernel stops any process that forks below a
/// member, and its child; passes go on until one finds nothing new with every
/// member stopped, so a tree that forks while it is stopped is stopped whole.
/// </summary>
internal sealed class StoppedTree : IDisposable
{
    public const int SigKill = 9;
    public const int SigStop = 19;
    public const int SigCont = 18;

    /// <summary>How long passes go on while the tree still grows.</summary>
    private static readonly TimeSpan GrowLimit = TimeSpan.FromSeconds(10);

    /// <summary>How long the kernel honours this stop's marks: past it, a guard that died mid-stop leaves nothing in force.</summary>
    private static readonly TimeSpan MarkLifetime = TimeSpan.FromSeconds(60);

    /// <summary>How long a pass that found nothing waits for every member to be stopped: a thread inside fork() finishes it first.</summary>
    private static readonly TimeSpan SettleWait = TimeSpan.FromSeconds(1);

    private readonly Dictionary<(int Pid, long StartTicks), Pidfd> members = [];
    private readonly HashSet<(int Pid, long StartTicks)> known = [];
    private readonly HashSet<(int Pid, long StartTicks)> guards;
    private readonly List<int> killed = [];
    private readonly LineageKernel? lineage;
    private readonly Action<int, long>? beforeStop;
    private readonly ulong marksUntilNs = (ulong)(Libc.NowNs(Libc.ClockBoottime) + (long)MarkLifetime.TotalNanoseconds);
    private readonly Pidfd? rootPidfd;
    private readonly (int Pid, long StartTicks) root;
    private int newMemberSignal = SigStop;

    private StoppedTree(Pidfd? rootPidfd, int rootPid, long rootStartTicks, Action<int, long>? beforeStop)
    {
        this.rootPidfd = rootPidfd;
        root = (rootPid, rootStartTicks);
        this.beforeStop = beforeStop;
        guards = [.. RunningSensors.List().Select(s => (s.Pid, s.StartTicks))];
        if (ProcfsReader.TryReadStat(Environment.ProcessId, out ProcfsStat self))
            guards.Add((self.Pid, self.StartTicks));
        lineage = OpenLineage(out string? note);
        LineageNote = note;
    }

    /// <summary>The members' pidfds.</summary>
    public IReadOnlyCollection<Pidfd> Members => members.Values;

    /// <summary>The members' pids, ascending.</summary>
    public int[] Pids => [.. members.Keys.Select(k => k.Pid).Order()];

    /// <summary>Why nothing may be done to this tree (it holds this guard process or a running sensor), or null. When set, nothing is left stopped.</summary>
    public string? Refusal { get; private set; }

    /// <summary>Whether a pass found nothing new with every member stopped, within 10 s.</summary>
    public bool Settled { get; private set; }

    /// <summary>Why recorded lineage may miss a descendant (no recorder, or forks it could not record), or null.</summary>
    public string? LineageNote { get; }

    /// <summary>
    /// Stops <paramref name="root"/> (started at <paramref name="rootStartTicks"/>) and
    /// every descendant. A tree that holds this guard process or a running sensor
    /// is refused before anything is stopped (<see cref="Refusal"/>).
    /// <paramref name="beforeStop"/> sees each member (pid, start ticks) just before
    /// its SIGSTOP: quarantine holds it in the kernel there. <paramref name="beforeResume"/>
    /// runs before a tree refused mid-stop is continued (quarantine lets go of it there,
    /// or the kernel would refuse the SIGCONT). The root's pidfd stays the caller's.
    /// </summary>
    public static StoppedTree Stop(Pidfd root, long rootStartTicks, Action<int, long>? beforeStop = null, Action? beforeResume = null)
    {
        var tree = new StoppedTree(root, root.Pid, rootStartTicks, beforeStop);
        return tree.StopBelow(root, beforeResume);
    }

    /// <summary>
    /// Stops what the process <paramref name="pid"/> started at
    /// <paramref name="startTicks"/> left behind when it exited: its live
    /// descendants by recorded lineage alone (through exited links and heirs).
    /// Nothing is found through /proc's parent pids of <paramref name="pid"/>,
    /// which another process may hold by now, and no process of another start
    /// is ever a member. No lineage recorded (<see cref="LineageNote"/>): nothing is found.
    /// </summary>
    public static StoppedTree StopLeftBehind(int pid, long startTicks) =>
        new StoppedTree(null, pid, startTicks, null).StopBelow(null, null);

    private StoppedTree StopBelow(Pidfd? rootFd, Action? beforeResume)
    {
        Snapshot first = Read();
        Refusal = GuardBelow(first);
        if (Refusal is not null)
            return this;
        known.Add(root);
        if (rootFd is not null)
            Enlist(rootFd, root.StartTicks);
        Settle(first);
        if (Refusal is not null)
        {
            // Found mid-stop after all: let the tree go, the kernel's marks first.
            lineage?.ForgetStopping(marksUntilNs);
            beforeResume?.Invoke();
            SignalAll(SigCont);
        }
        return this;
    }

    /// <summary>
    /// SIGKILL to every member through its pidfd, then to whatever is still found
    /// below them (a member that was not stopped in time may have forked) until a
    /// pass finds nothing new. Returns the pids the signal reached.
    /// </summary>
    public List<int> Kill()
    {
        newMemberSignal = SigKill;
        killed.AddRange(SignalAll(SigKill));
        var clock = Stopwatch.StartNew();
        while (Pass() > 0 && clock.Elapsed < GrowLimit)
        {
        }
        return killed;
    }

    /// <summary>Sends <paramref name="signal"/> to every member; returns those it reached.</summary>
    public List<int> SignalAll(int signal)
    {
        var reached = new List<int>();
        foreach (Pidfd fd in members.Values)
        {
            if (fd.Signal(signal) == 0)
                reached.Add(fd.Pid);
        }
        return reached;
    }

    /// <summary>
    /// Adds to <paramref name="known"/> every process below it in one snapshot:
    /// children by recorded lineage (through exited links), and by parent pid of
    /// a parent that <paramref name="isLiveParent"/> says was that very process
    /// when the snapshot was read. Returns the new ones that were alive.
    /// </summary>
    internal static List<(int Pid, long StartTicks)> Expand(
        HashSet<(int Pid, long StartTicks)> known, IReadOnlyList<LineageLink> links,
        IReadOnlyDictionary<int, ProcfsStat> procs, Func<(int Pid, long StartTicks), bool> isLiveParent)
    {
        ILookup<(int, long), LineageLink> byCreator = links.ToLookup(l => Identity(l.Creator));
        ILookup<int, ProcfsStat> byParent = procs.Values.ToLookup(s => s.ParentPid);
        var found = new List<(int, long)>();
        var pending = new Queue<(int Pid, long StartTicks)>(known);
        while (pending.TryDequeue(out (int Pid, long StartTicks) id))
        {
            foreach (LineageLink link in byCreator[id])
                Visit(Identity(link.Process), link.Alive);
            if (isLiveParent(id))
            {
                foreach (ProcfsStat child in byParent[id.Pid])
                    Visit((child.Pid, child.StartTicks), alive: true);
            }
        }
        return found;

        void Visit((int, long) id, bool alive)
        {
            if (!known.Add(id))
                return;
            pending.Enqueue(id);
            if (alive)
                found.Add(id);
        }
    }

    private static (int Pid, long StartTicks) Identity(GuardProcessId id) => ((int)id.Tgid, id.StartTicks);

    private static LineageKernel? OpenLineage(out string? note)
    {
        try
        {
            LineageKernel lineage = LineageKernel.Ensure();
            ulong lost = lineage.Lost;
            note = lost > 0 ? $"{lost} fork{(lost == 1 ? " was" : "s were")} not recorded (the lineage map was full): a re-parented descendant may be missed" : null;
            return lineage;
        }
        catch (SensorException e)
        {
            note = $"lineage is not recorded ({e.Message}): only live parents link the tree";
            return null;
        }
    }

    /// <summary>What one pass looks at: the recorded lineage and every process in /proc, read one after the other.</summary>
    private readonly record struct Snapshot(List<LineageLink> Links, Dictionary<int, ProcfsStat> Procs);

    private Snapshot Read() => new(lineage?.Links() ?? [], ProcfsReader.Stats());

    /// <summary>Why the tree may not be touched, read in <paramref name="snapshot"/> before anything is stopped: it holds this guard process or a running sensor.</summary>
    private string? GuardBelow(Snapshot snapshot)
    {
        var below = new HashSet<(int Pid, long StartTicks)> { root };
        Expand(below, snapshot.Links, snapshot.Procs, id => snapshot.Procs.TryGetValue(id.Pid, out ProcfsStat s) && s.StartTicks == id.StartTicks);
        return below.Where(guards.Contains).Select(Refused).FirstOrDefault();
    }

    private string Refused((int Pid, long StartTicks) guard) =>
        guard.Pid == Environment.ProcessId ? $"the tree of {root.Pid} includes this guard process" : $"the tree of {root.Pid} includes Guard sensor {guard.Pid}";

    /// <summary>
    /// Passes until one finds nothing new with every member stopped, or the tree
    /// is still growing after <see cref="GrowLimit"/>. The first pass looks at
    /// <paramref name="first"/>, read before the root was stopped: whatever the
    /// root made since, the passes after it find.
    /// </summary>
    private void Settle(Snapshot first)
    {
        var clock = Stopwatch.StartNew();
        Snapshot? taken = first;
        while (Refusal is null && clock.Elapsed < GrowLimit)
        {
            int added = Pass(taken);
            taken = null;
            if (added > 0)
                continue;
            WaitStopped();
            if (Refusal is null && Pass() == 0)
            {
                Settled = true;
                return;
            }
        }
    }

    /// <summary>One pass, on <paramref name="taken"/> or a snapshot read now: every live process found below the tree that is not a member yet becomes one. Returns how many.</summary>
    private int Pass(Snapshot? taken = null)
    {
        Snapshot snapshot = taken ?? Read();
        int added = 0;
        foreach ((int pid, long ticks) in Expand(known, snapshot.Links, snapshot.Procs, IsLiveMember))
        {
            if (Refusal is null && !members.ContainsKey((pid, ticks)) && TryEnlist(pid, ticks))
                added++;
        }
        return added;
    }

    /// <summary>Asked after the snapshot was read: a member still running then was running when it was read.</summary>
    private bool IsLiveMember((int Pid, long StartTicks) id) => members.TryGetValue(id, out Pidfd? fd) && !fd.HasExited;

    private bool TryEnlist(int pid, long startTicks)
    {
        Pidfd? fd = Pidfd.TryOpen(pid, out _);
        if (fd is null)
            return false;
        // Read with the pidfd open: if the pid changed hands since the snapshot, the start says so.
        if (!ProcfsReader.TryReadStat(pid, out ProcfsStat now) || now.StartTicks != startTicks)
        {
            fd.Dispose();
            return false;
        }
        if (guards.Contains((pid, startTicks)))
        {
            fd.Dispose();
            Refusal = Refused((pid, startTicks));
            return false;
        }
        Enlist(fd, startTicks);
        return true;
    }

    private void Enlist(Pidfd fd, long startTicks)
    {
        // Marked before its signal: a fork it makes from now on is stopped by the kernel.
        lineage?.MarkStopping(fd.Pid, startTicks, marksUntilNs);
        if (newMemberSignal == SigStop)
            beforeStop?.Invoke(fd.Pid, startTicks);
        members[(fd.Pid, startTicks)] = fd;
        if (fd.Signal(newMemberSignal) == 0 && newMemberSignal == SigKill)
            killed.Add(fd.Pid);
    }

    /// <summary>Waits up to <see cref="SettleWait"/> for no thread of any member to be able to run.</summary>
    private void WaitStopped()
    {
        var clock = Stopwatch.StartNew();
        while (members.Values.Any(fd => !fd.HasExited && !ProcfsReader.AllThreadsStopped(fd.Pid)) && clock.Elapsed < SettleWait)
            Thread.Sleep(1);
    }

    /// <summary>Takes this stop's marks off the kernel's list and closes every member's pidfd but the root's.</summary>
    public void Dispose()
    {
        if (lineage is not null)
        {
            lineage.ForgetStopping(marksUntilNs);
            lineage.Dispose();
        }
        foreach (Pidfd fd in members.Values)
        {
            if (fd != rootPidfd)
                fd.Dispose();
        }
    }
}
