using Guard.Sensor.Bpf;

namespace Guard.Cli;

/// <summary>An acting command run by a caller who may not act: one line on stderr, exit <see cref="ExitCode.NotPermitted"/>.</summary>
public sealed class NotPermittedException(string message) : Exception(message)
{
    /// <summary>Throws unless the caller is root or holds <paramref name="needed"/> (<see cref="Privileges.RefusalToAct"/>).</summary>
    /// <exception cref="NotPermittedException">The caller may not act.</exception>
    public static void ThrowUnlessMayAct(string what, IReadOnlyList<Capability> needed)
    {
        if (Privileges.RefusalToAct(what, needed) is { } refusal)
            throw new NotPermittedException(refusal);
    }
}
