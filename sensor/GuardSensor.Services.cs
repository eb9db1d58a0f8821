using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Sensor;

/// <summary>
/// What a service adds to a running sensor, kept apart from its event flow:
/// the metrics endpoint and /healthz (read from other threads, written here
/// as plain values the draining thread owns), ring-drop alerts, and policy
/// reloads applied in place.
/// </summary>
public sealed partial class GuardSensor
{
    /// <summary>event.action of a reload's line, and its action label in the metrics.</summary>
    public const string ReloadAction = "policy-reload";

    private const long ServiceTickNs = 1_000_000_000;

    private readonly MetricCounters metricCounters;
    private MetricsServer? metricsServer;
    private PolicyReloader? reloader;
    private RingDropAlerts? dropAlerts;
    private long nextServiceTickNs;

    // Written by the draining thread, read by the metrics server's.
    private long lastRecordNs;
    private int processCount;
    private int gpuSourceUp = -1;
    private PolicyInForce? policyInForce;
    private long reloadsApplied;
    private long reloadsRefused;

    /// <summary>Where the metrics endpoint listens (the port chosen when 0 was asked); null when it is off.</summary>
    public System.Net.IPEndPoint? MetricsEndpoint => metricsServer?.Endpoint;

    /// <summary>The counters the outputs count into, shown by the metrics endpoint.</summary>
    public MetricCounters Counters => metricCounters;

    /// <summary>The policy in force (its SHA-256, sources, mode); null when the sensor runs without one.</summary>
    public PolicyInForce? PolicyInForce => Volatile.Read(ref policyInForce);

    /// <summary>Drop alerts sent so far.</summary>
    public long DropAlertsSent => dropAlerts?.Sent ?? 0;

    private void StartServices()
    {
        lastRecordNs = startNs;
        policyInForce = InForce(options.Policy, options.PolicySha256);
        if (options.DropAlertRate > 0)
            dropAlerts = new RingDropAlerts(options.DropAlertRate, emitter);
        if (options.ReloadPolicy is { } load)
            reloader = new PolicyReloader(load, () => reader.Wake(), options.OnReload);
        if (options.MetricsEndpoint is { } endpoint)
            metricsServer = new MetricsServer(endpoint, RenderMetrics, Unhealthy);
    }

    private void StopServices()
    {
        metricsServer?.Dispose();
        metricsServer = null;
        reloader?.Dispose();
        reloader = null;
    }

    /// <summary>Each time round the draining loop: publish what the metrics read, sample drops, apply a reload that is ready.</summary>
    private void PollServices(long now, int records)
    {
        if (records > 0)
            Volatile.Write(ref lastRecordNs, now);
        if (metricsServer is not null)
            Volatile.Write(ref processCount, table.Count);
        if (now >= nextServiceTickNs && (dropAlerts is not null || metricsServer is not null))
        {
            nextServiceTickNs = now + ServiceTickNs;
            dropAlerts?.Sample(kernel.ReadDrops(), now);
            Volatile.Write(ref gpuSourceUp, gpuSource.Available ? 1 : 0);
        }
        if (reloader?.Take() is { } prepared)
            ApplyReload(prepared, now);
    }

    private static PolicyInForce? InForce(Policy? policy, string? sha256) =>
        policy is null ? null : new PolicyInForce(sha256 ?? "", policy.Sources, policy.Mode == PolicyMode.Enforce ? "enforce" : "audit");

    /// <summary>
    /// Puts a checked policy in force, on the draining thread: the kernel's maps
    /// in place (nothing both policies name is ever missing), this sensor's
    /// pinned enforcement when the mode changes, then the detectors and the
    /// responder. A policy refused, or one the kernel would not take whole
    /// (the old rules are written back), leaves the running one in force.
    /// Either way a policy-reload action line says which policy is in force.
    /// </summary>
    private void ApplyReload(PreparedReload prepared, long now)
    {
        PolicyInForce? before = policyInForce;
        string? refusal = prepared.Errors.Count > 0 ? string.Join("; ", prepared.Errors)
            : judge is null ? "this sensor runs without a policy; restart it with one"
            : null;
        if (refusal is null)
        {
            try
            {
                Enforce(prepared.Policy!, prepared.Rules!);
                // The sections stay those of start; the files they name are found again.
                confinement?.ResolveFilesAgain();
            }
            catch (SensorException e)
            {
                refusal = e.Message;
            }
        }
        bool applied = refusal is null;
        PolicyInForce? inForce = applied ? InForce(prepared.Policy, prepared.Sha256) : before;
        Volatile.Write(ref policyInForce, inForce);
        if (applied)
            Interlocked.Increment(ref reloadsApplied);
        else
            Interlocked.Increment(ref reloadsRefused);
        string kept = before is null ? "" : $" (sha256 {before.Sha256})";
        string message = applied
            ? $"policy {string.Join(" + ", inForce!.Sources)} in force, mode {inForce.Mode}, sha256 {inForce.Sha256}"
            : $"policy refused, the running one{kept} stays: {refusal}";
        emitter.Emit(new ActionEvent
        {
            Action = ReloadAction,
            Succeeded = applied,
            Message = message,
            OrderedBy = "sighup",
            TimeNs = now,
            Policy = inForce,
        });
        reloader!.Complete(applied, inForce?.Sha256 ?? "", applied
            ? [$"guard watch: policy reloaded: {message}"]
            : [$"guard watch: policy reload refused, the running policy{kept} stays:", .. prepared.Errors.Count > 0 ? prepared.Errors : [refusal!]]);
    }

