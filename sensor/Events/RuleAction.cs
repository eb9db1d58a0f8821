namespace Guard.Sensor.Events;

/// <summary>What a rule does with the process it fires on.</summary>
public enum RuleAction
{
    Off,
    Alert,

    /// <summary>Kill the miner's process tree.</summary>
    Kill,

    /// <summary>Kill the miner and the job that launched it.</summary>
    KillJob,

    /// <summary>Kill the miner; hold the job that launched it for a person.</summary>
    QuarantineJob,
}
