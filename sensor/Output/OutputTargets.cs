namespace Guard.Sensor.Output;

/// <summary>Lines to a stream: stdout, a pipe to a SIEM shipper.</summary>
public sealed class StreamTarget : IOutputTarget
{
    /// <summary>EPIPE (asm-generic/errno-base.h): a write to a pipe whose reader left; .NET puts the errno in HResult.</summary>
    private const int BrokenPipe = 32;

    private readonly Stream stream;
    private readonly Action? onReaderGone;
    private bool gone;

    /// <summary>
    /// Lines to <paramref name="stream"/> (the caller's to close), unbuffered:
    /// each batch is one write. <paramref name="onReaderGone"/> is told once,
    /// from the writer's thread, when a write fails with EPIPE (`guard watch | head -1`).
    /// </summary>
    public StreamTarget(Stream stream, Action? onReaderGone = null)
    {
        this.stream = stream;
        this.onReaderGone = onReaderGone;
    }

    /// <inheritdoc/>
    public string? LastError { get; private set; }

    /// <inheritdoc/>
    public int Write(ReadOnlySpan<byte> lines)
    {
        if (gone)
            return lines.Count((byte)'\n');
        try
        {
            stream.Write(lines);
            stream.Flush();
            LastError = null;
            return 0;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            LastError = e.Message;
            if (e.HResult == BrokenPipe && !gone)
            {
                gone = true;
                onReaderGone?.Invoke();
            }
            return lines.Count((byte)'\n');
        }
    }

    /// <inheritdoc/>
    public void Reopen()
    {
    }

    /// <inheritdoc/>
    public void Tick(DateTime utcNow)
    {
    }

    /// <summary>A write blocked on a pipe cannot be given up from here: the writer thread stays until the process ends.</summary>
    public void Abort() => gone = true;

    /// <summary>The stream is the caller's: nothing to close.</summary>
    public void Dispose()
    {
    }
}

/// <summary>Lines to a <see cref="RotatingFile"/>.</summary>
public sealed class FileTarget : IOutputTarget
{
    private readonly RotatingFile file;

    /// <summary>Lines to <paramref name="file"/>, which this target closes.</summary>
    public FileTarget(RotatingFile file) => this.file = file;

    /// <summary>The file written.</summary>
    public RotatingFile File => file;

    /// <inheritdoc/>
    public string? LastError => file.LastError;

    /// <inheritdoc/>
    public int Write(ReadOnlySpan<byte> lines) => file.Append(lines);

    /// <inheritdoc/>
    public void Reopen() => file.Reopen();

    /// <inheritdoc/>
    public void Tick(DateTime utcNow) => file.RotateIfOld(utcNow);

    /// <summary>A file write does not block for long (a full disk fails at once): nothing to give up.</summary>
    public void Abort()
    {
    }

    /// <inheritdoc/>
    public void Dispose() => file.Dispose();
}
