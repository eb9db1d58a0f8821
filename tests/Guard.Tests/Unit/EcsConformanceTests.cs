using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Every kind of line Guard writes, each field checked against the ECS
/// reference (Fixtures/ecs/ecs-reference.txt): its type, the allowed values of
/// event.kind, category, type and outcome, and the category/type pairs ECS
/// expects. The lines come from the real pipeline and detectors fed made-up
/// kernel records, and from the real producers of actions; guard.* may hold
/// only the fields listed in <see cref="GuardOnly"/>, each with why ECS has
/// no field for it.
/// </summary>
public sealed class EcsConformanceTests
{
    private const int Launcher = 720_000;
    private const int Worker = Launcher + 1;
    private const int Hostile = Launcher + 2;
    private const int ArgumentMiner = Launcher + 3;
    private const int Staged = Launcher + 4;
    private const int Render = Launcher + 5;
    private const int Xmrig = Launcher + 6;
    private const int Minerd = Launcher + 7;
    private const int PortLast = Launcher + 8;

    /// <summary>A public address (TEST-NET-2).</summary>
    private const string Pool = "198.51.100.7";

    /// <summary>A SHA-256 the miner-hash test policy denies.</summary>
    private const string DeniedHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    private static readonly Lazy<EcsReference> Reference = new(() => EcsReference.Load(
        Path.Combine(AppContext.BaseDirectory, "Fixtures", "ecs", "ecs-reference.txt")));

    private static readonly Lazy<IReadOnlyList<Line>> Corpus = new(Encode);

