using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>Where events go (--output). Events are reused after Write returns: copy what you keep.</summary>
public interface IEventSink : IDisposable
{
    void Write(SensorEvent e);

    /// <summary>Called after each batch of records, so a pipe sees lines promptly.</summary>
    void Flush();
}
