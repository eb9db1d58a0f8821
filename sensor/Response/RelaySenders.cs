using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>The first bytes of a TCP stream as the kernel's payload records gave them.</summary>
/// <param name="Bytes">The bytes, from the stream's first.</param>
/// <param name="Whole">Every byte the stream has sent so far is here (fewer than the capture's limit): what is missing was never sent.</param>
public readonly record struct CapturedHead(ReadOnlyMemory<byte> Bytes, bool Whole);

/// <summary>What the probed process is to the bytes a finding is about.</summary>
public enum RelayRole
{
    /// <summary>It accepted no local connection: it made the bytes itself, and the finding acts on it.</summary>
    Origin,

    /// <summary>It relays them for the sender found at the other end of <see cref="RelayVerdict.Through"/>.</summary>
    Relay,

    /// <summary>It may relay them, but for whom cannot be told: the finding acts on no one.</summary>
    Unknown,
}

/// <summary>The decision about one probed process.</summary>
/// <param name="Role">Origin, relay with a sender, or unknown.</param>
/// <param name="Through">The connection the bytes came in by (a relay's), else null.</param>
/// <param name="Sender">The process at its other end (a relay's), else null.</param>
/// <param name="Basis">How the sender was told: "content" (its stream's first bytes, its datagrams or the spool file hold what was relayed) or "structure" (the only accepted connection, pipe or FIFO); null otherwise.</param>
/// <param name="Reason">Why the sender cannot be told (unknown), in words; null otherwise.</param>
public sealed record RelayVerdict(RelayRole Role, LocalPeer? Through, SocketHolder? Sender, string? Basis, string? Reason)
{
    /// <summary>No accepted local connection: the probed process is the origin.</summary>
    public static RelayVerdict Origin { get; } = new(RelayRole.Origin, null, null, null, null);

    /// <summary>A sender cannot be told, for <paramref name="reason"/>.</summary>
    public static RelayVerdict Unknown(string reason, LocalPeer? through = null) => new(RelayRole.Unknown, through, null, null, reason);
}

/// <summary>
/// Decides whether a process that sent a finding's bytes relays them for a
/// local sender, and for which: by structure (it accepted local connections
/// whose other ends are other processes of this host), narrowed by content
/// where the kernel captured a candidate stream's first bytes (a TCP
/// connection made while Guard watched). Never guesses: more than one
/// possible sender, a sender that has gone, or a picture that is partial is
/// <see cref="RelayRole.Unknown"/>, which acts on no one.
/// </summary>
public static class RelaySenders
{
    /// <summary>How many of the relayed bytes, from the first, a candidate's captured head must hold to have carried them.</summary>
    public const int MatchLength = 32;