    /// <summary>
    /// Every guard.* field a line may carry, and why ECS has no field for it
    /// (the ECS field nearest to it, where there is one, says something else).
    /// A "*" stands for names that vary: evidence names, record kinds.
    /// </summary>
    private static readonly Dictionary<string, string> GuardOnly = new()
    {
        ["guard.job.id"] = "the Slurm job, pod, container, unit or launcher tree a process is in: ECS has container.id and orchestrator.* but no batch job",
        ["guard.job.kind"] = "which of those it is",
        ["guard.job.cgroup"] = "the job's cgroup path",
        ["guard.job.step"] = "the Slurm step a process runs in: orchestrator.* names the job (resource.id) and has nothing below a resource",
        ["guard.job.task"] = "the Slurm task within that step",
        ["guard.job_root_pid"] = "the training job's root process; process.group_leader/session_leader are other things",
        ["guard.job_root.pid"] = "as guard.job_root_pid, on alerts",
        ["guard.job_root.entity_id"] = "the job root's entity id",
        ["guard.job_root.name"] = "the job root's name",
        ["guard.ancestry"] = "entity ids up to the oldest ancestor: ECS has process.parent only",
        ["guard.args_truncated"] = "process.args holds what the kernel read; ECS cannot say it was cut",
        ["guard.staging"] = "where a suspect executable came from (memfd, unlinked, shared directory)",
        ["guard.exit.signal"] = "the signal that ended it: process.exit_code holds 128+signal, not the signal",
        ["guard.exit.core_dumped"] = "whether it dumped core",
        ["guard.socket.cookie"] = "the kernel's socket cookie, joining a connect to its payload",
        ["guard.payload.length"] = "how many first bytes were captured (network.bytes counts a whole flow)",
        ["guard.payload.segments"] = "how many segments carried them",
        ["guard.payload.data"] = "the first bytes themselves",
        ["guard.gpu.device.major"] = "GPU device numbers: ECS has no GPU fields (device.* is a mobile device)",
        ["guard.gpu.device.minor"] = "as above",
        ["guard.gpu.device.role"] = "resource manager or unified memory",
        ["guard.gpu.device.index"] = "NVML's device index",
        ["guard.gpu.device.name"] = "NVML's device name",
        ["guard.gpu.device.uuid"] = "NVML's device UUID",
        ["guard.gpu.device.utilization_percent"] = "GPU utilisation (host.cpu.usage is the CPU's)",
        ["guard.gpu.device.memory_utilization_percent"] = "GPU memory utilisation",
        ["guard.gpu.device.memory_used_bytes"] = "GPU memory used",
        ["guard.gpu.device.memory_total_bytes"] = "GPU memory",
        ["guard.gpu.device.power_watts"] = "GPU power draw",
        ["guard.gpu.device.mig"] = "whether the GPU is partitioned (MIG)",
        ["guard.gpu.device.processes"] = "how many processes NVML put on it",
        ["guard.gpu.device.note"] = "why per-process utilisation is missing",
        ["guard.gpu.usage.memory_bytes"] = "one process's GPU memory",
        ["guard.gpu.usage.sm_percent"] = "one process's share of the GPU's SMs",
        ["guard.gpu.usage.memory_percent"] = "one process's share of GPU memory bandwidth",
        ["guard.gpu.access"] = "the open's access mode",
        ["guard.gpu.ioctl_command"] = "the driver ioctl's command number",
        ["guard.gpu.ioctls.rm_alloc"] = "driver call counts",
        ["guard.gpu.ioctls.rm_free"] = "as above",
        ["guard.gpu.ioctls.rm_control"] = "as above",
        ["guard.gpu.ioctls.rm_map"] = "as above",
        ["guard.gpu.ioctls.rm_other"] = "as above",
        ["guard.gpu.ioctls.uvm"] = "as above",
        ["guard.gpu.classes.class"] = "a GPU object class allocated",
        ["guard.gpu.classes.name"] = "its name",
        ["guard.gpu.classes.kind"] = "its kind",
        ["guard.gpu.classes.count"] = "how often",
        ["guard.gpu.work"] = "what the counts say it did",
        ["guard.health.uptime_seconds"] = "the sensor's own health: ECS has no agent metrics",
        ["guard.health.events"] = "as above",
        ["guard.health.decode_failures"] = "as above",
        ["guard.health.detector_faults"] = "as above",
        ["guard.health.processes"] = "as above",
        ["guard.health.drops.total"] = "records the kernel could not hand over",
        ["guard.health.drops.*"] = "the same per record kind",
        ["guard.health.hashes.dropped"] = "executables not hashed, queue full",
        ["guard.health.hashes.timed_out"] = "executables not hashed in time",
        ["guard.health.relay_lookups.dropped"] = "relay lookups not made, queue full",
        ["guard.health.relay_lookups.timed_out"] = "relay lookups past their time limit",
        ["guard.health.outputs.*"] = "lines each output (stdout, file, syslog, action_log) wrote, dropped and failed: ECS has no agent output metrics",
        ["guard.relay.pid"] = "the local relay that made a finding's connection, beside process.* (the sender): ECS has one process per event",
        ["guard.relay.entity_id"] = "as above",
        ["guard.relay.name"] = "as above",
        ["guard.relay.executable"] = "as above",
        ["guard.relay.connection"] = "the connection the relayed bytes came in by: ECS names one source per event",
        ["guard.relay.sender_found"] = "whether the sender behind the relay was found",
        ["guard.relay.basis"] = "how the sender was told apart",
        ["guard.relay.reason"] = "why no sender was found",
        ["guard.relay.chain.pid"] = "every relay of a chain, each as guard.relay names one",
        ["guard.relay.chain.entity_id"] = "as above",
        ["guard.relay.chain.name"] = "as above",
        ["guard.relay.chain.executable"] = "as above",
        ["guard.relay.chain.connection"] = "as above",
        ["guard.finding.count"] = "how often the rule fired on the process",
        ["guard.finding.evidence.*"] = "what the rule saw, by name: rule-specific",
        ["guard.finding.response"] = "what was done about it, in words",
        ["guard.action.ordered_by.via"] = "the CLI, a rule, or a hold's timeout (user.id is who)",
        ["guard.action.pids"] = "the processes acted on (process.pid is one process)",
        ["guard.action.cgroup"] = "the cgroup held, released or killed",
        ["guard.policy.sha256"] = "the policy in force after a reload, by the SHA-256 of its file: ECS has no field for an agent's configuration",
        ["guard.policy.sources"] = "the files it was read from, laid over each other",
        ["guard.policy.mode"] = "enforce or audit",
        ["guard.confine.section"] = "the [[confine]] section that denied: rule.name names detection rules on alerts, and a denial is no alert",
        ["guard.confine.source"] = "where that section is written (file:line)",
        ["guard.confine.mode"] = "enforce, audit or ask",
        ["guard.confine.attempt"] = "what was denied: connect, send, or a packet at egress",
        ["guard.confine.count"] = "attempts since the last report of this job and destination (event.* has no count)",
        ["guard.confine.first"] = "when the first of them was",
        ["guard.confine.job_set"] = "the job's identity in the kernel's confinement maps",
        ["guard.confine.would_deny"] = "audit mode: let through (event.type allowed), the section would have denied it",
        ["guard.approval.id"] = "an ask section's approval request, by its random id (guard approve ID): ECS has no approval workflow",
        ["guard.approval.state"] = "pending: the request a denial raised",
        ["guard.approval.expires"] = "when the request expires unanswered",
        ["guard.approval.kind"] = "destination or program",
        ["guard.approval.decision"] = "approved, denied, expired, ended or refused",
        ["guard.approval.job"] = "the job it was asked for",
        ["guard.approval.section"] = "the ask section",
        ["guard.approval.what"] = "the destination or program, in words",
        ["guard.approval.sha256"] = "a program's SHA-256 as it was denied",
        ["guard.approval.until"] = "an approval's end, or job-end",
        ["guard.approval.decided_by_uid"] = "the uid that owned the decision file (user.id is the person: SUDO_UID when set)",
        ["guard.approval.sudo_uid"] = "SUDO_UID of the deciding command",
    };

    private static readonly string[] ActionOutcomes = ["success", "failure"];

    /// <summary>A line as written, with what made it.</summary>
    public sealed record Line(string What, string Text, JsonElement Json);

    [Fact]
    public void EveryLineIsOneJsonObjectWithoutADottedName()
    {
        foreach (Line line in Corpus.Value)
        {
            Assert.Equal(JsonValueKind.Object, line.Json.ValueKind);
            Assert.EndsWith("}\n", line.Text, StringComparison.Ordinal);
            Assert.Equal(1, line.Text.Count(c => c == '\n'));
            foreach (string name in Names(line.Json))
                Assert.False(name.Length == 0 || name.Contains('.', StringComparison.Ordinal), $"{line.What}: the name \"{name}\" (Elasticsearch reads a dot as nesting)");
        }
    }

    [Fact]
    public void EveryEcsFieldHasTheTypeTheReferenceGives()
    {
        EcsReference ecs = Reference.Value;
        foreach (Line line in Corpus.Value)
        {
            foreach ((string path, JsonElement value) in Leaves(line.Json))
            {
                if (path.StartsWith("guard.", StringComparison.Ordinal))
                    continue;
                Assert.True(ecs.Fields.TryGetValue(path, out string? type), $"{line.What}: {path} is not in the ECS reference fixture (an ECS field missing there, or a field of Guard's own outside guard.*)");
                Assert.True(HasType(value, type!), $"{line.What}: {path} is ECS {type}, written as {value.GetRawText()}");
            }
        }
    }

