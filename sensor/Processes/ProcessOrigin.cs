namespace Guard.Sensor.Processes;

/// <summary>Where the table learnt of a process.</summary>
public enum ProcessOrigin
{
    Procfs,
    Fork,
    Exec,
}
