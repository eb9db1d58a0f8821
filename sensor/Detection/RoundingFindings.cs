using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// RandomX behaviour: context switches in each non-default FPU rounding mode,
/// counted by the kernel, sampled once a second. RandomX's CFROUND picks among
/// all four modes as its program runs, so at its switches the kernel sees it
/// in every one; interval arithmetic holds FE_UPWARD (CGAL) or alternates
/// FE_DOWNWARD and FE_UPWARD (Boost's rounded_arith_std). Switches are
/// summed over four scopes: the process, the program (an unbroken line of
/// parents and children running the same executable file, forked or exec'd
/// again: a miner that hops to a fresh process before any one of them
/// reaches the count), the launcher (the process that started a line of
/// such programs, however many executables they alternate between) and the
/// job. A scope is mining, whatever the names, arguments or encryption, when
/// within the policy's window it was switched out at least
/// randomx_rounding_switches times in non-default modes, and in at least
/// randomx_distinct_modes of the three, each with an eighth of that threshold
/// (<see cref="ModeShareDivisor"/>): a mode visited for a moment (a library
/// probing modes at start) does not count. The alert names the process of the
/// scope that switched last, so the rule's action lands on the one running
/// now, and a scope alerts at most once a window. Outside any job, a launcher
/// instead is named itself where it runs as the same user (its loop ends with
/// its tree), and otherwise stays armed: each of its processes that switches
/// while the window holds the count is named in turn.
/// </summary>
public sealed class RoundingFindings
{
    /// <summary>
    /// A mode counts when it holds an eighth of randomx_rounding_switches in
    /// the window. At the threshold RandomX shows a third in each (CFROUND's
    /// mode is uniform): 67 of 200 at the default, 6 standard deviations above
    /// an eighth (25); switches in other modes (a decoy thread holding one)
    /// add to the total but never take from a mode's own count.
    /// </summary>
    public const int ModeShareDivisor = 8;

    /// <summary>Evidence <c>rounding_scope</c>: the switches of one process.</summary>
    public const string ProcessScope = "process";

    /// <summary>Evidence <c>rounding_scope</c>: the switches of one program's line of processes.</summary>
    public const string ProgramScope = "program";

    /// <summary>Evidence <c>rounding_scope</c>: the switches of the programs one process started, directly or through each other.</summary>
    public const string LauncherScope = "launcher";

    /// <summary>Evidence <c>rounding_scope</c>: the switches of one job's processes.</summary>
    public const string JobScope = "job";

    /// <summary>
    /// How many program lines the launcher walk climbs at most: a chain of
    /// hops, each started by the one before, is followed this far (bounds
    /// the walk, not the count: a longer chain splits into two launchers).
    /// </summary>
    public const int MaxLauncherDepth = 64;

    /// <summary>Scopes wider than the process, narrowest first: an alert in one keeps the wider ones quiet for a window.</summary>
    private static readonly string[] WiderScopes = [ProgramScope, LauncherScope, JobScope];

    /// <summary>Counts summed in one scope, and the window's samples of them.</summary>
    private sealed class Tally
    {
        public ModeCounts Total;

        /// <summary>The last sample at or before the window's start (zero counts before the first).</summary>
        private (long TimeNs, ModeCounts Total) baseline;

        private readonly Queue<(long TimeNs, ModeCounts Total)> window = new();

        /// <summary>Pids that added switches, with when they last did (CLOCK_BOOTTIME ns).</summary>
        public Dictionary<int, long> Contributors { get; } = [];

        public long QuietUntilNs;

        public long LastGainNs;

        /// <summary>Samples the total at <paramref name="nowNs"/>; what the window holds, and how many processes added to it.</summary>
        public (ModeCounts InWindow, int Processes) Close(long nowNs, long windowNs)
        {
            // A scope sampled only when it gains keeps, as its baseline, the total it had before the gap.
            window.Enqueue((nowNs, Total));
            while (window.Count > 0 && window.Peek().TimeNs <= nowNs - windowNs)
                baseline = window.Dequeue();
            int processes = 0;
            foreach (long at in Contributors.Values)
                processes += at > nowNs - windowNs ? 1 : 0;
            return (Total - baseline.Total, processes);
        }
    }

