using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>
/// What Guard found and what it did: alert lines (rule.*, threat.*,
/// guard.finding) and action lines (user.*, guard.action).
/// </summary>
internal sealed class EcsFindingFields(EcsHeader header, EcsProcessFields processes)
{
    /// <summary>threat.*, the same on every alert: MITRE ATT&amp;CK T1496, rendered once.</summary>
    private static readonly byte[] ThreatMembers = RenderThreat();

    /// <summary>Evidence names whose values are "true" or "false": written as JSON booleans.</summary>
    private static readonly HashSet<string> BooleanEvidence = ["in_job", "running_before_start", "exec_record_lost"];

    /// <summary>Evidence names whose values are decimal integers: written as JSON numbers.</summary>
    private static readonly HashSet<string> IntegerEvidence = ["args_read_bytes", "port", "rounding_processes", "rounding_switches", "stream_offset", "window_seconds", "dropped", "peak_per_second", "threshold_per_second"];

    /// <summary>
    /// An alert line's members after the header's; event.action is the rule's
    /// name, event.severity and event.risk_score its severity (<see cref="AlertSeverityScale"/>).
    /// An alert may be written well after what it is about (a hash read later),
    /// so event.created says when.
    /// </summary>
    public void Write(JsonLineWriter w, AlertEvent a)
    {
        header.Event(w, a.Sequence, "info"u8, a.AboutSensor ? "host"u8 : "process"u8, Encoding.UTF8.GetBytes(a.Rule),
            kind: "alert"u8, dataset: "guard.finding"u8, secondCategory: a.AboutSensor ? default : "malware"u8, severity: AlertSeverityScale.Of(a), created: true);
        w.StartObject("rule"u8);
        w.Text("name"u8, a.Rule);
        w.Text("description"u8, a.Description);
        w.AsciiString("ruleset"u8, "guard"u8);
        w.EndObject();
        if (!a.AboutSensor)
            w.RawMembers(ThreatMembers);
        processes.Process(w, a.Process);
        w.StartObject("guard"u8);
        Finding(w, a);
        if (a.Relay is { } relay)
            Relay(w, relay);
        if (a.JobRoot is { } root)
            JobRoot(w, root);
        if (a.Process is { } p)
        {
            EcsLineageFields.Job(w, p, withCgroup: false);
            EcsLineageFields.Ancestry(w, p);
        }
        w.EndObject();
    }

    /// <summary>
    /// An action line's members after the header's; event.action is what was
    /// done (kill, kill-job, ...), event.category and event.type what it did
    /// (<see cref="Categorize"/>), event.outcome whether it was done; user.id
    /// is who ordered it.
    /// </summary>
    public void Write(JsonLineWriter w, ActionEvent a)
    {
        Categorize(a.Action, out ReadOnlySpan<byte> category, out ReadOnlySpan<byte> type);
        header.Event(w, a.Sequence, type, category, Encoding.UTF8.GetBytes(a.Action),
            a.Succeeded ? "success"u8 : "failure"u8, dataset: "guard.response"u8, reason: a.Message);
        processes.Process(w, a.Process);
        w.StartObject("user"u8);
        Span<byte> uid = stackalloc byte[12];
        Utf8Formatter.TryFormat(a.OrderedByUid, uid, out int uidLength);
        w.AsciiString("id"u8, uid[..uidLength]);
        w.EndObject();
        w.StartObject("guard"u8);
        w.StartObject("action"u8);
        w.StartObject("ordered_by"u8);
        w.Text("via"u8, a.OrderedBy);
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
        if (a.Policy is { } policy)
            Policy(w, policy);
        if (a.Approval is { } approval)
            EcsApprovalFields.Decision(w, approval);
        w.EndObject();
    }