    /// <summary>The kernel's part first (rolled back when it fails), then user space's; under the handover's lock.</summary>
    private void Enforce(Policy policy, InKernelRules rules)
    {
        lock (handOverGate)
        {
            if (handedOver is not null)
                throw new SensorException("the sensor is stopping: its enforcement was handed over");
            InKernelRules old = options.Kernel.InKernelRules;
            if (rules.Enforce && ownPins is null
                && SensorPins.Owners().FirstOrDefault(o => o.Pid != Environment.ProcessId && ProcfsReader.IsRunning(o.Pid, o.StartTicks)) is { Pid: > 0 } other)
                throw new SensorException($"another guard watch (pid {other.Pid}) enforces on this host: this one cannot take an enforcing policy");
            try
            {
                kernel.UpdateExecRules(rules);
                if (rules.Enforce && ownPins is null)
                    ownPins = PinEnforcement(kernel);
            }
            catch (SensorException e)
            {
                try
                {
                    kernel.UpdateExecRules(old);
                }
                catch (SensorException again)
                {
                    throw new SensorException($"{e.Message}; writing the running rules back failed too: {again.Message}");
                }
                throw;
            }
            if (!rules.Enforce && ownPins is { } pins)
            {
                // Audit now: the kernel's programs stay attached through this sensor, acting on nothing.
                SensorPins.Remove(pins);
                ownPins = null;
            }
            options = options with { Policy = policy, Kernel = options.Kernel with { InKernelRules = rules } };
        }
        detectors = PolicyDetectors.From(policy, detectors!.Executables);
        judge!.Reload(detectors, new Responder(new ProcessKiller(options.Kernel.CgroupRoot!), quarantines!, policy, options.Kernel.GpuDevices));
        SampleRounding(policy);
    }

    /// <summary>/healthz: null while the ring is drained in time, else why not, in one line.</summary>
    private string? Unhealthy()
    {
        if (watchdog is not { } w)
            return "starting";
        TimeSpan late = w.Late;
        return late > w.StallLimit
            ? string.Create(CultureInfo.InvariantCulture, $"drain stalled: the ring has not been drained for {late.TotalSeconds:F1} s (limit {w.StallLimit.TotalSeconds:F1} s)")
            : null;
    }

