using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// One alert per process and rule, not a flood: the first is reported at
/// once; repeats (an audited miner reconnecting to its pool every few
/// seconds) are counted and reported again, with the count, at most once per
/// <see cref="RepeatIntervalNs"/> and once more when the process exits.
/// </summary>
public sealed class AlertCounts
{
    public const long RepeatIntervalNs = 60_000_000_000;

    private readonly Dictionary<(ProcessEntry Process, string Rule), Tally> tallies = [];

    /// <summary>Counts the alert and says whether to report it now; its Count is set either way.</summary>
    public bool Admit(AlertEvent alert)
    {
        if (alert.Process is not { } process)
            return true;
        if (!tallies.TryGetValue((process, alert.Rule), out Tally? tally))
        {
            tallies[(process, alert.Rule)] = new Tally { Count = 1, ReportedNs = alert.TimeNs, Latest = alert };
            return true;
        }
        alert.Count = ++tally.Count;
        tally.Latest = alert;
        if (alert.TimeNs - tally.ReportedNs < RepeatIntervalNs)
        {
            tally.Unreported = true;
            return false;
        }
        tally.ReportedNs = alert.TimeNs;
        tally.Unreported = false;
        return true;
    }

    /// <summary>The process is gone: its last unreported repeats, one alert per rule, with the final count.</summary>
    public void OnExit(ProcessEntry process, List<AlertEvent> due)
    {
        if (tallies.Count == 0)
            return;
        foreach (Detector detector in Detectors.All)
        {
            if (tallies.Remove((process, detector.Name), out Tally? tally) && tally.Unreported)
                due.Add(tally.Latest);
        }
    }

    private sealed class Tally
    {
        public long Count;
        public long ReportedNs;
        public bool Unreported;
        public AlertEvent Latest = null!;
    }
}
