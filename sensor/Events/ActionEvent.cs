namespace Guard.Sensor.Events;

/// <summary>Something Guard did (or refused to do) to a process, and who ordered it.</summary>
public sealed class ActionEvent : SensorEvent
{
    public override EventType Type => EventType.Action;

    /// <summary>kill, kill-tree, kill-job.</summary>
    public string Action { get; init; } = "";

    public bool Succeeded { get; init; }

    /// <summary>What happened, or why it was refused.</summary>
    public string Message { get; init; } = "";

    /// <summary>"cli" or a rule name.</summary>
    public string OrderedBy { get; init; } = "cli";

    /// <summary>The person's uid (under sudo, the one who ran sudo).</summary>
    public uint OrderedByUid { get; init; }

    public IReadOnlyList<int> Pids { get; init; } = [];

    public string? CgroupPath { get; init; }
}
