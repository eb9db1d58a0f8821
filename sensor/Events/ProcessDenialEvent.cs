namespace Guard.Sensor.Events;

/// <summary>
/// A confined job's process denied something by its [[confine]] section: an
/// exec (killed at sched_process_exec by the kernel, or by the sensor once the
/// program's hash was known) or the open of a GPU. In audit mode nothing was
/// denied and <see cref="Enforced"/> is false. Goes under --type action.
/// </summary>
public sealed class ProcessDenialEvent : SensorEvent
{
    public override EventType Type => EventType.Action;

    /// <summary>"exec" or "gpu".</summary>
    public string What { get; init; } = "";

    /// <summary>The section's name.</summary>
    public string Section { get; init; } = "";

    /// <summary>file:line of the section's header.</summary>
    public string Source { get; init; } = "";

    /// <summary>enforce, audit or ask.</summary>
    public string Mode { get; init; } = "";

    /// <summary>Whether it was denied (false in audit: recorded only).</summary>
    public bool Enforced { get; init; }

    /// <summary>exec: whether the process was killed (SIGKILL sent).</summary>
    public bool Killed { get; init; }

    /// <summary>exec: "kernel" (at sched_process_exec) or "hash" (by the sensor, once the hash was known).</summary>
    public string By { get; init; } = "kernel";

    /// <summary>exec: the path as the exec asked for it; null for a GPU.</summary>
    public string? Path { get; init; }

    /// <summary>exec: the classes the program is, by the policy's names.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];

    /// <summary>exec: the rules of the section that denied it (class names, "path", or the sha256 entry).</summary>
    public IReadOnlyList<string> DeniedBy { get; init; } = [];

    /// <summary>exec by hash, or under ask: the program's SHA-256, lowercase hex; null otherwise.</summary>
    public string? Sha256 { get; set; }

    /// <summary>exec under ask: the approval request this denial raised (event.action confine-ask); null otherwise, and for a retry while one waits.</summary>
    public string? ApprovalId { get; set; }

    /// <summary>exec under ask: when the request expires unanswered, Unix ms.</summary>
    public long ApprovalExpiresUnixMs { get; set; }

    /// <summary>exec by hash: ms from the exec to the kill; null otherwise.</summary>
    public double? DelayMs { get; init; }

    /// <summary>gpu: the device's major and minor (195:N for /dev/nvidiaN).</summary>
    public (uint Major, uint Minor)? Device { get; init; }
}
