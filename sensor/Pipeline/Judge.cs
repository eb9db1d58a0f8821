using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The findings-and-response path: runs the policy's detectors on what the
/// pipeline has emitted, has the responder carry out what a finding asks,
/// then emits the alert (one per process and rule, repeats counted) and each
/// action taken. Allowed processes and destinations are never judged.
/// </summary>
public sealed class Judge
{
    private readonly PolicyDetectors detectors;
    private readonly Responder? responder;
    private readonly EventEmitter emitter;
    private readonly AlertCounts alertCounts = new();
    private readonly List<AlertEvent> dueAlerts = [];

    /// <param name="detectors">The policy's detectors.</param>
    /// <param name="responder">Acts on findings; null only reports them.</param>
    /// <param name="emitter">Where alerts and actions go.</param>
    public Judge(PolicyDetectors detectors, Responder? responder, EventEmitter emitter)
    {
        this.detectors = detectors;
        this.responder = responder;
        this.emitter = emitter;
    }

    /// <summary>A program started: known miner (killed by the kernel already), arguments, hash, weak evidence.</summary>
    public void OnExec(ProcessEntry entry, in ExecRecord record)
    {
        try
        {
            if (detectors.Allowed.Allows(entry))
                return;
            long timeNs = (long)record.Header.TimeNs;
            if (detectors.KnownMiners.OnExec(entry, record) is { } verdict)
            {
                Respond(verdict); // the kernel has killed it already; its job is left to the response
                return;
            }
            if ((detectors.Arguments.OnExec(entry, timeNs) ?? detectors.Hashes.OnExec(entry, timeNs)) is { } alert)
                Respond(alert);
            if (detectors.Weak.OnExec(entry, timeNs) is { } weak)
                emitter.Emit(weak);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A process ended: its GPU verdict is forgotten and its unreported repeats go out.</summary>
    public void OnExit(ProcessEntry entry)
    {
        try
        {
            detectors.GpuIntruders.Forget(entry);
            dueAlerts.Clear();
            alertCounts.OnExit(entry, dueAlerts);
            foreach (AlertEvent repeated in dueAlerts)
                emitter.Emit(repeated);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A connect's outcome: pool ports and addresses are weak evidence.</summary>
    public void OnConnect(NetworkEvent connect)
    {
        try
        {
            if (!Exempt(connect.Process, (ushort)connect.Family, connect.DestinationAddress, (ushort)connect.DestinationPort)
                && detectors.Weak.OnConnect(connect.Process, connect.DestinationAddress, (ushort)connect.Family, (ushort)connect.DestinationPort, connect.TimeNs) is { } alert)
                emitter.Emit(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// What the kernel decided about a TCP stream (a record per decision,
    /// however late in the stream): a Stratum verdict, acted on unless the
    /// process or destination is allowed; or the destination asked of a proxy,
    /// a pool domain strong evidence and a pool port weak.
    /// <paramref name="head"/>: the connection's first bytes while still gathered, else null.
    /// </summary>
    public void OnStream(ProcessEntry? owner, in StreamRecord record, AssembledPayload? head)
    {
        try
        {
            long timeNs = (long)record.Header.TimeNs;
            if (record.Verdict != 0)
            {
                if (!Exempt(owner, record.Family, record.DestinationAddress, record.DestinationPort))
                    Respond(detectors.Stratum.OnVerdict(owner, record, head is null ? [] : head.Bytes));
                return;
            }
            // A proxy the policy allows may still be asked for a pool: only an allowed process is exempt.
            if (record.Proxy == StreamProxy.None || (owner is not null && detectors.Allowed.Allows(owner)))
                return;
            if (detectors.Stratum.OnProxy(owner, record) is { } pool)
            {
                Respond(pool);
                return;
            }
            int port = StratumFindings.ProxyPort(record);
            AlertEvent? weak = StratumFindings.ProxyHostAddress(record) is { } ip
                ? detectors.Weak.OnConnect(owner, ip.GetAddressBytes(), ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 10 : 2, port, timeNs)
                : StratumFindings.ProxyHostName(record) is { } name ? detectors.Weak.OnProxyPort(owner, $"{name}:{port}", port, timeNs) : null;
            if (weak is not null)
                emitter.Emit(weak);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// A connection's first bytes, whole: a ClientHello naming a pool; a
    /// Stratum method, when the kernel's record of one never came
    /// (<paramref name="kernelDecided"/> false: a full ring lost it).
    /// </summary>
    public void OnFirstBytes(NetworkEvent payload, bool kernelDecided)
    {
        try
        {
            if (!Exempt(payload.Process, (ushort)payload.Family, payload.DestinationAddress, (ushort)payload.DestinationPort)
                && detectors.Stratum.OnFirstBytes(payload.Process, payload.DataSpan, payload.DestinationAddress, payload.Family, payload.DestinationPort, kernelDecided, payload.TimeNs) is { } alert)
                Respond(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A DNS query: pool domains are weak evidence.</summary>
    public void OnDns(NetworkEvent query)
    {
        try
        {
            if (detectors.Weak.OnDns(query.Process, System.Text.Encoding.ASCII.GetString(query.DataSpan), query.TimeNs) is { } alert)
                emitter.Emit(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>The kernel's rounding-mode switch counts (pid, switches per mode), sampled at <paramref name="nowNs"/>.</summary>
    public void OnRoundingSample(IReadOnlyList<(int Pid, GuardRounding Switches)> counts, long nowNs, ProcessTable table)
    {
        foreach (AlertEvent alert in detectors.Rounding.Sample(counts, nowNs, table))
        {
            if (alert.Process is { } p && detectors.Allowed.Allows(p))
                continue;
            Respond(alert);
        }
    }

    /// <summary>A device sample: a GPU busy with no process to account for it.</summary>
    public void OnGpuDevice(GpuDeviceSample device, long nowNs)
    {
        try
        {
            if (detectors.GpuIntruders.OnDevice(device, nowNs) is { } hidden)
                Respond(hidden);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A process NVML puts on a GPU.</summary>
    public void OnNvmlProcess(ProcessEntry entry, GpuDeviceSample device, GpuProcessSample sample, ProcessTable table, long nowNs)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry) && detectors.GpuIntruders.OnNvmlProcess(entry, device, sample, table, nowNs) is { } alert)
                Respond(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A process whose driver calls the kernel counted moved.</summary>
    public void OnGpuWork(ProcessEntry entry, GpuActivity gpu, ProcessTable table, long nowNs)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry) && detectors.GpuIntruders.OnGpuWork(entry, gpu, table, nowNs) is { } alert)
                Respond(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// Detector faults so far: an exception a detector threw on hostile input
    /// (a command line, a payload), caught so that it never stops the sensor.
    /// </summary>
    public long Faults { get; private set; }

    /// <summary>The latest fault, one line (type and message); null when none.</summary>
    public string? LastFault { get; private set; }

    /// <summary>Counts a detector's exception; the event it was judging goes unjudged, the sensor goes on.</summary>
    private bool Faulted(Exception e)
    {
        // Out of memory is the process's, and a failed write is the sink's (a closed stdout ends the run): neither is a detector's.
        if (e is OutOfMemoryException or IOException)
            return false;
        Faults++;
        LastFault = $"{e.GetType().Name}: {e.Message}";
        return true;
    }

    /// <summary>No network finding about an allowed process, or a connection to an allowed destination.</summary>
    private bool Exempt(ProcessEntry? process, ushort family, ReadOnlySpan<byte> address, ushort port) =>
        (process is not null && detectors.Allowed.Allows(process)) || detectors.Destinations.Allows(family, address, port);

    /// <summary>Acts on an alert as its rule asks, then emits the alert and each action taken.</summary>
    private void Respond(AlertEvent alert)
    {
        IReadOnlyList<ActionEvent> actions = responder?.Apply(alert) ?? [];
        if (alertCounts.Admit(alert))
            emitter.Emit(alert);
        foreach (ActionEvent action in actions)
            emitter.Emit(action);
    }
}