    /// <summary>guard.policy: the policy in force after a reload, by its SHA-256, sources and mode.</summary>
    private static void Policy(JsonLineWriter w, PolicyInForce p)
    {
        w.StartObject("policy"u8);
        w.Text("sha256"u8, p.Sha256);
        w.StartArray("sources"u8);
        foreach (string source in p.Sources)
            w.TextItem(source);
        w.EndArray();
        w.Text("mode"u8, p.Mode);
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

    /// <summary>
    /// event.category and event.type of an action, a pair ECS allows: a kill
    /// ends processes (process, end); a hold or a release changes them (process,
    /// change); detach-all switches Guard off, policy-reload changes what it
    /// enforces, and the approval gate's decisions (approve, deny,
    /// approval-expired, approval-ended) change a job's allow list
    /// (configuration, change); an action
    /// not named here is (process, info). A failed action keeps its pair, with
    /// event.outcome failure.
    /// </summary>
    internal static void Categorize(string action, out ReadOnlySpan<byte> category, out ReadOnlySpan<byte> type)
    {
        category = "process"u8;
        switch (action)
        {
            case "kill" or "kill-tree" or "kill-job" or "kill-quarantined":
                type = "end"u8;
                break;
            case "quarantine" or "release":
                type = "change"u8;
                break;
            case "detach-all" or "policy-reload" or "approve" or "deny" or "approval-expired" or "approval-ended":
                category = "configuration"u8;
                type = "change"u8;
                break;
            default:
                type = "info"u8;
                break;
        }
    }

    /// <summary>
    /// guard.finding: how often the rule fired, the evidence, the response.
    /// Evidence is name/value text; the names in <see cref="BooleanEvidence"/>
    /// and <see cref="IntegerEvidence"/> are written as booleans and numbers, so
    /// a name keeps one JSON type on every line. A dot in a name is written as
    /// "_": Elasticsearch would read "pool-port.0" as an object.
    /// </summary>
    private static void Finding(JsonLineWriter w, AlertEvent a)
    {
        w.StartObject("finding"u8);
        w.Number("count"u8, a.Count);
        w.StartObject("evidence"u8);
        foreach ((string key, string value) in a.Evidence)
        {
            byte[] name = Encoding.UTF8.GetBytes(key.Replace('.', '_'));
            if (BooleanEvidence.Contains(key) && value is "true" or "false")
                w.Bool(name, value == "true");
            else if (IntegerEvidence.Contains(key) && long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long number))
                w.Number(name, number);
            else
                w.Text(name, value);
        }
        w.EndObject();
        w.StartArray("response"u8);
        foreach (string r in a.Response)
            w.TextItem(r);
        w.EndArray();
        w.EndObject();
    }

    /// <summary>
    /// guard.relay: the relay that made the finding's connection (pid,
    /// entity_id, name, executable, the connection the bytes came in by),
    /// whether the sender behind it was found (then it is process.*), how,
    /// or why not; guard.relay.chain lists every relay when there were more.
    /// </summary>
    private static void Relay(JsonLineWriter w, RelayEvidence relay)
    {
        w.StartObject("relay"u8);
        if (relay.Hops.Count > 0)
            Hop(w, relay.Hops[0]);
        w.Bool("sender_found"u8, relay.SenderFound);
        if (relay.Basis is { } basis)
            w.Text("basis"u8, basis);
        if (relay.Reason is { } reason)
            w.Text("reason"u8, reason);
        if (relay.Hops.Count > 1)
        {
            w.StartArray("chain"u8);
            foreach (RelayHop hop in relay.Hops)
            {
                w.StartObject();
                Hop(w, hop);
                w.EndObject();
            }
            w.EndArray();
        }
        w.EndObject();

        static void Hop(JsonLineWriter w, RelayHop hop)
        {
            w.Number("pid"u8, hop.Pid);
            if (hop.Process is { } p)
            {
                w.Text("entity_id"u8, p.EntityIdUtf8);
                w.Text("executable"u8, p.Executable);
            }
            w.Text("name"u8, hop.Name);
            if (hop.Connection is { } connection)
                w.Text("connection"u8, connection);
        }
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
