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

    public Stream OpenStandardOutput() => Console.OpenStandardOutput();

    public bool IsOutputRedirected => Console.IsOutputRedirected;
}
