namespace Guard.Sensor.Events;

public sealed class ProcessEvent : SensorEvent
{
    private EventType type;

    public override EventType Type => type;

    internal void Reset(EventType eventType) => type = eventType;

    /// <summary>For exit: the wait status (signal in bits 0-6, status in 8-15, core dump bit 7).</summary>
    public uint ExitStatus { get; internal set; }

    public int ExitCode => (int)((ExitStatus >> 8) & 0xFF);

    public int ExitSignal => (int)(ExitStatus & 0x7F);

    public bool CoreDumped => (ExitStatus & 0x80) != 0;
}
