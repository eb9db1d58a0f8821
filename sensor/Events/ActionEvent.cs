namespace Guard.Sensor.Events;

/// <summary>Something Guard did (or refused to do) to a process, and who ordered it.</summary>
public sealed class ActionEvent : SensorEvent
{
    public override EventType Type => EventType.Action;

    /// <summary>kill, kill-tree, kill-job.</summary>
    public string Action { get; init; } = "";

    public bool Succeeded { get; init; }

    /// <summary>What happened, or why it was refused.</summary>
    public string Message { get; init; } = "";

    /// <summary>"cli" or a rule name.</summary>
    public string OrderedBy { get; init; } = "cli";

    /// <summary>The person's uid (under sudo, the one who ran sudo).</summary>
    public uint OrderedByUid { get; init; }

    public IReadOnlyList<int> Pids { get; init; } = [];

    public string? CgroupPath { get; init; }

    /// <summary>For a refused attempt to let a held job run: what tried, how, how often; null otherwise.</summary>
    public HoldAttempt? Attempt { get; init; }

    /// <summary>For the approval gate (approve, deny, approval-expired, approval-ended): the request decided; null otherwise.</summary>
    public ApprovalFacts? Approval { get; init; }

    /// <summary>For a policy reload: the policy in force after it (the new one, or the old one kept); null otherwise.</summary>
    public PolicyInForce? Policy { get; init; }
}

/// <summary>
/// An approval request as a decision on it reports it (guard.approval): its id,
/// destination or program, the job and section, and what was decided.
/// </summary>
/// <param name="Kind">destination or program.</param>
/// <param name="What">"tcp 10.0.0.5:443", or "exec /path (sha256 HEX)".</param>
/// <param name="Decision">approved, denied, expired (no answer in time) or ended (an approval's time or job ended, or its sensor stopped).</param>
/// <param name="UntilUnixMs">Approved: until when (Unix ms); 0 for the job's life; null otherwise.</param>
/// <param name="DecidedByFileOwner">The uid that owned the decision file (root, or a user with the capabilities); null when no person decided.</param>
/// <param name="SudoUid">SUDO_UID of the command that decided, when it ran under sudo; null otherwise.</param>
public sealed record ApprovalFacts(
    string Id, string Kind, string? JobId, string Section, string What, string? Sha256, string Decision, long? UntilUnixMs, uint? DecidedByFileOwner, uint? SudoUid);

/// <summary>
/// A policy a sensor applies: the SHA-256 of its text (lowercase hex, the
/// file as read, so <c>sha256sum</c> of the file matches), the sources laid
/// over each other ("built-in", then the file), and its mode (enforce, audit).
/// </summary>
public sealed record PolicyInForce(string Sha256, IReadOnlyList<string> Sources, string Mode);

/// <summary>
/// Attempts to let a held process or cgroup run, since the last report.
/// </summary>
/// <param name="Via">How: "signal" (SIGCONT), "ptrace" (a tracer resumed it), "gpu-ioctl" (it issued one, so it ran), "cgroup-thaw" (cgroup.freeze was written 0).</param>
/// <param name="Count">Attempts since the last report.</param>
/// <param name="Unanswered">Of those, how many the kernel could not answer at once (user space did).</param>
/// <param name="ByPid">The task current at the latest (the sender of a kill, the tracer); 0 when unknown.</param>
/// <param name="ByName">Its comm; empty when unknown.</param>
/// <param name="SignalCode">The latest signal's si_code (SI_USER 0, SI_TKILL -6, SI_TIMER -2, SI_KERNEL 128); null when no signal was involved.</param>
public sealed record HoldAttempt(string Via, ulong Count, ulong Unanswered, int ByPid, string ByName, int? SignalCode);
