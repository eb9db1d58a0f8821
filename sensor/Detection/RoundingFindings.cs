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
/// FE_DOWNWARD and FE_UPWARD (Boost's rounded_arith_std). A process is a
/// miner, whatever its name, arguments or encryption, when within the
/// policy's window it was switched out at least randomx_rounding_switches
/// times in non-default modes, and in at least randomx_distinct_modes of the
/// three, each with an eighth of that threshold (<see cref="ModeShareDivisor"/>):
/// a mode visited for a moment (a library probing modes at start) does not
/// count. One alert per process.
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

    /// <summary>Per process: counts summed across the kernel's restarts, and the window's samples of them.</summary>
    private sealed class Watched(ulong startTimeNs)
    {
        public ulong StartTimeNs { get; } = startTimeNs;

        public ModeCounts Last;

        public ModeCounts Total;

        public Queue<(long TimeNs, ModeCounts Total)> Window { get; } = new();

        public bool Alerted;
    }

    private readonly Policy policy;
    private readonly Dictionary<int, Watched> watched = [];
    private readonly HashSet<int> present = [];

    public RoundingFindings(Policy policy) => this.policy = policy;

    /// <summary>
    /// Judges one sampling of the kernel's counts at <paramref name="nowNs"/>
    /// (CLOCK_BOOTTIME ns); yields an alert for each process that crossed the
    /// thresholds for the first time.
    /// </summary>
    public IEnumerable<AlertEvent> Sample(IReadOnlyList<(int Pid, GuardRounding Switches)> counts, long nowNs, ProcessTable table)
    {
        if (policy.ActionFor(Detectors.Randomx) == RuleAction.Off)
            yield break;
        Thresholds thresholds = policy.Thresholds;
        long window = thresholds.RandomxWindowSeconds * 1_000_000_000L;
        ulong perMode = (ulong)((thresholds.RandomxRoundingSwitches + ModeShareDivisor - 1) / ModeShareDivisor);
        present.Clear();
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
                if (nowNs - (long)switches.StartTimeNs < window)
                    w.Window.Enqueue(((long)switches.StartTimeNs, default));
                else
                    w.Last = now;
            }
            w.Total += now.GainedSince(w.Last);
            w.Last = now;
            w.Window.Enqueue((nowNs, w.Total));
            while (w.Window.Count > 1 && w.Window.Peek().TimeNs < nowNs - window)
                w.Window.Dequeue();
            ModeCounts inWindow = w.Total - w.Window.Peek().Total;
            if (inWindow.Sum < (ulong)thresholds.RandomxRoundingSwitches || inWindow.ModesWithAtLeast(perMode) < thresholds.RandomxDistinctModes || w.Alerted)
                continue;
            if (table.Identify(pid, w.StartTimeNs) is not { } process)
                continue;
            w.Alerted = true;
            yield return new AlertEvent
            {
                Rule = Detectors.Randomx.Name,
                Description = "the FPU rounding mode cycling through its directed modes, as RandomX mining does",
                RequestedAction = policy.ActionFor(Detectors.Randomx),
                Evidence =
                [
                    new("rounding_switches", inWindow.Sum.ToString(CultureInfo.InvariantCulture)),
                    new("rounding_modes", inWindow.ToEvidence()),
                    new("window_seconds", thresholds.RandomxWindowSeconds.ToString(CultureInfo.InvariantCulture)),
                ],
                Process = process,
                TimeNs = nowNs,
            };
        }
        // Forget processes the kernel no longer counts (exited).
        foreach (int gone in watched.Keys.Where(p => !present.Contains(p)).ToList())
            watched.Remove(gone);
    }

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
