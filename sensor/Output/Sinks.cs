using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>ECS JSON lines to a stream (stdout, a pipe to a SIEM shipper).</summary>
public sealed class JsonLinesSink : IEventSink
{
    private readonly Stream stream;
    private readonly EcsEncoder encoder;
    private readonly JsonLineWriter writer = new();
    // Set once a write or flush failed (EPIPE: the reader left): Dispose must not try again.
    private bool broken;

    /// <summary>Lines to <paramref name="stream"/>, through a 64 KiB buffer.</summary>
    public JsonLinesSink(Stream stream, EcsEncoder encoder)
    {
        this.stream = new BufferedStream(stream, 64 * 1024);
        this.encoder = encoder;
    }

    /// <inheritdoc/>
    public void Write(SensorEvent e)
    {
        encoder.Encode(e, writer);
        try
        {
            stream.Write(writer.Written);
        }
        catch (IOException)
        {
            broken = true;
            throw;
        }
    }

    /// <inheritdoc/>
    public void Flush()
    {
        try
        {
            stream.Flush();
        }
        catch (IOException)
        {
            broken = true;
            throw;
        }
    }

    /// <summary>Flushes what is buffered, unless the stream has failed already; the stream is the caller's to close.</summary>
    public void Dispose()
    {
        if (!broken)
            stream.Flush();
    }
}

/// <summary>Readable lines for a terminal.</summary>
public sealed class TextLinesSink : IEventSink
{
    private readonly TextWriter output;
    private readonly TextEncoder encoder;

    /// <summary>Lines to <paramref name="output"/> (a terminal).</summary>
    public TextLinesSink(TextWriter output, TextEncoder encoder)
    {
        this.output = output;
        this.encoder = encoder;
    }

    /// <inheritdoc/>
    public void Write(SensorEvent e) => output.WriteLine(encoder.Encode(e));

    /// <inheritdoc/>
    public void Flush() => output.Flush();

    /// <summary>Flushes what is buffered; the writer is the caller's to close.</summary>
    public void Dispose() => output.Flush();
}