    [Fact]
    public void TheFixtureListsOnlyFieldsGuardWrites()
    {
        var written = Corpus.Value.SelectMany(l => Leaves(l.Json)).Select(l => l.Path).Where(p => !p.StartsWith("guard.", StringComparison.Ordinal)).ToHashSet();
        string[] unwritten = [.. Reference.Value.Fields.Keys.Where(f => !written.Contains(f))];
        Assert.True(unwritten.Length == 0, "in the fixture but written by no line: " + string.Join(", ", unwritten));
    }

    [Fact]
    public void EveryCategorizationValueIsAllowedAndEveryTypeIsExpectedForEveryCategory()
    {
        EcsReference ecs = Reference.Value;
        foreach (Line line in Corpus.Value)
        {
            JsonElement e = line.Json.GetProperty("event");
            Assert.Contains(e.GetProperty("kind").GetString()!, ecs.Kinds);
            string[] categories = [.. e.GetProperty("category").EnumerateArray().Select(c => c.GetString()!)];
            string[] types = [.. e.GetProperty("type").EnumerateArray().Select(t => t.GetString()!)];
            Assert.NotEmpty(categories);
            Assert.NotEmpty(types);
            foreach (string type in types)
                Assert.Contains(type, ecs.Types);
            foreach (string category in categories)
            {
                Assert.True(ecs.Categories.TryGetValue(category, out HashSet<string>? expected), $"{line.What}: event.category {category} is not allowed");
                foreach (string type in types)
                    Assert.True(expected!.Contains(type), $"{line.What}: event.type {type} is not expected for event.category {category}");
            }
            if (e.TryGetProperty("outcome", out JsonElement outcome))
                Assert.Contains(outcome.GetString()!, ecs.Outcomes);
        }
    }

    [Fact]
    public void GuardHoldsOnlyWhatEcsLacksEachNameWithOneJsonType()
    {
        var kinds = new Dictionary<string, string>();
        var seen = new HashSet<string>();
        foreach (Line line in Corpus.Value)
        {
            foreach ((string path, JsonElement value) in Leaves(line.Json).Where(l => l.Path.StartsWith("guard.", StringComparison.Ordinal)))
            {
                string entry = GuardEntry(path);
                Assert.True(GuardOnly.ContainsKey(entry), $"{line.What}: {path} is not among the guard.* fields ECS lacks; use the ECS field, or add it with why ECS has none");
                Assert.False(Reference.Value.Fields.ContainsKey(path["guard.".Length..]), $"{path} repeats the ECS field {path["guard.".Length..]}");
                seen.Add(entry);
                string kind = value.ValueKind is JsonValueKind.True or JsonValueKind.False ? "boolean" : value.ValueKind.ToString();
                Assert.Equal(kinds.TryAdd(path, kind) ? kind : kinds[path], kind);
            }
        }
        string[] unwritten = [.. GuardOnly.Keys.Where(k => !seen.Contains(k))];
        Assert.True(unwritten.Length == 0, "listed but written by no line: " + string.Join(", ", unwritten));
    }

    [Fact]
    public void TheCorpusHasEveryKindOfLine()
    {
        var actions = Corpus.Value.Select(l => l.Json.GetProperty("event").GetProperty("action").GetString()!).ToHashSet();
        string[] expected =
        [
            .. Enum.GetValues<EventAction>().Select(EventNames.Action),
            "kill", "kill-tree", "kill-job", QuarantineOutcome.HoldAction, "release", "kill-quarantined", "detach-all",
            GuardSensor.ReloadAction, RingDropAlerts.Rule, "confine-ask", "approve", "deny", "approval-expired", "approval-ended",
            .. Detectors.All.Select(d => d.Name),
        ];
        string[] missing = [.. expected.Where(a => !actions.Contains(a))];
        Assert.True(missing.Length == 0, "no line with event.action " + string.Join(", ", missing));
    }

    [Fact]
    public void AlertsCarrySeverityRiskScoreAndWhenTheyWereWritten()
    {
        foreach (Line line in Corpus.Value.Where(l => l.Json.GetProperty("event").GetProperty("kind").GetString() == "alert"))
        {
            JsonElement e = line.Json.GetProperty("event");
            string rule = e.GetProperty("action").GetString()!;
            AlertSeverity severity = Detectors.Find(rule) is { Strong: true } ? AlertSeverity.High : AlertSeverity.Medium;
            Assert.Equal((long)severity, e.GetProperty("severity").GetInt64());
            Assert.Equal(AlertSeverityScale.RiskScore(severity), e.GetProperty("risk_score").GetDouble());
            Assert.True(e.TryGetProperty("created", out _), $"{line.What}: no event.created");
        }
    }

