using Guard.Sensor.Events;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Output;

/// <summary>
/// Writes an event as one Elastic Common Schema object: ECS names where ECS
/// has them, guard.* for what it lacks (job, GPU, payload, health). Each
/// family of events has its own renderer; this only picks it.
/// </summary>
public sealed class EcsEncoder
{
    /// <summary>ecs.version: the Elastic Common Schema release the field names follow.</summary>
    public const string EcsVersion = "8.11.0";

    private readonly EcsHeader header;
    private readonly EcsProcessFields processes;
    private readonly EcsNetworkFields network;
    private readonly EcsGpuFields gpu;
    private readonly EcsMetricFields metrics;
    private readonly EcsFindingFields findings;
    private readonly EcsDenialFields denials;

    /// <summary>
    /// An encoder for this run's lines, with arguments redacted by <paramref name="redactor"/>.
    /// <paramref name="bootNowNs"/> reads CLOCK_BOOTTIME in ns for event.created (the clock itself when null).
    /// </summary>
    public EcsEncoder(RunInfo run, ArgumentRedactor redactor, Func<long>? bootNowNs = null)
    {
        header = new EcsHeader(run, bootNowNs ?? (static () => Libc.NowNs(Libc.ClockBoottime)));
        processes = new EcsProcessFields(header, redactor);
        network = new EcsNetworkFields(header, processes);
        gpu = new EcsGpuFields(header, processes);
        metrics = new EcsMetricFields(header, processes);
        findings = new EcsFindingFields(header, processes);
        denials = new EcsDenialFields(header, processes);
    }

    /// <summary>Replaces what <paramref name="w"/> holds with the event's line, newline included.</summary>
    public void Encode(SensorEvent e, JsonLineWriter w)
    {
        header.Start(w, e.TimeNs);
        switch (e)
        {
            case ProcessEvent p:
                processes.Write(w, p);
                break;
            case NetworkEvent n:
                network.Write(w, n);
                break;
            case GpuEvent g:
                gpu.Write(w, g);
                break;
            case GpuMetricEvent m:
                metrics.Write(w, m);
                break;
            case HeartbeatEvent h:
                metrics.Write(w, h);
                break;
            case ActionEvent a:
                findings.Write(w, a);
                break;
            case AlertEvent alert:
                findings.Write(w, alert);
                break;
            case ProcessDenialEvent denial:
                denials.Write(w, denial);
                break;
            case ConfineEvent c:
                network.Write(w, c);
                break;
        }
        w.EndLine();
    }
}
