using Guard.Sensor.Processes;

namespace Guard.Sensor.Events;

/// <summary>One process that carried a finding's bytes for another: a local relay.</summary>
/// <param name="Process">The relay, as the process table knows it; null when the table lost it.</param>
/// <param name="Pid">Its pid.</param>
/// <param name="Name">Its comm.</param>
/// <param name="Connection">The accepted local connection the bytes came in by ("unix:/run/relay.sock", "127.0.0.1:4000 &lt;- 127.0.0.1:51234"); null when it could not be told.</param>
public sealed record RelayHop(ProcessEntry? Process, int Pid, string Name, string? Connection);

/// <summary>
/// A network finding whose connection was made by a local relay: the relays
/// the bytes went through, nearest the destination first, and whether the
/// process that sent them through (the alert's own process then) was found.
/// </summary>
public sealed class RelayEvidence
{
    /// <summary>The relays, from the one that made the connection back toward the sender.</summary>
    public required IReadOnlyList<RelayHop> Hops { get; init; }

    /// <summary>Whether the sender was found: the alert is about it, and the response acts on it.</summary>
    public bool SenderFound { get; init; }

    /// <summary>How the sender was told from the last relay: "content" or "structure" (see README); null when not found.</summary>
    public string? Basis { get; init; }

    /// <summary>Why the sender cannot be told; null when found.</summary>
    public string? Reason { get; init; }
}
