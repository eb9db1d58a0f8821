using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;

namespace Guard.Sensor.Output;

/// <summary>
/// Metric lines (event.kind metric): NVML GPU samples of a device or of one
/// process on it, and the sensor's own heartbeat.
/// </summary>
internal sealed class EcsMetricFields(EcsHeader header, EcsProcessFields processes)
{
    /// <summary>Milliwatts in a watt: NVML reports power in mW, guard.gpu.device.power_watts is in W.</summary>
    private const double MilliwattsPerWatt = 1000.0;

    /// <summary>
    /// A GPU sample line's members after the header's: the device's own
    /// (category host: a measure of the host's hardware), or one process's on
    /// it (category process).
    /// </summary>
    public void Write(JsonLineWriter w, GpuMetricEvent m)
    {
        header.Event(w, m.Sequence, "info"u8, m.Sample is null ? "host"u8 : "process"u8,
            EventNames.Utf8(m.Sample is null ? EventAction.GpuSample : EventAction.GpuProcessSample), kind: "metric"u8, dataset: "guard.gpu"u8);
        if (m.Sample is not null)
            processes.Process(w, m.Process);
        w.StartObject("guard"u8);
        w.StartObject("gpu"u8);
        Device(w, m.Device, withUtilization: m.Sample is null);
        if (m.Sample is { } s)
            Usage(w, s);
        w.EndObject();
        if (m.Process is { } process)
            EcsLineageFields.Job(w, process, withCgroup: false);
        w.EndObject();
    }

    /// <summary>A heartbeat line's members after the header's: guard.health, with drops per record kind and executables not hashed.</summary>
    public void Write(JsonLineWriter w, HeartbeatEvent h)
    {
        header.Event(w, h.Sequence, "info"u8, "host"u8, EventNames.Utf8(EventAction.Heartbeat), kind: "metric"u8, dataset: "guard.health"u8);
        w.StartObject("guard"u8);
        w.StartObject("health"u8);
        w.Number("uptime_seconds"u8, Math.Round(h.UptimeSeconds, 3));
        w.Number("events"u8, h.Events);
        w.Number("decode_failures"u8, h.DecodeFailures);
        w.Number("detector_faults"u8, h.DetectorFaults);
        w.Number("processes"u8, h.Processes);
        w.StartObject("relay_lookups"u8);
        w.Number("dropped"u8, h.RelayLookupsDropped);
        w.Number("timed_out"u8, h.RelayLookupsTimedOut);
        w.EndObject();
        w.StartObject("drops"u8);
        w.Number("total"u8, h.Drops);
        for (int kind = 1; kind < h.DropsByKind.Length; kind++)
            w.Number(EventNames.Utf8((RecordKind)kind), h.DropsByKind[kind]);
        w.EndObject();
        w.StartObject("hashes"u8);
        w.Number("dropped"u8, h.HashesDropped);
        w.Number("timed_out"u8, h.HashesTimedOut);
        w.EndObject();
        if (h.Outputs.Count > 0)
        {
            w.StartObject("outputs"u8);
            foreach (OutputHealth o in h.Outputs)
            {
                w.StartObject(OutputNames.Utf8(o.Name));
                w.Number("written"u8, o.Written);
                w.Number("dropped"u8, o.Dropped);
                w.Number("failed"u8, o.Failed);
                w.EndObject();
            }
            w.EndObject();
        }
        w.EndObject();
        w.EndObject();
    }

    /// <summary>guard.gpu.device: identity; for the device's own sample, its utilisation, memory, power and process count too.</summary>
    private static void Device(JsonLineWriter w, GpuDeviceSample d, bool withUtilization)
    {
        w.StartObject("device"u8);
        w.Number("index"u8, d.Index);
        w.Text("name"u8, d.Name);
        w.Text("uuid"u8, d.Uuid);
        if (withUtilization)
        {
            w.Number("utilization_percent"u8, d.GpuPercent);
            w.Number("memory_utilization_percent"u8, d.MemoryPercent);
            w.Number("memory_used_bytes"u8, d.MemoryUsedBytes);
            w.Number("memory_total_bytes"u8, d.MemoryTotalBytes);
            if (d.PowerMilliwatts is uint mw)
                w.Number("power_watts"u8, mw / MilliwattsPerWatt);
            w.Bool("mig"u8, d.Mig);
            w.Number("processes"u8, d.Processes.Count);
            if (d.UtilizationNote is { } note)
                w.Text("note"u8, note);
        }
        w.EndObject();
    }

    /// <summary>guard.gpu.usage: what NVML reported of one process; each member only when it was reported.</summary>
    private static void Usage(JsonLineWriter w, GpuProcessSample s)
    {
        w.StartObject("usage"u8);
        if (s.UsedMemoryBytes is ulong bytes)
            w.Number("memory_bytes"u8, bytes);
        if (s.SmPercent is uint sm)
            w.Number("sm_percent"u8, sm);
        if (s.MemoryPercent is uint mem)
            w.Number("memory_percent"u8, mem);
        w.EndObject();
    }
}
