namespace Guard.Sensor.Output;

/// <summary>The outputs' names, as the heartbeat (guard.health.outputs.NAME), the summary and the configuration say them.</summary>
public static class OutputNames
{
    /// <summary>Events on standard output.</summary>
    public const string Stdout = "stdout";

    /// <summary>Events in a rotated file.</summary>
    public const string File = "file";

    /// <summary>Events to syslog.</summary>
    public const string Syslog = "syslog";

    /// <summary>Actions in the host's action log.</summary>
    public const string ActionLog = "action_log";

    private static readonly byte[][] Names = [.. new[] { Stdout, File, Syslog, ActionLog }.Select(n => System.Text.Encoding.ASCII.GetBytes(n))];

    /// <summary>The name as UTF-8 for a JSON member: one of the four, or "other" for a name not among them.</summary>
    public static ReadOnlySpan<byte> Utf8(string name) => name switch
    {
        Stdout => Names[0],
        File => Names[1],
        Syslog => Names[2],
        ActionLog => Names[3],
        _ => "other"u8,
    };
}