    /// <summary>Per process: the kernel's last counts (summed across its restarts) and the process's own tally.</summary>
    private sealed class Watched(ulong startTimeNs)
    {
        public ulong StartTimeNs { get; } = startTimeNs;

        public ModeCounts Last;

        public Tally Tally { get; } = new();
    }

    private readonly Policy policy;
    private readonly Dictionary<int, Watched> watched = [];
    private readonly Dictionary<string, Tally> programs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tally> launchers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tally> jobs = new(StringComparer.Ordinal);
    private readonly HashSet<int> present = [];
    private readonly List<(Tally Tally, ProcessEntry Process)> sampled = [];
    private readonly Dictionary<Tally, (ProcessEntry Last, string Scope)> scopesGained = [];

    public RoundingFindings(Policy policy) => this.policy = policy;

    /// <summary>
    /// Judges one sampling of the kernel's counts at <paramref name="nowNs"/>
    /// (CLOCK_BOOTTIME ns); yields an alert for each process, program or job
    /// that crossed the thresholds (once a window each).
    /// </summary>
    public IEnumerable<AlertEvent> Sample(IReadOnlyList<(int Pid, GuardRounding Switches)> counts, long nowNs, ProcessTable table)
    {
        if (policy.ActionFor(Detectors.Randomx) == RuleAction.Off)
            yield break;
        long window = policy.Thresholds.RandomxWindowSeconds * 1_000_000_000L;
        present.Clear();
        sampled.Clear();
        scopesGained.Clear();
        foreach ((int pid, GuardRounding switches) in counts)
        {
            present.Add(pid);
            ModeCounts now = ModeCounts.Of(switches);
            if (!watched.TryGetValue(pid, out Watched? w) || w.StartTimeNs != switches.StartTimeNs)
            {
                // A new process, or a reused pid.
                w = new Watched(switches.StartTimeNs);
                watched[pid] = w;
                // A process younger than the window is measured from its start; an older one from now on.
                if (nowNs - (long)switches.StartTimeNs >= window)
                    w.Last = now;
            }
            ModeCounts more = now.GainedSince(w.Last);
            w.Last = now;
            w.Tally.Total += more;
            if (table.Identify(pid, w.StartTimeNs) is not { } process)
                continue;
            sampled.Add((w.Tally, process));
            if (more.Sum == 0 || w.Tally.QuietUntilNs == long.MaxValue)
                continue;
            // The wider scopes: the switches count there too, whichever process made them
            // (but one already reported alone, whose switches would only report it again).
            string program = ProgramRoot(process).EntityId;
            Add(programs, program, ProgramScope, more, pid, nowNs, process);
            if (Launcher(process, nowNs - window) is { } launcher)
                Add(launchers, launcher.EntityId, LauncherScope, more, pid, nowNs, process);
            if (process.Membership.Id is { } job)
                Add(jobs, job, JobScope, more, pid, nowNs, process);
        }
        // Each process first: a process that crossed alone is named as such, and its wider scopes keep quiet.
        foreach ((Tally tally, ProcessEntry process) in sampled)
        {
            (ModeCounts inWindow, int _) = tally.Close(nowNs, window);
            if (nowNs < tally.QuietUntilNs || !Crossed(inWindow))
                continue;
            tally.QuietUntilNs = long.MaxValue; // one alert a process
            QuietWider(process, ProcessScope, nowNs, window);
            yield return Alert(process, ProcessScope, inWindow, 1, nowNs);
        }
        // Then the wider scopes, narrowest first: a hopping line is named as a program, not also as its launcher and job.
        foreach (string scope in WiderScopes)
        {
            foreach ((Tally tally, (ProcessEntry last, string gainedScope)) in scopesGained)
            {
                if (gainedScope != scope)
                    continue;
                (ModeCounts inWindow, int processes) = tally.Close(nowNs, window);
                if (nowNs < tally.QuietUntilNs || !Crossed(inWindow))
                    continue;
                QuietWider(last, scope, nowNs, window);
                // Outside any job, a launcher starts the next copy as soon as one is killed: it is named itself
                // (its tree killed) when it runs as the same user; else it stays armed, and each of its processes
                // that switches while the window holds the count is named in turn. In a job the job is held.
                ProcessEntry named = scope == LauncherScope && last.Membership.Id is null
                    && Launcher(last, nowNs - window) is { Exited: false } launcher && launcher.Uid == last.Uid ? launcher : last;
                bool armed = scope == LauncherScope && last.Membership.Id is null && ReferenceEquals(named, last);
                if (!armed)
                    tally.QuietUntilNs = nowNs + window;
                AlertEvent alert = Alert(named, scope, inWindow, processes, nowNs);
                if (!ReferenceEquals(named, last))
                    alert.Evidence = [.. alert.Evidence, new("rounding_switching_pid", last.Pid.ToString(CultureInfo.InvariantCulture))];
                yield return alert;
            }
        }
        // Forget processes the kernel no longer counts (exited), and scopes quiet for a window.
        foreach (int gone in watched.Keys.Where(p => !present.Contains(p)).ToList())
            watched.Remove(gone);
        Forget(programs, nowNs - window);
        Forget(launchers, nowNs - window);
        Forget(jobs, nowNs - window);
    }

