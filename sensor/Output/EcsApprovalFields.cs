using Guard.Sensor.Events;
using Guard.Sensor.Response;

namespace Guard.Sensor.Output;

/// <summary>
/// guard.approval: the approval gate of an ask section. On a denial that raised
/// a request (event.action confine-ask): its id, state pending and when it
/// expires. On a decision's action event (approve, deny, approval-expired,
/// approval-ended): the request, what was decided, until when, and by whom.
/// </summary>
internal static class EcsApprovalFields
{
    /// <summary>guard.approval of a request just raised.</summary>
    public static void Request(JsonLineWriter w, string id, long expiresUnixMs)
    {
        w.StartObject("approval"u8);
        w.Text("id"u8, id);
        w.Text("state"u8, "pending"u8);
        w.Text("expires"u8, ApprovalRequest.Iso(expiresUnixMs));
        w.EndObject();
    }

    /// <summary>guard.approval of a decision.</summary>
    public static void Decision(JsonLineWriter w, ApprovalFacts a)
    {
        w.StartObject("approval"u8);
        w.Text("id"u8, a.Id);
        w.Text("kind"u8, a.Kind);
        w.Text("decision"u8, a.Decision);
        if (a.JobId is { } job)
            w.Text("job"u8, job);
        w.Text("section"u8, a.Section);
        w.Text("what"u8, a.What);
        if (a.Sha256 is { } sha)
            w.Text("sha256"u8, sha);
        if (a.UntilUnixMs is { } until)
            w.Text("until"u8, until == 0 ? "job-end" : ApprovalRequest.Iso(until));
        if (a.DecidedByFileOwner is { } owner)
            w.Number("decided_by_uid"u8, owner);
        if (a.SudoUid is { } sudo)
            w.Number("sudo_uid"u8, sudo);
        w.EndObject();
    }
}
