using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>What a quarantine action did, or why it was refused.</summary>
/// <param name="Action">The event.action: quarantine, release or kill-quarantined.</param>
/// <param name="Done">Whether it was carried out.</param>
/// <param name="Message">One line for a person: what was done, or why not.</param>
/// <param name="Pids">The processes it held, resumed or killed.</param>
/// <param name="CgroupPath">The held cgroup (relative to the cgroup2 mount), for a cgroup hold.</param>
/// <param name="OrderedBy">"cli", a rule, or "timeout of ..." for an expired hold.</param>
/// <param name="OrderedByUid">The uid of who asked.</param>
public sealed record QuarantineOutcome(string Action, bool Done, string Message, IReadOnlyList<int> Pids, string? CgroupPath = null, string OrderedBy = "cli", uint OrderedByUid = 0)
{
    /// <summary>The event.action of making a hold.</summary>
    internal const string HoldAction = "quarantine";

    /// <summary>An action not carried out, and why.</summary>
    public static QuarantineOutcome Refused(string action, string reason, string orderedBy = "cli", uint uid = 0) => new(action, false, reason, [], null, orderedBy, uid);

    /// <summary>A hold refused, on behalf of whoever asked for it.</summary>
    internal static QuarantineOutcome HoldRefused(QuarantineRequest request, string reason) => Refused(HoldAction, reason, request.OrderedBy, request.OrderedByUid);

    /// <summary>The outcome as an ECS action event about <paramref name="process"/> (null: about no one process), stamped now (CLOCK_BOOTTIME).</summary>
    public ActionEvent ToActionEvent(ProcessEntry? process) => new()
    {
        Action = Action,
        Succeeded = Done,
        Message = Message,
        OrderedBy = OrderedBy,
        OrderedByUid = OrderedByUid,
        Pids = Pids,
        CgroupPath = CgroupPath,
        Process = process,
        TimeNs = Libc.NowNs(Libc.ClockBoottime),
        Sequence = 1,
    };
}