    /// <summary>Keeps the scopes wider than <paramref name="scope"/> that <paramref name="process"/> counts in quiet for a window.</summary>
    private void QuietWider(ProcessEntry process, string scope, long nowNs, long window)
    {
        long until = nowNs + window;
        if (scope == ProcessScope)
            Quiet(programs, ProgramRoot(process).EntityId, until);
        if (scope is ProcessScope or ProgramScope && Launcher(process, nowNs - window) is { } launcher)
            Quiet(launchers, launcher.EntityId, until);
        if (scope != JobScope && process.Membership.Id is { } job)
            Quiet(jobs, job, until);
    }

    /// <summary>Adds one process's new switches to a scope's tally; the scope is judged after every process.</summary>
    private void Add(Dictionary<string, Tally> scopes, string key, string scope, ModeCounts more, int pid, long nowNs, ProcessEntry process)
    {
        if (!scopes.TryGetValue(key, out Tally? tally))
        {
            tally = new Tally();
            scopes[key] = tally;
        }
        tally.Total += more;
        tally.LastGainNs = nowNs;
        tally.Contributors[pid] = nowNs;
        scopesGained[tally] = (process, scope);
    }

    private static void Quiet(Dictionary<string, Tally> scopes, string key, long untilNs)
    {
        if (scopes.TryGetValue(key, out Tally? tally))
            tally.QuietUntilNs = Math.Max(tally.QuietUntilNs, untilNs);
    }

    private static void Forget(Dictionary<string, Tally> scopes, long beforeNs)
    {
        foreach ((string key, Tally tally) in scopes)
        {
            if (tally.LastGainNs < beforeNs && tally.QuietUntilNs < beforeNs)
                scopes.Remove(key);
            else
                foreach (int pid in tally.Contributors.Where(c => c.Value < beforeNs).Select(c => c.Key).ToList())
                    tally.Contributors.Remove(pid);
        }
    }

    private bool Crossed(ModeCounts inWindow)
    {
        Thresholds thresholds = policy.Thresholds;
        ulong perMode = (ulong)((thresholds.RandomxRoundingSwitches + ModeShareDivisor - 1) / ModeShareDivisor);
        return inWindow.Sum >= (ulong)thresholds.RandomxRoundingSwitches && inWindow.ModesWithAtLeast(perMode) >= thresholds.RandomxDistinctModes;
    }

    /// <summary>
    /// The program a process runs, as a line: its farthest ancestor reached
    /// through parents that ran the same executable file (device and inode;
    /// the path when the file is not known).
    /// </summary>
    private static ProcessEntry ProgramRoot(ProcessEntry process)
    {
        ProcessEntry root = process;
        while (root.Parent is { } parent && SameExecutable(parent, root))
            root = parent;
        return root;
    }

