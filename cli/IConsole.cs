namespace Guard.Cli;

/// <summary>The terminal, behind one small interface so tests can read exact lines.</summary>
public interface IConsole
{
    TextWriter Out { get; }

    TextWriter Error { get; }

    /// <summary>Standard output as bytes, for JSON lines.</summary>
    Stream OpenStandardOutput();

    bool IsOutputRedirected { get; }
}

public sealed class SystemConsole : IConsole
{
    public static readonly SystemConsole Instance = new();

    public TextWriter Out => Console.Out;

    public TextWriter Error => Console.Error;

    /// <summary>
    /// Standard output (fd 1) written with write(2) (<see cref="Guard.Sensor.Interop.DescriptorWriteStream"/>):
    /// Console.OpenStandardOutput ignores EPIPE, so `guard watch | head -1` would run on, writing into
    /// nothing, forever; a FileStream on fd 1 writes a regular file at a position of its own (pwrite),
    /// so with `> file 2>&1` stdout's lines and stderr's overwrite each other.
    /// </summary>
    public Stream OpenStandardOutput() => new Guard.Sensor.Interop.DescriptorWriteStream(1);

    public bool IsOutputRedirected => Console.IsOutputRedirected;
}

