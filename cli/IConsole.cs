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
    /// Standard output (fd 1) as a plain file stream: a write to a pipe whose
    /// reader is gone fails with EPIPE (an IOException), where
    /// Console.OpenStandardOutput ignores it and `guard watch | head -1` would
    /// run on, writing into nothing, forever.
    /// </summary>
    public Stream OpenStandardOutput() => new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);

    public bool IsOutputRedirected => Console.IsOutputRedirected;
}
