using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;

namespace Guard.Tests.Support;

/// <summary>The user-space pipeline without a kernel: no GPU counters, no responder.</summary>
public static class Pipelines
{
    /// <summary>Every event type shown; findings from <paramref name="detectors"/> when given, reported but never acted on.</summary>
    public static EventPipeline Over(ProcessTable table, IEventSink sink, PolicyDetectors? detectors = null)
    {
        EventEmitter emitter = EmitterOver(table, sink);
        return new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, null),
            detectors is null ? null : new Judge(detectors, null, emitter));
    }

    /// <summary>The findings path alone, for what reaches it from outside the record stream (rounding samples): reported, never acted on.</summary>
    public static Judge JudgeOver(ProcessTable table, IEventSink sink, PolicyDetectors detectors) =>
        new(detectors, null, EmitterOver(table, sink));

    private static EventEmitter EmitterOver(ProcessTable table, IEventSink sink) =>
        new(table, sink, new EventFilter { Types = new HashSet<EventType>(Enum.GetValues<EventType>()) });
}