    /// <summary>
    /// The verdict on <paramref name="probe"/>, for the bytes <paramref name="carried"/>
    /// (the first bytes of the connection the finding is about); <paramref name="heads"/>
    /// gives a TCP stream's captured head by socket cookie, when the sensor has one.
    /// <paramref name="headsComplete"/> false (the ring has lost payload records) keeps
    /// a TCP head without the bytes from clearing its stream: a lost record may have held
    /// them. A unix end's head (<see cref="LocalPeer.Head"/>, kept in the kernel) always clears.
    /// Empty <paramref name="carried"/> (a verdict that came after the connection's
    /// head was let go) clears no one: structure alone decides.
    /// </summary>
    public static RelayVerdict Decide(PeerProbe probe, ReadOnlySpan<byte> carried, Func<ulong, CapturedHead?> heads, bool headsComplete = true)
    {
        if (probe.Gone)
            return RelayVerdict.Unknown("it has exited: nothing is left to act on");
        if (probe.Inbound.Count == 0)
        {
            // A partial picture may hide a relay's clients (a proxy with thousands of sockets): act on no one.
            return probe.Shortfalls.Count == 0 ? RelayVerdict.Origin
                : RelayVerdict.Unknown("its connections could not all be read (" + string.Join("; ", probe.Shortfalls) + ")");
        }
        ReadOnlySpan<byte> needle = Needle(carried);
        var confirmed = new List<LocalPeer>();
        var open = new List<LocalPeer>();
        int counted = 0;
        foreach (LocalPeer peer in probe.Inbound)
        {
            // A unix end's head is the kernel's own record; a TCP stream's comes through the ring, which may have lost some.
            bool fromRing = peer.Head is null && peer.Kind == PeerKind.Connection && !peer.Unix;
            CapturedHead? head = peer.Head ?? (peer.PeerCookie != 0 ? heads(peer.PeerCookie) : null);
            bool carriedThem = head is { } h && !needle.IsEmpty && h.Bytes.Span.IndexOf(needle) >= 0;
            // An end it did not accept, or one sender's datagrams, says something only when it carried the bytes.
            if (peer.ContentOnly && !carriedThem)
                continue;
            counted++;
            if (carriedThem)
                confirmed.Add(peer);
            else if (needle.IsEmpty || (fromRing && !headsComplete) || head is not { Whole: true })
                open.Add(peer); // whole and without the bytes: that stream never carried them (unless no bytes are known)
        }
        if (counted == 0)
        {
            return probe.Shortfalls.Count == 0 ? RelayVerdict.Origin
                : RelayVerdict.Unknown("its connections could not all be read (" + string.Join("; ", probe.Shortfalls) + ")");
        }
        string count = Plural(counted, probe.Inbound.All(p => p.Kind == PeerKind.Connection) ? "accepted local connection" : "local connection or feed");
        if (confirmed.Count > 1)
            return RelayVerdict.Unknown($"{confirmed.Count} of its {count} carried these bytes");
        if (confirmed.Count == 1)
            return Single(confirmed[0], "content");
        if (open.Count == 0)
            return RelayVerdict.Unknown($"none of its {count} carried these bytes first: it made them, or relays them changed (TLS, ssh)");
        if (open.Count > 1)
            return RelayVerdict.Unknown($"it holds {count}; which one carried these bytes cannot be told");
        LocalPeer only = open[0];
        if (only.Basis == InboundBasis.Unsure)
            return RelayVerdict.Unknown($"which end of {only.Connection} accepted it cannot be told", only);
        if (probe.Shortfalls.Count > 0)
            return RelayVerdict.Unknown("its connections could not all be read (" + string.Join("; ", probe.Shortfalls) + ")", only);
        return Single(only, "structure");
    }

    /// <summary>
    /// The one connection that fed it: its sender, if exactly one process holds
    /// the other end, or, of several, the one the kernel saw write the first bytes.
    /// </summary>
    private static RelayVerdict Single(LocalPeer through, string basis)
    {
        // The kernel saw who wrote the bytes that held the relayed ones: that process, whoever holds the end now.
        if (basis == "content" && through.Writer is { } wrote)
        {
            SocketHolder holder = through.Holders.FirstOrDefault(h => h.Pid == wrote.Pid && h.StartTicks == wrote.StartTicks) ?? new SocketHolder(wrote.Pid, wrote.StartTicks, -1, []);
            return new RelayVerdict(RelayRole.Relay, through, holder, basis, null);
        }
        bool feed = through.Kind is PeerKind.Pipe or PeerKind.File;
        if (through.Holders.Count == 1)
            return new RelayVerdict(RelayRole.Relay, through, through.Holders[0], basis, null);
        if (through.Holders.Count == 0)
        {
            return RelayVerdict.Unknown(
                feed ? $"no other process holds {through.Connection} open for writing now (its writer closed it, or has exited)"
                    : $"the sender at the other end of {through.Connection} has exited", through);
        }
        if (feed)
            return RelayVerdict.Unknown($"{through.Holders.Count} processes hold {through.Connection} open for writing ({string.Join(", ", through.Holders)})", through);
        if (through.Writer is { } w && through.Holders.FirstOrDefault(h => h.Pid == w.Pid && h.StartTicks == w.StartTicks) is { } writer)
            return new RelayVerdict(RelayRole.Relay, through, writer, basis, null);
        return RelayVerdict.Unknown($"the other end of {through.Connection} is held by {through.Holders.Count} processes ({string.Join(", ", through.Holders)})", through);
    }

    /// <summary>The relayed bytes a candidate must hold: the first <see cref="MatchLength"/>.</summary>
    public static ReadOnlySpan<byte> Needle(ReadOnlySpan<byte> carried) => carried[..Math.Min(MatchLength, carried.Length)];

    private static string Plural(int n, string what) => n == 1 ? $"1 {what}" : $"{n} {what}s";
}