    /// <summary>
    /// The process that started a line of rounding programs: the parent of the
    /// process's program line, climbing on while that parent's own line
    /// switched in a directed mode since <paramref name="sinceNs"/> (a shell
    /// loop that alternates two copies of a miner, or hops that each start the
    /// next under another executable, sum under one launcher). None when the
    /// line has no parent or its parent is PID 1: what init starts is not one
    /// launcher's.
    /// </summary>
    private ProcessEntry? Launcher(ProcessEntry process, long sinceNs)
    {
        ProcessEntry root = ProgramRoot(process);
        for (int depth = 0; depth < MaxLauncherDepth; depth++)
        {
            if (root.Parent is not { } parent || parent.Pid <= 1)
                return null;
            ProcessEntry parentRoot = ProgramRoot(parent);
            if (!programs.TryGetValue(parentRoot.EntityId, out Tally? line) || line.LastGainNs < sinceNs)
                return parent;
            root = parentRoot;
        }
        return root;
    }

    private static bool SameExecutable(ProcessEntry a, ProcessEntry b) =>
        a.ExecutableFile is { } fa && b.ExecutableFile is { } fb ? fa == fb : a.Executable.AsSpan().SequenceEqual(b.Executable);

    private AlertEvent Alert(ProcessEntry process, string scope, ModeCounts inWindow, int processes, long nowNs) => new()
    {
        Rule = Detectors.Randomx.Name,
        Description = scope switch
        {
            ProcessScope => "the FPU rounding mode cycling through its directed modes, as RandomX mining does",
            ProgramScope => "the FPU rounding mode cycling through its directed modes across one program's processes, as RandomX mining does that hops from process to process",
            LauncherScope => "the FPU rounding mode cycling through its directed modes across the programs one process started, as RandomX mining does that hops between executables",
            _ => "the FPU rounding mode cycling through its directed modes across one job's processes, as RandomX mining does",
        },
        RequestedAction = policy.ActionFor(Detectors.Randomx),
        Evidence =
        [
            new("rounding_switches", inWindow.Sum.ToString(CultureInfo.InvariantCulture)),
            new("rounding_modes", inWindow.ToEvidence()),
            new("rounding_scope", scope),
            new("rounding_processes", processes.ToString(CultureInfo.InvariantCulture)),
            new("window_seconds", policy.Thresholds.RandomxWindowSeconds.ToString(CultureInfo.InvariantCulture)),
        ],
        Process = process,
        TimeNs = nowNs,
    };

    /// <summary>Switches in the down, up and toward-zero modes.</summary>
    private readonly record struct ModeCounts(ulong Down, ulong Up, ulong TowardZero)
    {
        public ulong Sum => Down + Up + TowardZero;

        public static ModeCounts Of(GuardRounding r) => new(r.Switches[0], r.Switches[1], r.Switches[2]);

        public static ModeCounts operator +(ModeCounts a, ModeCounts b) => new(a.Down + b.Down, a.Up + b.Up, a.TowardZero + b.TowardZero);

        public static ModeCounts operator -(ModeCounts a, ModeCounts b) => new(a.Down - b.Down, a.Up - b.Up, a.TowardZero - b.TowardZero);

        /// <summary>
        /// What the kernel's counts gained since <paramref name="earlier"/>. A
        /// count below its earlier value means the entry was made again (the
        /// LRU let it go): all of it is new.
        /// </summary>
        public ModeCounts GainedSince(ModeCounts earlier) =>
            Down < earlier.Down || Up < earlier.Up || TowardZero < earlier.TowardZero ? this : this - earlier;

        public int ModesWithAtLeast(ulong n) => (Down >= n ? 1 : 0) + (Up >= n ? 1 : 0) + (TowardZero >= n ? 1 : 0);

        public string ToEvidence() => string.Create(CultureInfo.InvariantCulture, $"down={Down} up={Up} toward-zero={TowardZero}");
    }
}
