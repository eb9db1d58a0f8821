namespace Guard.Sensor.Detection;

/// <summary>One problem in a policy file, where it is and what is wrong: file:line:key: reason.</summary>
public sealed record PolicyError(string File, int Line, string Key, string Reason)
{
    public override string ToString() => $"{File}:{Line}:{Key}: {Reason}";

    /// <summary>Why a file could not be read, in the words of strerror, not of .NET's exception texts.</summary>
    public static string Unreadable(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file or directory",
        UnauthorizedAccessException => "permission denied",
        _ => e.Message,
    };
}

/// <summary>A policy that could not be loaded; the message lists every error, one a line.</summary>
public sealed class PolicyException : Exception
{
    public PolicyException(IReadOnlyList<PolicyError> errors) : base(string.Join("\n", errors)) => Errors = errors;

    public PolicyException() : this([]) { }

    public PolicyException(string message) : base(message) => Errors = [];

    public PolicyException(string message, Exception inner) : base(message, inner) => Errors = [];

    public IReadOnlyList<PolicyError> Errors { get; }
}