    [Fact]
    public void BooleanAndNumericEvidenceIsTypedAndDnsIdsAreKeywords()
    {
        Line[] alerts = [.. Corpus.Value.Where(l => l.Json.GetProperty("event").GetProperty("kind").GetString() == "alert")];
        JsonElement[] evidence = [.. alerts.Select(a => a.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence"))];
        Assert.Contains(evidence, e => e.TryGetProperty("in_job", out JsonElement v) && v.ValueKind == JsonValueKind.True);
        Assert.Contains(evidence, e => e.TryGetProperty("running_before_start", out JsonElement v) && v.ValueKind == JsonValueKind.True);
        Assert.Contains(evidence, e => e.TryGetProperty("rounding_switches", out JsonElement v) && v.ValueKind == JsonValueKind.Number);
        Assert.Contains(evidence, e => e.TryGetProperty("port", out JsonElement v) && v.GetInt32() == 443);
        Assert.Contains(evidence, e => e.TryGetProperty("pool-port_0", out _));
        Assert.Contains(evidence, e => e.TryGetProperty("stream_offset", out JsonElement v) && v.GetInt32() == 5000 && e.GetProperty("proxy").GetString() == "socks5 198.51.100.7:3333");
        Assert.Contains(evidence, e => e.TryGetProperty("stream_offset", out JsonElement v) && v.GetInt32() == StreamRecord.ScanLimit && !e.TryGetProperty("method", out _));
        Assert.Contains(evidence, e => e.TryGetProperty("proxy_address", out JsonElement v) && v.GetString() == "10.0.0.2:1080");
        Line dns = Corpus.Value.First(l => l.Json.GetProperty("event").GetProperty("action").GetString() == "dns-query");
        Assert.Equal("4660", dns.Json.GetProperty("dns").GetProperty("id").GetString()); // 0x1234
        Assert.Equal("dns", dns.Json.GetProperty("network").GetProperty("protocol").GetString());
    }

    [Fact]
    public void ProcessStartIsTheStartTimeOnTheWallClockOfTimestamp()
    {
        Line exec = Corpus.Value.First(l => l.What == "exec" && l.Json.GetProperty("process").GetProperty("pid").GetInt32() == Worker);
        JsonElement process = exec.Json.GetProperty("process");
        // The made-up records start a process StartOf(pid) ns after boot; @timestamp is 10 ns after boot.
        DateTime at = Date(exec.Json.GetProperty("@timestamp"));
        TimeSpan start = Date(process.GetProperty("start")) - at;
        TimeSpan parentStart = Date(process.GetProperty("parent").GetProperty("start")) - at;
        double tickMs = 1000.0 / ClockTicks.PerSecond;
        Assert.Equal(Records.StartOf(Worker) / 1e6, start.TotalMilliseconds, tickMs);
        Assert.Equal(Records.StartOf(Launcher) / 1e6, parentStart.TotalMilliseconds, tickMs);
    }

    [Fact]
    public void ActionsSayWhatTheyDid()
    {
        Dictionary<string, (string Category, string Type)> expected = new()
        {
            ["kill"] = ("process", "end"),
            ["kill-tree"] = ("process", "end"),
            ["kill-job"] = ("process", "end"),
            ["kill-quarantined"] = ("process", "end"),
            [QuarantineOutcome.HoldAction] = ("process", "change"),
            ["release"] = ("process", "change"),
            ["detach-all"] = ("configuration", "change"),
            [GuardSensor.ReloadAction] = ("configuration", "change"),
            ["approve"] = ("configuration", "change"),
            ["deny"] = ("configuration", "change"),
            ["approval-expired"] = ("configuration", "change"),
            ["approval-ended"] = ("configuration", "change"),
        };
        foreach (Line line in Corpus.Value.Where(l => l.Json.GetProperty("event").GetProperty("dataset").GetString() == "guard.response"))
        {
            JsonElement e = line.Json.GetProperty("event");
            (string category, string type) = expected[e.GetProperty("action").GetString()!];
            Assert.Equal([category], e.GetProperty("category").EnumerateArray().Select(c => c.GetString()));
            Assert.Equal([type], e.GetProperty("type").EnumerateArray().Select(t => t.GetString()));
            Assert.Contains(e.GetProperty("outcome").GetString()!, ActionOutcomes);
            Assert.Matches("^[0-9]+$", line.Json.GetProperty("user").GetProperty("id").GetString()!);
        }
    }

    private static DateTime Date(JsonElement value) =>
        DateTime.ParseExact(value.GetString()!, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);

    /// <summary>The guard.* table's entry for a path: names that vary become "*".</summary>
    private static string GuardEntry(string path)
    {
        foreach (string varying in (string[])["guard.finding.evidence.", "guard.health.drops.", "guard.health.outputs."])
        {
            if (path.StartsWith(varying, StringComparison.Ordinal) && path != "guard.health.drops.total")
                return varying + "*";
        }
        return path;
    }

    /// <summary>Whether a JSON value is what ECS's type asks: its items, for an array.</summary>
    private static bool HasType(JsonElement value, string type)
    {
        if (value.ValueKind == JsonValueKind.Array)
            return value.GetArrayLength() > 0 && value.EnumerateArray().All(item => HasType(item, type));
        return type switch
        {
            "keyword" or "wildcard" => value.ValueKind == JsonValueKind.String,
            "long" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
            "float" => value.ValueKind == JsonValueKind.Number && double.IsFinite(value.GetDouble()),
            "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
            "date" => value.ValueKind == JsonValueKind.String && IsIsoDate(value.GetString()!),
            "ip" => value.ValueKind == JsonValueKind.String && IPAddress.TryParse(value.GetString()!, out IPAddress? ip) && ip.ToString() == value.GetString(),
            "object" or "flattened" => value.ValueKind == JsonValueKind.Object,
            _ => false,
        };
    }

    /// <summary>ISO 8601 in UTC, as Elasticsearch's default date format reads it.</summary>
    private static bool IsIsoDate(string text) =>
        Regex.IsMatch(text, @"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
        && DateTime.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out _);

    /// <summary>Every member name in a line, at any depth.</summary>
    private static IEnumerable<string> Names(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().SelectMany(m => Names(m.Value).Prepend(m.Name)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Names),
        _ => [],
    };

    /// <summary>Every leaf of a line, by dotted path: a scalar, or an array of scalars; objects in arrays are walked.</summary>
    private static IEnumerable<(string Path, JsonElement Value)> Leaves(JsonElement element, string prefix = "")
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty member in element.EnumerateObject())
            {
                foreach ((string, JsonElement) leaf in Leaves(member.Value, prefix.Length == 0 ? member.Name : prefix + "." + member.Name))
                    yield return leaf;
            }
        }
        else if (element.ValueKind == JsonValueKind.Array && element.EnumerateArray().Any(i => i.ValueKind == JsonValueKind.Object))
        {
            foreach (JsonElement item in element.EnumerateArray())
            {
                foreach ((string, JsonElement) leaf in Leaves(item, prefix))
                    yield return leaf;
            }
        }
        else
        {
            yield return (prefix, element);
        }
    }

    /// <summary>Every kind of line, written by the encoder Guard uses.</summary>
    private static List<Line> Encode()
    {
        var sink = new LineSink();
        var table = new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames());
        PolicyDetectors detectors = PolicyDetectors.From(PolicyLoader.BuiltIn);
        EventPipeline pipeline = Pipelines.Over(table, sink, detectors);
        byte[] stratumLogin = Encoding.ASCII.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"x\"}}\n");

        // A training job: its launcher, a worker that talks to a pool, and a process whose bytes are hostile.
        pipeline.OnFork(Records.Fork(Launcher, 0));
        pipeline.OnExec(Records.Exec(Launcher, 0, "/usr/bin/python3 train.py", jobRoot: Launcher));
        pipeline.OnFork(Records.Fork(Worker, Launcher));
        pipeline.OnExec(Records.Exec(Worker, Launcher, "/usr/bin/python3 worker.py --lr 0.1", jobRoot: Launcher));
        pipeline.OnFork(Records.Fork(Hostile, Launcher));
        pipeline.OnExec(HostileExec());
        // The job's cgroup, as CgroupJobs names it from /proc on a host (no such process here).
        table.Find(Worker)!.CgroupJob = new Job("slurm:42", "slurm", "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_42") { Placement = new JobPlacement("0", "3", null, null) };
        // A pod's container, its name and namespace from the kubelet: orchestrator.* and container.*.
        table.Find(Hostile)!.CgroupJob = new Job("k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0", "kubernetes", "/kubepods.slice/kubepods-pod1b2c3d4e_5f60_7182_9304_a5b6c7d8e9f0.slice")
        {
            Placement = new JobPlacement(null, null, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "containerd", "trainer-0", "team-a"),
        };

        pipeline.OnConnect(Records.Connect(Worker, 1, Pool, 3333));
        pipeline.OnConnect(Connect(Worker, 2, ConnectResult.Failed, 10, 6, "2001:db8::1", 443));
        pipeline.OnConnect(Connect(Worker, 3, ConnectResult.Udp, 2, 17, "192.0.2.53", 53));
        pipeline.OnDns(Records.Dns(Worker, "gulf.moneroocean.stream")); // with the pool port: pool-dns
        pipeline.OnPayload(Records.Payload(Worker, 4, stratumLogin, 40, PayloadRecord.Stratum | PayloadRecord.Final, address: Pool));
        pipeline.OnPayload(Records.Payload(Worker, 5, Records.TlsClientHello("gulf.moneroocean.stream"), 41, PayloadRecord.Final, address: Pool, port: 443));
        pipeline.OnPayload(Records.Payload(Hostile, 6, "GET / HTTP/1.1\r\nHost: \"\u0001\"\r\n"u8, 42)); // no more came: out once quiet
        pipeline.Tick(1_000_000_000);

        // The kernel's stream records: a verdict past the head, through a SOCKS5 proxy; a hold at the scan's limit; a proxy asked for a pool.
        StreamRecord late = Records.Stream(Worker, 8, "mining.subscribe", 1_000_000_100, address: Pool, offset: 5000);
        late.Proxy = StreamProxy.Socks5;
        late.ProxyAddress = ProxyAddress.IPv4;
        late.ProxyHostLength = 4;
        late.ProxyPort = 3333;
        IPAddress.Parse(Pool).GetAddressBytes().CopyTo(late.ProxyHost);
        pipeline.OnStream(late);
        pipeline.OnStream(Records.Stream(Hostile, 9, "", 1_000_000_101, StreamRecord.Hold, address: Pool, offset: StreamRecord.ScanLimit));
        pipeline.OnStream(Records.Proxy(Hostile, 10, StreamProxy.Socks5, ProxyAddress.Name, "gulf.moneroocean.stream"u8.ToArray(), 10128, 1_000_000_102, address: "10.0.0.2"));

        pipeline.OnFork(Records.Fork(PortLast, Launcher));
        pipeline.OnExec(Records.Exec(PortLast, Launcher, "/usr/bin/python3 fetch.py", jobRoot: Launcher));
        pipeline.OnDns(Records.Dns(PortLast, "pool.supportxmr.com"));
        pipeline.OnConnect(Records.Connect(PortLast, 7, Pool, 3333)); // the second kind: pool-port

        pipeline.OnFork(Records.Fork(ArgumentMiner, Launcher));
        pipeline.OnExec(Records.Exec(ArgumentMiner, Launcher, "/opt/tools/render -o stratum+tcp://pool.supportxmr.com:3333 -u x", jobRoot: Launcher));

        pipeline.OnFork(Records.Fork(Staged, Launcher));
        pipeline.OnDns(Records.Dns(Staged, "pool.supportxmr.com"));
        pipeline.OnExec(Records.Exec(Staged, Launcher, "/dev/shm/.cache/kworker", jobRoot: Launcher, flags: ExecRecord.SharedDirectory));
        ProcessEntry staged = table.Find(Staged)!;
        sink.Write(detectors.Weak.OnNotHashed(staged, "gone, and its path names another file now", "/dev/shm/.cache/kworker", 70)!);

        pipeline.OnGpuOpen(new GpuOpenRecord { Header = Records.Header(RecordKind.GpuOpen, Worker, 50), Major = 195, Minor = 0, Access = 2, Role = (uint)GpuRole.ResourceManager });
        pipeline.OnGpuIoctl(new GpuIoctlRecord { Header = Records.Header(RecordKind.GpuIoctl, Worker, 51), Major = 195, Minor = 255, Command = 0xc020462a, Role = (uint)GpuRole.ResourceManager });
        sink.Write(GpuActivityOf(table.Find(Worker)!));

        // NVML: a device with the worker on it, and this test process, outside every job: an intruder once sustained.
        for (int i = 0; i < 3; i++)
        {
            pipeline.OnGpuSamples(
            [
                new GpuDeviceSample(0, "NVIDIA H100 80GB HBM3", "GPU-0", 97, 40, 30UL << 30, 80UL << 30, 350_000, false,
                    [new GpuProcessSample(Worker, 2UL << 30, 88, 30), new GpuProcessSample(Environment.ProcessId, 1UL << 30, 50, null)]),
                new GpuDeviceSample(1, "NVIDIA A100", "GPU-1", 0, 0, 0, 40UL << 30, null, true, []) { UtilizationNote = "MIG: no per-process utilisation" },
            ], i * 1_000_000_000L);
        }

        // RandomX: every directed rounding mode, 10 switches each a second.
        pipeline.OnFork(Records.Fork(Render, Launcher));
        pipeline.OnExec(Records.Exec(Render, Launcher, "/home/alice/project/render --threads 4", jobRoot: Launcher));
        Judge judge = Pipelines.JudgeOver(table, sink, detectors);
        for (ulong s = 0; s <= 30; s++)
        {
            var rounding = new GuardRounding { StartTimeNs = Records.StartOf(Render) };
            rounding.Switches[0] = rounding.Switches[1] = rounding.Switches[2] = 10 * s;
            judge.OnRoundingSample([(Render, rounding)], 100_000_000_000L + (long)s * 1_000_000_000L, table);
        }

        // Known miners: the kernel's verdict at exec, and one found running at start (their alerts wait for a hash in the sensor).
        pipeline.OnFork(Records.Fork(Xmrig, Launcher));
        ExecRecord xmrig = Records.Exec(Xmrig, Launcher, "/tmp/xmrig --donate-level 1", jobRoot: Launcher, flags: ExecRecord.KnownMiner | ExecRecord.MinerAnywhere | ExecRecord.Killed);
        pipeline.OnExec(xmrig);
        sink.Write(detectors.KnownMiners.OnExec(table.Find(Xmrig)!, xmrig)!);
        sink.Write(detectors.KnownMiners.OnExisting(table.Find(Xmrig)!, 80)!);
        pipeline.OnFork(Records.Fork(Minerd, Launcher));
        ExecRecord minerd = Records.Exec(Minerd, Launcher, "/usr/local/bin/minerd -t 4", jobRoot: Launcher, flags: ExecRecord.KnownMiner);
        pipeline.OnExec(minerd);
        sink.Write(detectors.KnownMiners.OnExec(table.Find(Minerd)!, minerd)!);
        var hashes = new HashFindings(Policies.Over($"[indicators]\nminer_hashes = [\"{DeniedHash}\"]\n"));
        sink.Write(hashes.OnHash(table.Find(Minerd)!, "/usr/local/bin/minerd", DeniedHash, 81)!);

        // A miner by its bytes, run from a memfd; a packed executable with one kind of marker: weak.
        ProcessEntry stagedMiner = table.Find(Staged)!;
        var minerContent = new ContentVerdict(MinerMarkerKinds.Algorithm | MinerMarkerKinds.Stratum, ["RandomX\\x03", "mining.subscribe"], null);
        sink.Write(detectors.Content.OnContent(stagedMiner, "/memfd:x (deleted)", DeniedHash, minerContent, 82)!);
        sink.Write(detectors.Weak.OnMarkers(stagedMiner, new ContentVerdict(MinerMarkerKinds.Stratum, ["mining.notify"], "UPX"), "/dev/shm/.cache/kworker", 83)!);

        // A Stratum line sent through two local relays: the sender found behind them, and one that could not be told.
        ProcessEntry relayProcess = table.Find(Launcher)!;
        RelayHop[] hops = [new(relayProcess, Launcher, "socat", "tcp 127.0.0.1:3333 <- 127.0.0.1:40001"), new(null, 4242, "haproxy", "unix @relay")];
        sink.Write(new AlertEvent
        {
            Rule = Detectors.Stratum.Name,
            Description = "Stratum through a local relay",
            RequestedAction = RuleAction.Kill,
            Evidence = [new("method", "login")],
            Process = table.Find(Worker),
            TimeNs = 85,
            Relay = new RelayEvidence { Hops = hops, SenderFound = true, Basis = "content" },
        });
        sink.Write(new AlertEvent
        {
            Rule = Detectors.Stratum.Name,
            Description = "Stratum through a local relay",
            RequestedAction = RuleAction.Alert,
            Evidence = [new("method", "login")],
            Process = relayProcess,
            TimeNs = 86,
            Relay = new RelayEvidence { Hops = hops[..1], SenderFound = false, Reason = "the sender exited" },
        });

        var exit = Records.Exit(Worker, 90);
        exit.ExitCode = 9; // SIGKILL
        pipeline.OnExit(exit);

        sink.Write(new HeartbeatEvent
        {
            Events = 120,
            DropsByKind = [0, 0, 0, 0, 0, 2, 0, 0, 0],
            Processes = 9,
            HashesDropped = 1,
            UptimeSeconds = 10.25,
            TimeNs = 95,
            Outputs = [new OutputHealth("file", 118, 2, 0, null), new OutputHealth("syslog", 100, 0, 20, "refused")],
        });

        // Actions, as the response, the CLI and a hold's timeout make them.
        ProcessEntry worker = table.Find(Worker)!;
        ProcessEntry launcher = table.Find(Launcher)!;
        sink.Write(new KillOutcome(new ProcessTarget(Xmrig, null), KillScope.Process, true, "killed 1 process", [Xmrig]).ToActionEvent(table.Find(Xmrig)));
        sink.Write(new KillOutcome(new ProcessTarget(Worker, null), KillScope.Tree, true, "killed 2 processes", [Worker, Hostile]).ToActionEvent(worker, "stratum"));
        sink.Write(new KillOutcome(new ProcessTarget(Launcher, null), KillScope.Job, true, "killed the job", [Launcher], "/system.slice/job.scope").ToActionEvent(launcher, "miner-in-job"));
        sink.Write(KillOutcome.Refused(new ProcessTarget(1, null), KillScope.Process, "PID 1 is never killed").ToActionEvent(null));
        sink.Write(new QuarantineOutcome(QuarantineOutcome.HoldAction, true, "held tree:x: 2 processes stopped", [Launcher, Worker], "/guard.slice/hold", "miner-in-job").ToActionEvent(launcher));
        sink.Write(new QuarantineOutcome("release", true, "released tree:x", [Launcher, Worker], "/guard.slice/hold", "cli", 1000).ToActionEvent(null));
        sink.Write(new QuarantineOutcome("kill-quarantined", true, "killed tree:x: 2 processes", [Launcher, Worker], "/guard.slice/hold", "timeout of 600 s").ToActionEvent(null));
        sink.Write(QuarantineOutcome.Refused("release", "nothing is held by that name", "cli", 1000).ToActionEvent(null));
        sink.Write(new DetachOutcome([4242], ["tree:x"], [], true).ToActionEvent());
        sink.Write(new DetachOutcome([4242], [], [new LoadedProgram(7, "guard_exec", [4242])], false).ToActionEvent());

        // A policy reload, taken and refused, as the sensor writes it.
        var inForce = new PolicyInForce(DeniedHash, ["built-in", "/etc/guard/policy.toml"], "enforce");
        sink.Write(new ActionEvent { Action = GuardSensor.ReloadAction, Succeeded = true, Message = "policy in force", OrderedBy = "sighup", Policy = inForce, TimeNs = 96 });
        sink.Write(new ActionEvent { Action = GuardSensor.ReloadAction, Succeeded = false, Message = "policy refused", OrderedBy = "sighup", Policy = inForce, TimeNs = 97 });
        // A confined job's denial with its process, and one in audit at egress (no process: the job from what was confined).
        sink.Write(new ConfineEvent
        {
            Process = worker,
            Section = "slurm-gpu",
            SectionSource = "policy.toml:3",
            Mode = "enforce",
            Attempt = "connect",
            JobId = "tree:x",
            JobSet = 1025,
            Family = 2,
            DestinationAddress = [198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DestinationPort = 3333,
            Protocol = 6,
            Count = 12,
            FirstNs = 90,
            TimeNs = 98,
        });
        sink.Write(new ConfineEvent
        {
            Section = "slurm-gpu",
            SectionSource = "policy.toml:3",
            Mode = "audit",
            Attempt = "egress",
            JobId = "slurm:4242",
            JobSet = 1026,
            Family = 10,
            DestinationAddress = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            DestinationPort = 443,
            Protocol = 17,
            Count = 1,
            FirstNs = 99,
            TimeNs = 99,
        });

        // An ask section's request, raised by a denied connect, and the decisions on requests.
        sink.Write(new ConfineEvent
        {
            Process = worker,
            Section = "ask-gpu",
            SectionSource = "policy.toml:9",
            Mode = "ask",
            Attempt = "connect",
            JobId = "tree:x",
            JobSet = 1027,
            Family = 2,
            DestinationAddress = [198, 51, 100, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DestinationPort = 443,
            Protocol = 6,
            Count = 1,
            FirstNs = 100,
            TimeNs = 100,
            ApprovalId = "k3xq7mzp2a4d",
            ApprovalExpiresUnixMs = 1_800_000_000_000,
        });
        var asked = new ApprovalFacts("k3xq7mzp2a4d", "destination", "tree:x", "ask-gpu", "tcp 198.51.100.8:443", null, "approved", 1_800_000_000_000, 0, 1000);
        sink.Write(new ActionEvent { Action = "approve", Succeeded = true, Message = "approved", OrderedByUid = 1000, Approval = asked, TimeNs = 101 });
        sink.Write(new ActionEvent { Action = "deny", Succeeded = true, Message = "denied", OrderedByUid = 0, Approval = asked with { Decision = "denied", UntilUnixMs = null, SudoUid = null }, TimeNs = 102 });
        var program = new ApprovalFacts("m2b4c6d7e2fg", "program", "slurm:4242", "ask-gpu", "exec /tmp/x (sha256 " + DeniedHash + ")", DeniedHash, "expired", null, null, null);
        sink.Write(new ActionEvent { Action = "approval-expired", Succeeded = true, Message = "expired", OrderedBy = "approval-gate", Approval = program, TimeNs = 103 });
        sink.Write(new ActionEvent { Action = "approval-ended", Succeeded = true, Message = "ended", OrderedBy = "approval-gate", Approval = asked with { Decision = "ended", UntilUnixMs = 0 }, TimeNs = 104 });

        // The ring lost records faster than --drop-alert-rate: the sensor's own alert, about no process.
        var dropEmitter = new EventEmitter(table, sink, new EventFilter());
        var drops = new RingDropAlerts(10, dropEmitter);
        drops.Sample([0, 0, 0, 0, 0, 0, 0, 0, 0], 1_000_000_000);
        drops.Sample([0, 500, 20, 0, 0, 0, 0, 0, 0], 2_000_000_000);

        return sink.Lines;
    }

    /// <summary>A process whose path, name and arguments hold a quote, a backslash, control bytes and bytes that are not UTF-8, cut short.</summary>
    private static ExecRecord HostileExec()
    {
        ExecRecord e = Records.Exec(Hostile, Launcher, "/tmp/h", jobRoot: Launcher, flags: ExecRecord.ArgsTruncated);
        byte[] path = [.. "/tmp/\"q\\"u8, 0xff, 0x0a, .. "x"u8];
        path.CopyTo(e.Path);
        e.PathLength = (ushort)path.Length;
        byte[] comm = [(byte)'"', 0xc3, 0x28, 0x01];
        comm.CopyTo(e.Comm);
        byte[] args = [.. "h"u8, 0, 0xfe, 0x7f, 0x1b, .. "\"--password=x\\"u8, 0, .. "\u2028"u8];
        args.CopyTo(e.Args);
        e.ArgsLength = (ushort)args.Length;
        return e;
    }

    private static ConnectRecord Connect(int pid, ulong cookie, ConnectResult result, ushort family, ushort protocol, string address, ushort port)
    {
        var c = new ConnectRecord
        {
            Header = Records.Header(RecordKind.Connect, pid, 21),
            Cookie = cookie,
            Family = family,
            Protocol = protocol,
            DestinationPort = port,
            SourcePort = protocol == 17 ? (ushort)0 : (ushort)40000,
            Result = result,
        };
        IPAddress.Parse(address).GetAddressBytes().CopyTo(c.DestinationAddress);
        (family == 10 ? IPAddress.Parse("2001:db8::2") : IPAddress.Parse("192.0.2.2")).GetAddressBytes().CopyTo(c.SourceAddress);
        return c;
    }

    private static GpuEvent GpuActivityOf(ProcessEntry process)
    {
        var activity = new GpuActivity { Opened = true };
        activity.Counts[(int)IoctlKind.RmAlloc] = 12;
        activity.Counts[(int)IoctlKind.RmControl] = 40;
        activity.Counts[(int)IoctlKind.Uvm] = 3;
        activity.Classes[0xc7c0] = 1; // AMPERE_COMPUTE_B
        activity.Classes[0xbeef] = 2; // unknown
        return new GpuEvent { Kind = GpuEventKind.Activity, Process = process, Major = 195, Minor = 0, Role = GpuRole.ResourceManager, Activity = activity, TimeNs = 52 };
    }

    /// <summary>Lines as Guard's encoder writes them; events written here directly get the next sequence number.</summary>
    private sealed class LineSink : IEventSink
    {
        private readonly EcsEncoder encoder = new(new RunInfo("gpu-node-7", "0c4d7b0e-1f51-4f6c-9d2e-6b1a0f3c2d11", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor());
        private readonly JsonLineWriter writer = new();
        private long sequence = 10_000;

        public List<Line> Lines { get; } = [];

        public void Write(SensorEvent e)
        {
            if (e.Sequence == 0)
                e.Sequence = ++sequence;
            encoder.Encode(e, writer);
            string text = Encoding.UTF8.GetString(writer.Written);
            using JsonDocument doc = JsonDocument.Parse(writer.Written.ToArray());
            string what = doc.RootElement.GetProperty("event").GetProperty("action").GetString()!;
            Lines.Add(new Line(what, text, doc.RootElement.Clone()));
        }

        public void Flush()
        {
        }

        public void Dispose()
        {
        }
    }
}

/// <summary>The ECS facts in Fixtures/ecs/ecs-reference.txt (see its header for where they come from).</summary>
internal sealed class EcsReference
{
    /// <summary>ECS field name to its type (keyword, long, date, ip, ...).</summary>
    public Dictionary<string, string> Fields { get; } = [];

    public HashSet<string> Kinds { get; } = [];

    /// <summary>Each allowed event.category, with the event.type values ECS expects for it.</summary>
    public Dictionary<string, HashSet<string>> Categories { get; } = [];

    public HashSet<string> Types { get; } = [];

    public HashSet<string> Outcomes { get; } = [];

    public static EcsReference Load(string path)
    {
        var reference = new EcsReference();
        foreach (string raw in File.ReadLines(path))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (words[0])
            {
                case "version":
                    break;
                case "field" when words.Length == 3:
                    reference.Fields.Add(words[1], words[2]);
                    break;
                case "kind" when words.Length == 2:
                    reference.Kinds.Add(words[1]);
                    break;
                case "category" when words.Length >= 3:
                    reference.Categories.Add(words[1], [.. words[2..]]);
                    break;
                case "type" when words.Length == 2:
                    reference.Types.Add(words[1]);
                    break;
                case "outcome" when words.Length == 2:
                    reference.Outcomes.Add(words[1]);
                    break;
                default:
                    throw new InvalidDataException($"{path}: cannot read \"{line}\"");
            }
        }
        return reference;
    }
}
