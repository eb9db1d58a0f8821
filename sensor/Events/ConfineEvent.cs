using Guard.Sensor.Abi;

namespace Guard.Sensor.Events;

/// <summary>
/// What a [[confine]] section denied a job (or in audit mode would have):
/// one destination, counted since the job's last report for it, reported at
/// most once a minute per job, destination and kind of attempt.
/// </summary>
public sealed class ConfineEvent : SensorEvent
{
    /// <inheritdoc/>
    public override EventType Type => EventType.Confine;

    /// <summary>The section's name.</summary>
    public string Section { get; init; } = "";

    /// <summary>file:line of the section's header; empty when the running policy no longer has it.</summary>
    public string SectionSource { get; init; } = "";

    /// <summary>enforce, audit or ask: in audit nothing was denied (the line says would_deny).</summary>
    public string Mode { get; init; } = "enforce";

    /// <summary>True in audit mode: the attempt went through, the section would have denied it.</summary>
    public bool WouldDeny => Mode == "audit";

    /// <summary>What was denied: connect (connect(2), TCP or UDP), send (an unconnected UDP send), egress (a packet of a socket connected before the rule, dropped) or passed-in socket (a send on a socket the job did not make: the sender killed).</summary>
    public string Attempt { get; init; } = "connect";

    /// <summary>The <see cref="Attempt"/> text of a kernel denial kind.</summary>
    public static string AttemptOf(ConfineWhat what) => what switch
    {
        ConfineWhat.Send => "send",
        ConfineWhat.Egress => "egress",
        ConfineWhat.Passed => "passed-in socket",
        _ => "connect",
    };

    /// <summary>The job as Guard names it (slurm:N, tree:ENTITY_ID); from the process when it is known, else from what the sensor confined; null when neither knows.</summary>
    public string? JobId { get; init; }

    /// <summary>The job's own rule set in the kernel (its identity in confine_denials).</summary>
    public uint JobSet { get; init; }

    /// <summary>2 (AF_INET) or 10 (AF_INET6).</summary>
    public int Family { get; init; }

    /// <summary>16 bytes; for IPv4 the address is in the first 4.</summary>
    public byte[] DestinationAddress { get; init; } = new byte[16];

    /// <summary>The destination port, host order.</summary>
    public int DestinationPort { get; init; }

    /// <summary>6 (TCP) or 17 (UDP), as IPPROTO_*.</summary>
    public int Protocol { get; init; }

    /// <summary>Attempts since this job's last report for this destination.</summary>
    public ulong Count { get; init; }

    /// <summary>When the kernel counted the first of them, CLOCK_BOOTTIME ns.</summary>
    public long FirstNs { get; init; }

    /// <summary>Under ask: the approval request this denial raised (event.action confine-ask); null for a plain denial.</summary>
    public string? ApprovalId { get; init; }

    /// <summary>Under ask: when the request expires unanswered, Unix ms.</summary>
    public long ApprovalExpiresUnixMs { get; init; }
}
