using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>Where events go (--output). Events are reused after Write returns: copy what you keep.</summary>
public interface IEventSink : IDisposable
{
    /// <summary>Writes one event; the sink may buffer it until <see cref="Flush"/>.</summary>
    void Write(SensorEvent e);

    /// <summary>Called after each batch of records, so a pipe sees lines promptly.</summary>
    void Flush();

    /// <summary>What each output behind this sink wrote and lost, for the heartbeat; none for a sink written in place.</summary>
    IReadOnlyList<OutputHealth> Health => [];
}