    /// <summary>The /metrics body: every family, with its HELP and TYPE, on the metrics server's thread.</summary>
    private string RenderMetrics()
    {
        long now = Libc.NowNs(Libc.ClockBoottime);
        var m = new PrometheusText();

        m.Counter("guard_events_total", "Events written, by type (after --type, --pid and --job).");
        foreach (EventType type in Enum.GetValues<EventType>())
            m.Sample("type", EventNames.Of(type), Volatile.Read(ref emitter.EmittedByType[(int)type]));

        m.Counter("guard_ring_drops_total", "Kernel records lost to a full ring buffer, by record kind.");
        ulong[] drops = kernel.ReadDrops();
        for (int kind = 1; kind < drops.Length; kind++)
            m.Sample("kind", EventNames.Of((RecordKind)kind), drops[kind]);

        m.Counter("guard_decode_failures_total", "Kernel records that could not be decoded.").Sample(decoder.TotalFailures);

        m.Counter("guard_findings_total", "Alerts, by rule.");
        foreach ((string rule, _, long n) in metricCounters.Findings.Snapshot())
            m.Sample("rule", rule, n);

        m.Counter("guard_actions_total", "Actions taken or refused, by action and outcome.");
        foreach ((string action, string outcome, long n) in metricCounters.Actions.Snapshot())
            m.Sample("action", action, "outcome", outcome, n);

        m.Counter("guard_denials_total", "What the kernel refused: exec (a miner killed at exec), stratum (a Stratum connection's bytes dropped), hold (an attempt to let a held process run).");
        foreach (string kind in (string[])["exec", "hold", "stratum"])
            m.Sample("kind", kind, metricCounters.Denials.Get(kind));

        // The outputs' own counts (the heartbeat's guard.health.outputs), read as they are kept: no second count to drift.
        IReadOnlyList<OutputHealth> outputs = sink.Health;
        m.Counter("guard_output_events_total", "Events an output wrote, by output (stdout, file, syslog, action_log).");
        foreach (OutputHealth o in outputs)
            m.Sample("output", o.Name, o.Written);
        m.Counter("guard_output_dropped_total", "Events an output lost, by output and reason: queue_full (it could not keep up, or was stalled) or write_failed (a full disk, a refused connection).");
        foreach (OutputHealth o in outputs)
        {
            m.Sample("output", o.Name, "reason", "queue_full", o.Dropped);
            m.Sample("output", o.Name, "reason", "write_failed", o.Failed);
        }

        m.Gauge("guard_program_attached", "Whether each kernel program is attached (1) or missing (0).");
        foreach (AttachedProgram a in kernel.Attached)
            m.Sample("program", a.Spec.Name, 1);
        foreach (MissingProgram missing in kernel.Missing)
            m.Sample("program", missing.Spec.Name, 0);
        m.Gauge("guard_programs_attached", "Kernel programs attached.").Sample(kernel.Attached.Count);
        m.Gauge("guard_programs_missing", "Kernel programs not attached (optional ones that could not be, or were not wanted).").Sample(kernel.Missing.Count);

        // Read without the handover's lock: a scrape never waits on the draining thread.
        string enforcer = Volatile.Read(ref ownPins) is not null ? "this_sensor" : EnforcementKernel.Active ? "pinned" : "none";
        m.Gauge("guard_enforcement", "Who enforces the kernel's rules: this_sensor, pinned (left by a stopped sensor), or none (audit).");
        foreach (string by in (string[])["none", "pinned", "this_sensor"])
            m.Sample("by", by, by == enforcer ? 1 : 0);

        int gpuUp = Volatile.Read(ref gpuSourceUp);
        m.Gauge("guard_gpu_sampler", "The NVML sampler's state: sampling, unavailable (no driver or library), or starting.");
        foreach (string state in (string[])["sampling", "starting", "unavailable"])
            m.Sample("state", state, (gpuUp switch { 1 => "sampling", 0 => "unavailable", _ => "starting" }) == state ? 1 : 0);

        m.Gauge("guard_processes", "Processes in the sensor's process table.").Sample(Volatile.Read(ref processCount));
        m.Gauge("guard_last_record_age_seconds", "Seconds since the last kernel record was read.").Sample(Seconds(now - Volatile.Read(ref lastRecordNs)));
        m.Gauge("guard_drain_late_seconds", "Seconds since the draining thread last came round its loop.").Sample(watchdog?.Late.TotalSeconds ?? 0);
        m.Gauge("guard_healthy", "1 while the ring is drained within the stall limit (as /healthz), else 0.").Sample(Unhealthy() is null ? 1 : 0);
        m.Gauge("guard_uptime_seconds", "Seconds since the sensor started.").Sample(Seconds(now - startNs));

        m.Counter("guard_detector_faults_total", "Events a detector failed on (caught; the event went unjudged).").Sample(judge?.Faults ?? 0);
        m.Counter("guard_hashes_dropped_total", "Executables not hashed: the hash queue was full.").Sample(detectors?.Executables.Dropped ?? 0);
        m.Counter("guard_hashes_timed_out_total", "Executables not hashed: the read took over the time limit.").Sample(detectors?.Executables.TimedOut ?? 0);

        m.Counter("guard_drop_alerts_total", "Ring-drop alerts sent (--drop-alert-rate).").Sample(DropAlertsSent);
        m.Counter("guard_policy_reloads_total", "Policy reloads, by outcome.")
            .Sample("outcome", "applied", Interlocked.Read(ref reloadsApplied))
            .Sample("outcome", "refused", Interlocked.Read(ref reloadsRefused));
        if (PolicyInForce is { } policy)
            m.Gauge("guard_policy_info", "The policy in force: its SHA-256 and mode (always 1).").Sample("sha256", policy.Sha256, "mode", policy.Mode, 1);

        if (metricsServer is { } server)
        {
            m.Counter("guard_metrics_requests_total", "Requests this endpoint answered.").Sample(server.Served);
            m.Counter("guard_metrics_rejected_total", "Connections this endpoint refused: too many open, a bad or oversized request, or too slow.")
                .Sample("reason", "busy", server.Rejected)
                .Sample("reason", "bad_request", server.Refused)
                .Sample("reason", "timeout", server.TimedOut);
        }
        return m.ToString();
    }

    private static double Seconds(long ns) => Math.Round(Math.Max(0, ns) / 1e9, 3);
}
