using Guard.Sensor.Processes;

namespace Guard.Sensor.Events;

/// <summary>A finding: a rule fired on a process, with the evidence and what was done.</summary>
public sealed class AlertEvent : SensorEvent
{
    public override EventType Type => EventType.Alert;

    /// <summary>The rule (a detector's name).</summary>
    public string Rule { get; init; } = "";

    public string Description { get; init; } = "";

    /// <summary>What was done, in words ("killed by the kernel at exec"); empty when only alerting.</summary>
    public IReadOnlyList<string> Response { get; set; } = [];

    /// <summary>What the policy asks the response to do; Off when it is already done or only an alert.</summary>
    public RuleAction RequestedAction { get; init; } = RuleAction.Alert;

    /// <summary>The kernel killed the process already (at exec): what is left to do is the job's part.</summary>
    public bool KilledInKernel { get; init; }

    /// <summary>
    /// The training job's root above the process, when it is inside one: the
    /// same for every rule, so the response holds the job that launched it.
    /// </summary>
    public ProcessEntry? JobRoot => Process?.JobRoot;

    /// <summary>Evidence as name/value pairs, captured before any kill.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Evidence { get; set; } = [];

    /// <summary>The local relays the finding's connection came through, when a relay made it; null otherwise.</summary>
    public RelayEvidence? Relay { get; set; }

    /// <summary>
    /// About the sensor's own health (records lost, say), not about a process:
    /// written as a host alert, without the mining threat.
    /// </summary>
    public bool AboutSensor { get; init; }

    /// <summary>How often this rule has fired on this process so far (this alert included).</summary>
    public long Count { get; set; } = 1;
}
