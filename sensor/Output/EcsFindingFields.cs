using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>
/// What Guard found and what it did: alert lines (rule.*, threat.*,
/// guard.finding) and action lines (guard.action).
/// </summary>
internal sealed class EcsFindingFields(EcsProcessFields processes)
{
    /// <summary>threat.*, the same on every alert: MITRE ATT&amp;CK T1496, rendered once.</summary>
    private static readonly byte[] ThreatMembers = RenderThreat();

    /// <summary>An alert line's members after the header's; event.action is the rule's name.</summary>
    public void Write(JsonLineWriter w, AlertEvent a)
    {
        EcsHeader.Event(w, a.Sequence, "info"u8, "process"u8, Encoding.UTF8.GetBytes(a.Rule),
            kind: "alert"u8, dataset: "guard.finding"u8, secondCategory: "malware"u8);
        w.StartObject("rule"u8);
        w.Text("name"u8, a.Rule);
        w.Text("description"u8, a.Description);
        w.AsciiString("ruleset"u8, "guard"u8);
        w.EndObject();
        w.RawMembers(ThreatMembers);
        processes.Process(w, a.Process);
        w.StartObject("guard"u8);
        Finding(w, a);
        if (a.JobRoot is { } root)
            JobRoot(w, root);
        if (a.Process is { } p)
        {
            EcsLineageFields.Job(w, p, withCgroup: false);
            EcsLineageFields.Ancestry(w, p);
        }
        w.EndObject();
    }

    /// <summary>An action line's members after the header's; event.action is what was done (kill, kill-job, ...).</summary>
    public void Write(JsonLineWriter w, ActionEvent a)
    {
        EcsHeader.Event(w, a.Sequence, a.Succeeded ? "end"u8 : "denied"u8, "process"u8, Encoding.UTF8.GetBytes(a.Action),
            a.Succeeded ? "success"u8 : "failure"u8, dataset: "guard.response"u8, reason: a.Message);
        processes.Process(w, a.Process);
        w.StartObject("guard"u8);
        w.StartObject("action"u8);
        w.StartObject("ordered_by"u8);
        w.Text("via"u8, a.OrderedBy);
        w.Number("uid"u8, a.OrderedByUid);
        w.EndObject();
        w.StartArray("pids"u8);
        foreach (int pid in a.Pids)
            w.NumberItem(pid);
        w.EndArray();
        if (a.CgroupPath is { } cgroup)
            w.Text("cgroup"u8, cgroup);
        if (a.Attempt is { } attempt)
            Attempt(w, attempt);
        w.EndObject();
        w.EndObject();
    }

    /// <summary>guard.action.attempt: what tried to let a held job run, and how often.</summary>
    private static void Attempt(JsonLineWriter w, HoldAttempt a)
    {
        w.StartObject("attempt"u8);
        w.Text("via"u8, a.Via);
        w.Number("count"u8, a.Count);
        w.Number("unanswered"u8, a.Unanswered);
        if (a.ByPid > 0)
        {
            w.StartObject("by"u8);
            w.Number("pid"u8, a.ByPid);
            w.Text("name"u8, a.ByName);
            w.EndObject();
        }
        if (a.SignalCode is { } code)
            w.Number("si_code"u8, code);
        w.EndObject();
    }

    /// <summary>guard.finding: how often the rule fired, the evidence, the response.</summary>
    private static void Finding(JsonLineWriter w, AlertEvent a)
    {
        w.StartObject("finding"u8);
        w.Number("count"u8, a.Count);
        w.StartObject("evidence"u8);
        foreach ((string key, string value) in a.Evidence)
            w.Text(Encoding.UTF8.GetBytes(key), value);
        w.EndObject();
        w.StartArray("response"u8);
        foreach (string r in a.Response)
            w.TextItem(r);
        w.EndArray();
        w.EndObject();
    }

    /// <summary>guard.job_root: the training job's root process above the one the alert is about.</summary>
    private static void JobRoot(JsonLineWriter w, ProcessEntry root)
    {
        w.StartObject("job_root"u8);
        w.Number("pid"u8, root.Pid);
        w.Text("entity_id"u8, root.EntityIdUtf8);
        w.Text("name"u8, root.Name);
        w.EndObject();
    }

    private static byte[] RenderThreat()
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.StartObject("threat"u8);
        w.AsciiString("framework"u8, "MITRE ATT&CK"u8);
        Entry(w, "tactic"u8, "TA0040"u8, "Impact"u8);
        Entry(w, "technique"u8, "T1496"u8, "Resource Hijacking"u8);
        w.EndObject();
        w.EndObject();
        return w.Written[1..^1].ToArray();

        // ECS keeps id and name of a tactic or technique as arrays.
        static void Entry(JsonLineWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> id, ReadOnlySpan<byte> name)
        {
            w.StartObject(key);
            w.StartArray("id"u8);
            w.TextItem(id);
            w.EndArray();
            w.StartArray("name"u8);
            w.TextItem(name);
            w.EndArray();
            w.EndObject();
        }
    }
}
