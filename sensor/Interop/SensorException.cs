namespace Guard.Sensor.Interop;

/// <summary>A failure whose message is written for the person at the terminal: one line, no stack.</summary>
public sealed class SensorException : Exception
{
    public SensorException(string message) : base(message) { }

    public SensorException(string message, Exception inner) : base(message, inner) { }

    public SensorException() { }
}
