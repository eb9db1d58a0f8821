using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// A process tree stopped from the top down until no new child appears (a
/// stopped process cannot fork), each member held by its own pidfd so a
/// signal can only reach the process that was seen.
/// </summary>
internal sealed class StoppedTree : IDisposable
{
    public const int SigKill = 9;
    public const int SigStop = 19;
    public const int SigCont = 18;

    private readonly Dictionary<int, Pidfd> members;
    private readonly int rootPid;

    private StoppedTree(Dictionary<int, Pidfd> members, int rootPid, bool includesSelf)
    {
        this.members = members;
        this.rootPid = rootPid;
        IncludesSelf = includesSelf;
    }

    /// <summary>Members by pid, root first.</summary>
    public IReadOnlyDictionary<int, Pidfd> Members => members;

    /// <summary>This guard process is in the tree: nothing may be done to it; the tree is let go.</summary>
    public bool IncludesSelf { get; }

    /// <summary>
    /// Stops <paramref name="root"/> and its descendants. <paramref name="beforeStop"/>
    /// sees each member just before its SIGSTOP (quarantine holds it in the kernel
    /// there, so a child it forks in between is held from fork). The root's
    /// pidfd stays the caller's.
    /// </summary>
    public static StoppedTree Stop(Pidfd root, Action<int>? beforeStop = null)
    {
        var members = new Dictionary<int, Pidfd> { [root.Pid] = root };
        beforeStop?.Invoke(root.Pid);
        root.Signal(SigStop);
        bool grew = true;
        for (int round = 0; grew && round < 64; round++)
        {
            grew = false;
            foreach (int pid in ProcfsReader.Pids())
            {
                if (members.ContainsKey(pid) || !ProcfsReader.TryReadStat(pid, out ProcfsStat s) || !members.ContainsKey(s.ParentPid))
                    continue;
                if (Pidfd.TryOpen(pid, out _) is not { } child)
                    continue;
                // Parent checked again with the pidfd open: the pid is the child we saw.
                if (!ProcfsReader.TryReadStat(pid, out ProcfsStat again) || again.StartTicks != s.StartTicks)
                {
                    child.Dispose();
                    continue;
                }
                if (pid == Environment.ProcessId)
                {
                    child.Dispose();
                    var tree = new StoppedTree(members, root.Pid, includesSelf: true);
                    tree.SignalAll(SigCont);
                    return tree;
                }
                members[pid] = child;
                beforeStop?.Invoke(pid);
                child.Signal(SigStop);
                grew = true;
            }
        }
        return new StoppedTree(members, root.Pid, includesSelf: false);
    }

    /// <summary>Sends <paramref name="signal"/> to every member; returns those it reached.</summary>
    public List<int> SignalAll(int signal)
    {
        var reached = new List<int>();
        foreach ((int pid, Pidfd fd) in members)
        {
            if (fd.Signal(signal) == 0)
                reached.Add(pid);
        }
        return reached;
    }

    public void Dispose()
    {
        foreach ((int pid, Pidfd fd) in members)
        {
            if (pid != rootPid)
                fd.Dispose();
        }
    }
}
