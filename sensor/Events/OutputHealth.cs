namespace Guard.Sensor.Events;

/// <summary>
/// One output's counts since the start, for the heartbeat (guard.health.outputs)
/// and the stop summary: lines written, lines dropped because its queue was
/// full (it could not keep up, or was stalled), and lines it failed to write
/// (an error: a full disk, a refused connection).
/// </summary>
/// <param name="Name">stdout, file, syslog or action_log.</param>
/// <param name="Written">Lines the output took (a file: written; syslog: sent).</param>
/// <param name="Dropped">Lines refused because its queue was full.</param>
/// <param name="Failed">Lines lost to a write or send error.</param>
/// <param name="LastError">The latest error, or null.</param>
public readonly record struct OutputHealth(string Name, long Written, long Dropped, long Failed, string? LastError)
{
    /// <summary>Lines this output lost, whatever the cause.</summary>
    public long Lost => Dropped + Failed;
}
