using Guard.Sensor.Detection;
using Guard.Sensor.Events;

namespace Guard.Sensor.Response;

/// <summary>
/// Carries out what an alert asks for, on exactly the process it names (pid
/// and start time through a pidfd), and writes what was done into the alert.
/// </summary>
public sealed class Responder
{
    private readonly ProcessKiller killer;

    public Responder(ProcessKiller killer) => this.killer = killer;

    public void Apply(AlertEvent alert)
    {
        if (!KernelRules.Acts(alert.RequestedAction) || alert.Process is not { } process)
            return;
        // Evidence first: after the kill there is nothing left in /proc to read.
        if (OpenConnections.Of(process.Pid) is { Count: > 0 } connections)
            alert.Evidence = [.. alert.Evidence, new("connections", string.Join(", ", connections))];
        KillOutcome outcome = killer.Kill(new ProcessTarget(process.Pid, process.StartTicks), KillScope.Tree);
        double ms = (Libc.NowNs(Libc.ClockBoottime) - alert.TimeNs) / 1e6;
        var response = new List<string>
        {
            outcome.Done
                ? $"{outcome.Message} (pidfd), {ms:F1} ms after the event"
                : $"kill refused: {outcome.Message}",
        };
        if (alert.RequestedAction is RuleAction.KillJob or RuleAction.QuarantineJob)
            response.Add($"{(alert.RequestedAction == RuleAction.KillJob ? "killing" : "quarantine")} of the launching job is not available yet: the job was left running");
        alert.Response = [.. alert.Response, .. response];
    }
}
