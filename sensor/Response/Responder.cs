using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Carries out what an alert asks for: the miner's tree killed (pidfd, pid
/// and start time), then its job killed or held for a person: the job's own
/// cgroup when it has one, else the tree under its job root. Writes what was
/// done into the alert and returns each action as an event ordered by the rule.
/// </summary>
public sealed class Responder
{
    private readonly ProcessKiller killer;
    private readonly Quarantines quarantines;
    private readonly Policy policy;
    private readonly IReadOnlyList<GpuDevice> gpuDevices;

    /// <summary>Responds with <paramref name="killer"/> and <paramref name="quarantines"/> as <paramref name="policy"/> says; holds deny <paramref name="gpuDevices"/>.</summary>
    public Responder(ProcessKiller killer, Quarantines quarantines, Policy policy, IReadOnlyList<GpuDevice> gpuDevices)
    {
        this.killer = killer;
        this.quarantines = quarantines;
        this.policy = policy;
        this.gpuDevices = gpuDevices;
    }

    /// <summary>
    /// Carries out <paramref name="alert"/>'s requested action and adds what was
    /// done to its response lines; returns one action event per action taken
    /// (none for an alert that only reports). A hold that fails is a refused outcome, not an exception.
    /// </summary>
    public IReadOnlyList<ActionEvent> Apply(AlertEvent alert)
    {
        if (!KernelRules.Acts(alert.RequestedAction) || alert.Process is not { } process)
            return [];
        var actions = new List<ActionEvent>();
        var response = new List<string>();
        IReadOnlyList<int> killed = alert.KilledInKernel ? [process.Pid] : [];
        if (!alert.KilledInKernel)
        {
            // Evidence first: after the kill there is nothing left in /proc to read.
            if (OpenConnections.Of(process.Pid, process.StartTicks) is { Count: > 0 } connections)
                alert.Evidence = [.. alert.Evidence, new("connections", string.Join(", ", connections))];
            KillOutcome outcome = killer.Kill(new ProcessTarget(process.Pid, process.StartTicks), KillScope.Tree);
            double ms = (Libc.NowNs(Libc.ClockBoottime) - alert.TimeNs) / 1e6;
            response.Add(outcome.Done ? $"{outcome.Message} (pidfd), {ms:F1} ms after the event" : $"kill refused: {outcome.Message}");
            actions.Add(outcome.ToActionEvent(process, alert.Rule));
            killed = outcome.Signalled;
        }
        ProcessTarget? root = alert.JobRoot is { } r ? new ProcessTarget(r.Pid, r.StartTicks) : null;
        // The job's own cgroup, where it has one. Never a unit the policy does not name: that is no job
        // (CgroupJobs), so a process in cron.service gets only its launcher's tree held, or nothing.
        Job? cgroupJob = process.Membership.Cgroup;
        if (cgroupJob is null && root is { } own && killed.Contains(own.Pid))
        {
            // The miner was its own job's root (python3 miner.py from a tool shell): killing it ended the job.
            if (alert.RequestedAction is RuleAction.KillJob or RuleAction.QuarantineJob)
                response.Add("its job was its own tree: nothing left to hold or kill");
        }
        else if (alert.RequestedAction == RuleAction.KillJob)
        {
            KillOutcome? job = cgroupJob is not null ? killer.KillJob(cgroupJob, new ProcessTarget(process.Pid, process.StartTicks))
                : root is { } t ? killer.Kill(t, KillScope.Tree)
                : null;
            response.Add(job is null ? "no job to kill: it ran outside any job" : job.Done ? job.Message : $"job kill refused: {job.Message}");
            if (job is not null)
                actions.Add(job.ToActionEvent(alert.JobRoot ?? process, alert.Rule));
        }
        else if (alert.RequestedAction == RuleAction.QuarantineJob)
        {
            var request = new QuarantineRequest
            {
                Reason = $"{alert.Rule}: {alert.Description} ({process.DisplayName}, pid {process.Pid})",
                OrderedBy = alert.Rule,
                OrderedByUid = Libc.GetUid(),
                Timeout = policy.Quarantine.TimeoutMinutes > 0 ? TimeSpan.FromMinutes(policy.Quarantine.TimeoutMinutes) : null,
                OnTimeout = policy.Quarantine.KillOnTimeout ? QuarantineExpiry.Kill : QuarantineExpiry.Release,
                GpuDevices = gpuDevices,
            };
            QuarantineOutcome? held;
            try
            {
                held = cgroupJob is not null ? quarantines.HoldJob(cgroupJob, request)
                    : root is { } t ? quarantines.HoldTree(t, request)
                    : null;
            }
            catch (Exception e) when (e is SensorException or IOException or UnauthorizedAccessException)
            {
                // The sensor goes on watching; the alert says the job is not held.
                held = QuarantineOutcome.Refused(QuarantineOutcome.HoldAction, e.Message, alert.Rule, request.OrderedByUid);
            }
            response.Add(held is null ? "no job to hold: it ran outside any job" : held.Done ? held.Message : $"quarantine failed: {held.Message}");
            if (held is not null)
                actions.Add(held.ToActionEvent(alert.JobRoot ?? process));
        }
        alert.Response = [.. alert.Response, .. response];
        return actions;
    }
}
