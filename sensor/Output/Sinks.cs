using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>ECS JSON lines to a stream (stdout, a pipe to a SIEM shipper).</summary>
public sealed class JsonLinesSink : IEventSink
{
    private readonly Stream stream;
    private readonly EcsEncoder encoder;
    private readonly JsonLineWriter writer = new();

    public JsonLinesSink(Stream stream, EcsEncoder encoder)
    {
        this.stream = new BufferedStream(stream, 64 * 1024);
        this.encoder = encoder;
    }

    public void Write(SensorEvent e)
    {
        encoder.Encode(e, writer);
        stream.Write(writer.Written);
    }

    public void Flush() => stream.Flush();

    public void Dispose() => stream.Flush();
}

/// <summary>Readable lines for a terminal.</summary>
public sealed class TextLinesSink : IEventSink
{
    private readonly TextWriter output;
    private readonly TextEncoder encoder;

    public TextLinesSink(TextWriter output, TextEncoder encoder)
    {
        this.output = output;
        this.encoder = encoder;
    }

    public void Write(SensorEvent e) => output.WriteLine(encoder.Encode(e));

    public void Flush() => output.Flush();

    public void Dispose() => output.Flush();
}
