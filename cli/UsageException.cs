namespace Guard.Cli;

/// <summary>A value the parser accepted but the command cannot use; exits with <see cref="ExitCode.Usage"/>.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }

    public UsageException() { }

    public UsageException(string message, Exception inner) : base(message, inner) { }
}
