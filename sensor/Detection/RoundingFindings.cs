using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// RandomX behaviour: context switches with a non-default FPU rounding mode,
/// counted by the kernel, sampled once a second. A process that crosses the
/// policy's threshold within its window is a miner whatever its name,
/// arguments or encryption. One alert per process.
/// </summary>
public sealed class RoundingFindings
{
    private readonly Policy policy;
    private readonly Dictionary<int, Queue<(long TimeNs, ulong Count)>> history = [];
    private readonly HashSet<int> alerted = [];
    private readonly HashSet<int> present = [];

    public RoundingFindings(Policy policy) => this.policy = policy;

    public IEnumerable<AlertEvent> Sample(IReadOnlyList<(int Pid, ulong Count)> counts, long nowNs, ProcessTable table)
    {
        if (policy.ActionFor(Detectors.Randomx) == RuleAction.Off)
            yield break;
        long window = policy.Thresholds.RandomxWindowSeconds * 1_000_000_000L;
        present.Clear();
        foreach ((int pid, ulong count) in counts)
        {
            present.Add(pid);
            ProcessEntry? process = table.Find(pid);
            if (!history.TryGetValue(pid, out Queue<(long TimeNs, ulong Count)>? samples))
            {
                samples = new Queue<(long, ulong)>();
                history[pid] = samples;
                // A process younger than the window is measured from zero; an older one from now on.
                long startNs = process is null ? 0 : process.StartTicks * (1_000_000_000 / ClockTicks.PerSecond);
                if (process is not null && nowNs - startNs < window)
                    samples.Enqueue((startNs, 0));
            }
            samples.Enqueue((nowNs, count));
            while (samples.Count > 1 && samples.Peek().TimeNs < nowNs - window)
                samples.Dequeue();
            ulong switches = count - samples.Peek().Count;
            if (switches < (ulong)policy.Thresholds.RandomxRoundingSwitches || !alerted.Add(pid) || process is null)
                continue;
            yield return new AlertEvent
            {
                Rule = Detectors.Randomx.Name,
                Description = "sustained non-default FPU rounding mode, as RandomX mining does",
                RequestedAction = policy.ActionFor(Detectors.Randomx),
                Evidence =
                [
                    new("rounding_switches", switches.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    new("window_seconds", policy.Thresholds.RandomxWindowSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ],
                Process = process,
                TimeNs = nowNs,
            };
        }
        // Forget processes the kernel no longer counts (exited).
        foreach (int gone in history.Keys.Where(p => !present.Contains(p)).ToList())
        {
            history.Remove(gone);
            alerted.Remove(gone);
        }
    }
}
