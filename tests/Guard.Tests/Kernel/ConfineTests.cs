using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Kernel;

/// <summary>
/// Confinement against the real kernel: bpf/confine.bpf.c attached at a cgroup
/// this test made (never the root), a stand-in Slurm job cgroup below it and a
/// launcher tree beside it. Each job is a python probe in a network namespace
/// of its own (unshare --net, loopback only) that listens on two ports of its
/// own, then connects and sends, and says what each call returned.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ConfineTests : IDisposable
{
    private const int Eperm = 1;
    private const int AllowedPort = 5001;
    private const int OtherPort = 5002;

    /// <summary>argv: mode (probe | preconnect | keep | trick). Listeners first (a listen is no connect), then each attempt's errno (0: it went).</summary>
    private const string Probe = """
        import json, socket, sys, threading, time
        A, O = 5001, 5002
        def listen(family, addr, port, kind=socket.SOCK_STREAM):
            s = socket.socket(family, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            return s
        got = bytearray()
        def serve(s):
            while True:
                c, _ = s.accept()
                def read(c=c):
                    while True:
                        b = c.recv(64)
                        if not b:
                            return
                        if b == b"ping":
                            c.sendall(b"pong")
                        got.extend(b)
                threading.Thread(target=read, daemon=True).start()
        for s in (listen(socket.AF_INET, "0.0.0.0", A), listen(socket.AF_INET, "0.0.0.0", O), listen(socket.AF_INET6, "::1", A)):
            threading.Thread(target=serve, args=(s,), daemon=True).start()
        udp = listen(socket.AF_INET, "127.0.0.1", A, socket.SOCK_DGRAM)
        def tcp(addr, port, family=socket.AF_INET):
            try:
                c = socket.socket(family)
                c.settimeout(2)
                c.connect((addr, port))
                c.close()
                return 0
            except OSError as e:
                return e.errno or -1
        def reply(addr, port):
            # The answer comes back on the socket the job's listener accepted: inbound, never judged.
            try:
                c = socket.create_connection((addr, port), timeout=2)
                c.sendall(b"ping")
                return 0 if c.recv(4) == b"pong" else -1
            except OSError as e:
                return e.errno or -1
        def udp_send(addr, port):
            try:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (addr, port))
                return 0
            except OSError as e:
                return e.errno
        def udp_connect(addr, port):
            try:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect((addr, port))
                return 0
            except OSError as e:
                return e.errno
        if sys.argv[1] == "probe":
            print(json.dumps({"allowed": tcp("127.0.0.1", A), "reply": reply("127.0.0.1", A), "other_port": tcp("127.0.0.1", O), "other_address": tcp("127.0.0.2", A),
                "udp_send": udp_send("127.0.0.1", A), "udp_connect": udp_connect("127.0.0.1", A), "ipv6": tcp("::1", A, socket.AF_INET6)}), flush=True)
        else:
            # preconnect: to the other port, before the job is confined; keep: to the allowed port, saying its cookie (SO_COOKIE);
            # trick: as keep, from port 5003, where the job then listens too (SO_REUSEADDR and SO_REUSEPORT on both).
            c = socket.socket()
            if sys.argv[1] == "trick":
                for option in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
                    c.setsockopt(socket.SOL_SOCKET, option, 1)
                c.bind(("127.0.0.1", 5003))
            c.connect(("127.0.0.1", A if sys.argv[1] in ("keep", "trick") else O))
            if sys.argv[1] == "trick":
                held = socket.socket()
                for option in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
                    held.setsockopt(socket.SOL_SOCKET, option, 1)
                held.bind(("0.0.0.0", 5003))
                held.listen(4)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b"a")
            time.sleep(0.3)
            print("connected", int.from_bytes(c.getsockopt(socket.SOL_SOCKET, 57, 8), "little"), flush=True)
            sys.stdin.readline()
            c.sendall(b"b")
            time.sleep(1.5)
            print(json.dumps({"received": got.decode()}), flush=True)
        """;

    /// <summary>
    /// argv: resolver | probe | other ADDR.... The resolver answers A for NAME at 127.0.0.53 and
    /// (a resolver no section names) 127.0.0.54, in ways chosen by the name's first label:
    /// nI (127.1.0.I+1), other- (answers a question not asked), loop- and fwd- (compression
    /// pointers to itself, forwards), big- (TTL 2^31), huge- (TTL 2^31 - 1), trunc- (cut in the
    /// record), alias- (a CNAME to real-, then its A); it accepts on 5001. The probe asks by its
    /// own UDP queries, as a resolver library does, and connects at once to what the name maps to.
    /// </summary>
    private const string Dns = """
        import json, random, socket, struct, sys, threading, time
        SUFFIX = "models.test"
        def address(name):
            head = name.split(".")[0]
            if head.startswith("n") and head[1:].isdigit():
                return "127.1.0.%d" % (int(head[1:]) + 1)
            special = {"evil": 1, "other": 2, "loop": 3, "big": 4, "huge": 5, "self": 6, "real": 7, "alias": 7, "trunc": 8, "fwd": 9}
            return "127.2.0.%d" % special.get(head.split("-")[0], 99)
        def wire(name):
            return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
        def answer(q):
            qid, flags, qd = struct.unpack(">HHH", q[:6])
            end = 12
            while q[end]:
                end += q[end] + 1
            qname = ".".join(l.decode() for l in _labels(q, 12))
            question = q[12:end + 5]
            head = qname.split(".")[0].split("-")[0]
            ttl = {"big": 0x80000000, "huge": 0x7fffffff}.get(head, 60)
            rr = struct.pack(">HHIH", 1, 1, ttl, 4) + socket.inet_aton(address(qname))
            if head == "other":  # answers a question that was not asked
                question = wire("zzz." + SUFFIX) + struct.pack(">HH", 1, 1)
                return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + b"\xc0\x0c" + rr
            if head == "loop":  # the record's name points at itself
                at = 12 + len(question)
                return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + struct.pack(">H", 0xc000 | at) + rr
            if head == "fwd":  # the record's name points forwards, at a pointer back to it
                at = 12 + len(question)
                return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + struct.pack(">H", 0xc000 | (at + 2)) + struct.pack(">H", 0xc000 | at) + rr
            if head == "alias":  # a CNAME chain inside the answer
                target = wire(qname.replace("alias", "real", 1))
                cname = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, len(target)) + target
                at = 12 + len(question) + 12
                return struct.pack(">HHHHHH", qid, 0x8180, 1, 2, 0, 0) + question + cname + struct.pack(">H", 0xc000 | at) + rr
            full = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + b"\xc0\x0c" + rr
            return full[:-2] if head == "trunc" else full
        def _labels(m, at):
            out = []
            while m[at]:
                out.append(m[at + 1:at + 1 + m[at]])
                at += m[at] + 1
            return out
        def serve(addr):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr, 53))
            while True:
                q, peer = s.recvfrom(2048)
                s.sendto(answer(q), peer)
        def query(name, server="127.0.0.53"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.connect((server, 53))
            qid = random.randrange(65536)
            s.send(struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire(name) + struct.pack(">HH", 1, 1))
            s.recv(2048)
            s.close()
        def connect(addr):
            try:
                c = socket.create_connection((addr, 5001), timeout=2)
                c.close()
                return 0
            except OSError as e:
                return e.errno or -1
        if sys.argv[1] == "resolver":
            for a in ("127.0.0.53", "127.0.0.54"):
                threading.Thread(target=serve, args=(a,), daemon=True).start()
            l = socket.socket()
            l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(("0.0.0.0", 5001))
            l.listen(512)
            def accept():
                while True:
                    l.accept()[0].close()
            threading.Thread(target=accept, daemon=True).start()
            print("ready", flush=True)
            sys.stdin.readline()
        elif sys.argv[1] == "probe":
            ok = 0
            for i in range(100):
                name = "n%d.%s" % (i, SUFFIX)
                query(name)
                ok += connect(address(name)) == 0
            r = {"connected_after_lookup": ok}
            for head in ("evil", "other", "loop", "fwd", "big", "huge", "trunc", "alias"):
                name = ("%s-1.other.test" % head) if head == "evil" else ("%s-1.%s" % (head, SUFFIX))
                query(name)
                r[head] = connect(address(name))
            query("self-1." + SUFFIX, "127.0.0.54")
            r["self"] = connect(address("self-1." + SUFFIX))
            print(json.dumps(r), flush=True)
        elif sys.argv[1] == "forge":
            # In a user and network namespace the job made: the resolver's address is its own to bind and answer from.
            threading.Thread(target=serve, args=("127.0.0.53",), daemon=True).start()
            time.sleep(0.3)
            query("pool-1." + SUFFIX)
            print(json.dumps({"forged": address("pool-1." + SUFFIX)}), flush=True)
        elif sys.argv[1] == "lookup":
            query(sys.argv[2])
            print(json.dumps({"lookup": connect(address(sys.argv[2]))}), flush=True)
        else:
            print(json.dumps({"other_job": [connect(a) for a in sys.argv[2:]]}), flush=True)
        """;

    /// <summary>
    /// A new job's connects from its first exec on (env T0: CLOCK_REALTIME ns of that exec):
    /// a listener on 5002 of its own, then a connect to it every millisecond for 10 s; says
    /// when the last one went and the first was denied, in ms after T0, and how many went.
    /// </summary>
    private const string Window = """
        import json, os, socket, time
        t0 = int(os.environ["T0"])
        l = socket.socket()
        l.bind(("127.0.0.1", 5002))
        l.listen(4096)
        went, last, first = 0, None, None
        end = time.time() + 10
        while time.time() < end:
            c = socket.socket()
            try:
                c.connect(("127.0.0.1", 5002))
                went += 1
                last = (time.time_ns() - t0) / 1e6
            except OSError as e:
                if e.errno == 1:
                    first = (time.time_ns() - t0) / 1e6
                    break
            finally:
                c.close()
            time.sleep(0.001)
        print(json.dumps({"t0": t0, "went": went, "last_allowed_ms": last, "first_denied_ms": first}), flush=True)
        """;

    /// <summary>
    /// argv: outside PATH | job PATH. outside (no job, its own netns): listens on 5001 (allowed) and
    /// 5002 (the pool), connects to each, passes both sockets over the unix socket PATH
    /// (SCM_RIGHTS), and on a line from stdin says what each listener received. job: takes
    /// them at PATH, writes three times on the allowed one, says it is alive, then writes on the pool's.
    /// </summary>
    private const string Passer = """
        import json, os, socket, sys, threading, time
        path = sys.argv[2]
        if sys.argv[1] == "outside":
            got = {5001: bytearray(), 5002: bytearray()}
            def serve(l, port):
                c, _ = l.accept()
                while True:
                    b = c.recv(64)
                    if not b:
                        return
                    got[port].extend(b)
            conns = []
            for port in (5001, 5002):
                l = socket.socket()
                l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                l.bind(("127.0.0.1", port))
                l.listen(4)
                threading.Thread(target=serve, args=(l, port), daemon=True).start()
                conns.append(socket.create_connection(("127.0.0.1", port)))
            u = socket.socket(socket.AF_UNIX)
            u.connect(path)
            socket.send_fds(u, [b"x"], [c.fileno() for c in conns])
            print("passed", flush=True)
            sys.stdin.readline()
            print(json.dumps({"allowed": got[5001].decode(), "pool": got[5002].decode()}), flush=True)
        else:
            u = socket.socket(socket.AF_UNIX)
            u.bind(path)
            u.listen(1)
            print("ready", flush=True)
            c, _ = u.accept()
            _, fds, _, _ = socket.recv_fds(c, 16, 2)
            allowed, pool = (socket.socket(fileno=fd) for fd in fds)
            for _ in range(3):
                allowed.sendall(b"a")
                time.sleep(0.05)
            print(json.dumps({"alive": True}), flush=True)
            for _ in range(20):
                pool.sendall(b"p")
                time.sleep(0.05)
            print(json.dumps({"alive": True}), flush=True)
        """;

    /// <summary>The job instances of bpf/confine.bpf.c a section without resolvers needs: sockops, egress, connect4/6, sendmsg4/6, dev (ingress reads only DNS answers).</summary>
    private const int JobPrograms = 7;

    /// <summary>The tree instances at the root, likewise: the job's less sockops (a tree's accepted sockets carry no verdict, and egress judges only those that do).</summary>
    private const int TreePrograms = 6;

    private readonly TestCgroups cgroups = new();
    private readonly TempDir dir = new();
    private readonly List<Process> started = [];
    private readonly ITestOutputHelper output;

    public ConfineTests(ITestOutputHelper output)
    {
        KernelRequirements.Check();
        this.output = output;
    }

    private static ConfineRules Rules(string mode = "enforce") =>
        new(Policies.Over($"[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\nlaunchers = [\"trainer\"]\nmode = \"{mode}\"\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\n"));

    /// <summary>Attaches confinement at this test's cgroup and writes the section's rules.</summary>
    private ConfineKernel Attach(ConfineRules rules)
    {
        ConfineKernel kernel = ConfineKernel.Ensure(cgroups.DirectoryOf(cgroups.Top));
        kernel.ReplaceSet(1, rules.Sets[0]);
        return kernel;
    }

    /// <summary>Confines the stand-in Slurm job cgroup (job_N under this test's cgroup) with its own rule set, as the sensor does.</summary>
    private string ConfinedSlurmJob(ConfineKernel kernel, ConfineRules rules)
    {
        string job = cgroups.Make("job_" + Random.Shared.Next(1000, 99999).ToString(CultureInfo.InvariantCulture));
        ulong id = Libc.InodeOf(cgroups.DirectoryOf(job)) ?? throw new Xunit.Sdk.XunitException("the job cgroup has no inode");
        kernel.ConfineCgroup(id, Cgroupfs.LevelOf(job), rules.KernelJob(rules.Sections[0], ConfineRules.CgroupJobSet(id)));
        return job;
    }

    /// <summary>slurm:N of a stand-in job cgroup .../job_N.</summary>
    private static string SlurmId(string job) => "slurm:" + job[(job.LastIndexOf("job_", StringComparison.Ordinal) + 4)..];

    private static Dictionary<uint, ConfinedJob> JobsOf(string job, ConfineRules rules, TestCgroups cgroups) =>
        new() { [ConfineRules.CgroupJobSet(Libc.InodeOf(cgroups.DirectoryOf(job))!.Value)] = new ConfinedJob(SlurmId(job), rules.Sections[0]) };

    private static JsonElement Ecs(SensorEvent e)
    {
        var encoder = new EcsEncoder(RunInfo.ForThisHost("test"), new ArgumentRedactor());
        var w = new JsonLineWriter();
        encoder.Encode(e, w);
        return JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(w.Written)).RootElement;
    }

    /// <summary>The probe in its own netns, started from a shell in <paramref name="cgroupPath"/>; the shell waits for Go.</summary>
    private Process StartProbe(string cgroupPath, string mode)
    {
        string script = dir.File("probe.py", Probe);
        Process shell = cgroups.StartIn(cgroupPath, $"exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script} {mode}'");
        started.Add(shell);
        return shell;
    }

    /// <summary>The section's names and resolvers in the kernel, and the DNS stand-in's resolver in a netns of its own: its script and that netns.</summary>
    private (string Script, string Netns) StartResolver(ConfineKernel kernel, ConfineRules rules)
    {
        kernel.ReplaceNames(1, ConfineRules.NamesOf(rules.Sections[0]));
        kernel.ReplaceResolvers(1, [.. rules.Sections[0].Resolvers.Select(ConfineRules.Mapped)]);
        string script = dir.File("dns.py", Dns);
        Process resolver = cgroups.StartIn(cgroups.Make("resolver"), $"exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script} resolver'");
        started.Add(resolver);
        TestCgroups.Go(resolver);
        Assert.Equal("ready", LineWithin(resolver));
        return (script, $"/proc/{resolver.Id.ToString(CultureInfo.InvariantCulture)}/ns/net");
    }

    private static JsonElement Result(Process probe)
    {
        string? line = LineWithin(probe);
        Assert.True(line is not null, "the probe said nothing: " + probe.StandardError.ReadToEnd());
        return JsonDocument.Parse(line).RootElement;
    }

    /// <summary>The probe's next line; bounded, so a probe that never answers fails the test instead of holding the run.</summary>
    private static string? LineWithin(Process probe)
    {
        Task<string?> read = probe.StandardOutput.ReadLineAsync();
        Assert.True(read.Wait(30_000), "the probe did not answer within 30 s");
        return read.Result;
    }

    private static void AssertConfined(JsonElement r)
    {
        Assert.Equal(0, r.GetProperty("allowed").GetInt32());
        Assert.Equal(0, r.GetProperty("reply").GetInt32());
        Assert.Equal(Eperm, r.GetProperty("other_port").GetInt32());
        Assert.Equal(Eperm, r.GetProperty("other_address").GetInt32());
        Assert.Equal(Eperm, r.GetProperty("udp_send").GetInt32());
        Assert.Equal(Eperm, r.GetProperty("udp_connect").GetInt32());
        Assert.Equal(Eperm, r.GetProperty("ipv6").GetInt32());
    }

    private static void AssertFree(JsonElement r)
    {
        foreach (string attempt in new[] { "allowed", "reply", "other_port", "other_address", "udp_send", "udp_connect", "ipv6" })
            Assert.True(r.GetProperty(attempt).GetInt32() == 0, $"{attempt}: errno {r.GetProperty(attempt).GetInt32()}");
    }

    [Fact]
    public void ASlurmJobReachesOnlyItsAllowedAddressAndPort()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        Process job = StartProbe(ConfinedSlurmJob(kernel, rules), "probe");
        Process outside = StartProbe(cgroups.Make("not-a-job"), "probe");
        TestCgroups.Go(job);
        TestCgroups.Go(outside);
        AssertConfined(Result(job));
        AssertFree(Result(outside));

        // Each denial is counted per job and destination, with who was denied.
        var denials = kernel.Denials();
        Assert.Contains(denials, d => d.Key.Section == 1 && d.Key.Port == OtherPort && d.Key.What == (byte)ConfineWhat.Connect && d.Value.Count >= 1 && d.Value.Mode == (uint)ConfineKernelMode.Enforce);
        Assert.Contains(denials, d => d.Key.Port == AllowedPort && d.Key.Protocol == 17 && d.Key.What == (byte)ConfineWhat.Send);
        Assert.DoesNotContain(denials, d => d.Key.Port == AllowedPort && d.Key.Protocol == 6 && d.Key.Address[15] == 1 && d.Key.Address[12] == 127);
    }

    [Fact]
    public void EachDenialIsAnEcsEventOncePerJobDestinationAndMinuteWithItsCount()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        Process probe = StartProbe(job, "probe");
        TestCgroups.Go(probe);
        AssertConfined(Result(probe));
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        var denials = new ConfineDenials();
        long now = Libc.NowNs(Libc.ClockBoottime);
        List<ConfineEvent> events = denials.Check(kernel.Denials(), now, rules, JobsOf(job, rules, cgroups), table);
        ConfineEvent otherPort = Assert.Single(events, e => e.DestinationPort == OtherPort);
        Assert.Equal(SlurmId(job), otherPort.JobId);
        Assert.Equal("connect", otherPort.Attempt);
        Assert.True(otherPort.Count >= 1);
        JsonElement line = Ecs(otherPort);
        JsonElement ev = line.GetProperty("event");
        Assert.Equal("event", ev.GetProperty("kind").GetString());
        Assert.Equal("network", ev.GetProperty("category")[0].GetString());
        Assert.Equal("denied", ev.GetProperty("type")[0].GetString());
        Assert.Equal("failure", ev.GetProperty("outcome").GetString());
        Assert.Equal("127.0.0.1", line.GetProperty("destination").GetProperty("ip").GetString());
        Assert.Equal(OtherPort, line.GetProperty("destination").GetProperty("port").GetInt32());
        Assert.Equal("tcp", line.GetProperty("network").GetProperty("transport").GetString());
        Assert.Equal("test", line.GetProperty("guard").GetProperty("confine").GetProperty("section").GetString());
        Assert.Equal(SlurmId(job), line.GetProperty("guard").GetProperty("job").GetProperty("id").GetString());
        Assert.Contains(events, e => e.Attempt == "send" && e.Protocol == 17 && e.DestinationPort == AllowedPort);
        Assert.Contains(events, e => e.Family == 10);
        // Denied again within the minute: counted in the kernel, not reported again.
        Process again = StartProbe(job, "probe");
        TestCgroups.Go(again);
        AssertConfined(Result(again));
        Assert.Empty(denials.Check(kernel.Denials(), Libc.NowNs(Libc.ClockBoottime), rules, JobsOf(job, rules, cgroups), table));
        ConfineEvent later = Assert.Single(
            denials.Check(kernel.Denials(), now + ConfineDenials.ReportIntervalNs, rules, JobsOf(job, rules, cgroups), table), e => e.DestinationPort == OtherPort);
        Assert.Equal(1UL, later.Count);
    }

    [Fact]
    public void AuditDenialsAreAllowedEventsThatSayTheyWouldBeDenied()
    {
        ConfineRules rules = Rules("audit");
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        Process probe = StartProbe(job, "probe");
        TestCgroups.Go(probe);
        AssertFree(Result(probe));
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        ConfineEvent e = Assert.Single(new ConfineDenials().Check(kernel.Denials(), Libc.NowNs(Libc.ClockBoottime), rules, JobsOf(job, rules, cgroups), table), d => d.DestinationPort == OtherPort);
        JsonElement line = Ecs(e);
        Assert.Equal("allowed", line.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("success", line.GetProperty("event").GetProperty("outcome").GetString());
        Assert.True(line.GetProperty("guard").GetProperty("confine").GetProperty("would_deny").GetBoolean());
    }

    [Fact]
    public void ConfineShowPrintsAJobsRulesAndWhetherItIsConfinedAndRefusesAnUnknownJob()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        Process probe = StartProbe(job, "probe"); // a member: the job has a process
        string policy = dir.File("show.toml", $"[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\nlaunchers = [\"trainer\"]\nmode = \"enforce\"\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\nexec.deny = [\"shells\"]\n");
        var console = new TestConsole();
        Assert.Equal(0, Guard.Cli.GuardCli.Run(["confine", "show", SlurmId(job), "--policy", policy], console));
        Assert.StartsWith($"job {SlurmId(job)}: confined now", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Contains("section: test (", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Contains($"egress allow: tcp://127.0.0.1:{AllowedPort}", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Contains("exec deny: shells; allow: nothing", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Contains("gpu: not confined by this section", console.Out.ToString(), StringComparison.Ordinal);

        var unknown = new TestConsole();
        Assert.Equal(1, Guard.Cli.GuardCli.Run(["confine", "show", "slurm:987654321", "--policy", policy], unknown));
        Assert.Equal("guard confine show: no job slurm:987654321 on this host\n", unknown.ErrorText);
        Assert.Equal("", unknown.Out.ToString());
    }

    [Fact]
    public void ANameIsAllowedByTheJobsOwnAnswersForItAloneAndNothingElseOfAnAnswerCounts()
    {
        ConfineRules rules = new(Policies.Over(
            "[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\nresolvers = [\"127.0.0.53\"]\n" +
            $"egress.allow = [\"tcp://127.0.0.1:{AllowedPort}\", \"*.models.test:{AllowedPort}\", \"udp://127.0.0.54:53\"]\n"));
        using ConfineKernel kernel = Attach(rules);
        (string script, string netns) = StartResolver(kernel, rules);
        string job = ConfinedSlurmJob(kernel, rules);
        Process probe = cgroups.StartIn(job, $"exec nsenter --net={netns} {Run.Python} {script} probe");
        started.Add(probe);
        TestCgroups.Go(probe);
        JsonElement r = Result(probe);
        // Each name resolved through the section's resolver, the connect right after it goes.
        Assert.Equal(100, r.GetProperty("connected_after_lookup").GetInt32());
        Assert.Equal(0, r.GetProperty("alias").GetInt32()); // a CNAME chain within the answer
        Assert.Equal(0, r.GetProperty("big").GetInt32());   // TTL 2^31 is 0: allowed for the least time
        Assert.Equal(0, r.GetProperty("huge").GetInt32());
        // A name the section does not allow, an answer to a question not asked, a compression loop
        // (back to itself, or forwards), a record cut short, a resolver the section does not name: nothing allowed.
        foreach (string denied in new[] { "evil", "other", "loop", "fwd", "trunc", "self" })
            Assert.True(r.GetProperty(denied).GetInt32() == Eperm, $"{denied}: errno {r.GetProperty(denied).GetInt32()}");
        // Allowed for the job's own set alone, for at most an hour whatever the TTL.
        uint own = ConfineRules.CgroupJobSet(Libc.InodeOf(cgroups.DirectoryOf(job))!.Value);
        ulong now = (ulong)Libc.NowNs(Libc.ClockBoottime);
        var entries = kernel.Entries().Where(e => e.Key.Set == own).ToList();
        Assert.Equal(100 + 3, entries.Count);
        Assert.All(entries, e => Assert.InRange(e.Ports.ExpiresNs, now, now + (3600UL * 1_000_000_000)));
        Assert.Contains(entries, e => e.Ports.ExpiresNs < now + (31UL * 1_000_000_000)); // big-: TTL 0, held 30 s

        // Another confined job connecting to the addresses this job was given: denied.
        Process other = cgroups.StartIn(ConfinedSlurmJob(kernel, rules), $"exec nsenter --net={netns} {Run.Python} {script} other 127.1.0.1 127.1.0.50 127.2.0.7");
        started.Add(other);
        TestCgroups.Go(other);
        Assert.All(Result(other).GetProperty("other_job").EnumerateArray(), e => Assert.Equal(Eperm, e.GetInt32()));
    }

    [Fact]
    public void AnAnswerTheJobForgesInANetworkNamespaceOfItsOwnAllowsNothing()
    {
        ConfineRules rules = new(Policies.Over(
            "[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\nresolvers = [\"127.0.0.53\"]\n" +
            $"egress.allow = [\"*.models.test:{AllowedPort}\", \"udp://127.0.0.0/8\"]\n")); // UDP on loopback: the forged resolver may answer
        using ConfineKernel kernel = Attach(rules);
        (string script, string netns) = StartResolver(kernel, rules);
        string job = ConfinedSlurmJob(kernel, rules);
        // The job makes a user and network namespace, answers its own query for an allowed name there
        // with the pool's address, then connects to that address where the section's resolver is.
        Process probe = cgroups.StartIn(
            job,
            $"exec nsenter --net={netns} /bin/sh -c 'unshare -Urn /bin/sh -c \"ip link set lo up; exec {Run.Python} {script} forge\" && " +
            $"{Run.Python} {script} other 127.2.0.99 && exec {Run.Python} {script} lookup n7.models.test'");
        started.Add(probe);
        TestCgroups.Go(probe);
        Assert.Equal("127.2.0.99", Result(probe).GetProperty("forged").GetString());
        Assert.Equal(Eperm, Assert.Single(Result(probe).GetProperty("other_job").EnumerateArray()).GetInt32());
        // The section's own resolver still answers the same job, and its address goes.
        Assert.Equal(0, Result(probe).GetProperty("lookup").GetInt32());
        uint own = ConfineRules.CgroupJobSet(Libc.InodeOf(cgroups.DirectoryOf(job))!.Value);
        var entries = kernel.Entries().Where(e => e.Key.Set == own).ToList();
        GuardConfineKey allowed = Assert.Single(entries).Key;
        Assert.Equal(new byte[] { 127, 1, 0, 8 }, ((ReadOnlySpan<byte>)allowed.Address)[12..].ToArray());
    }

    /// <summary>Starts the passer's job in a confined Slurm job and its outside half beside it; returns both once the sockets are passed.</summary>
    private (Process Job, Process Outside, string JobCgroup) PassSockets(ConfineKernel kernel, ConfineRules rules)
    {
        string job = ConfinedSlurmJob(kernel, rules);
        string script = dir.File("passer.py", Passer);
        string path = Path.Join(dir.Path, "pass.sock");
        Process taker = cgroups.StartIn(job, $"exec {Run.Python} {script} job {path}");
        started.Add(taker);
        TestCgroups.Go(taker);
        Assert.Equal("ready", LineWithin(taker));
        // Made and connected outside every confined job, in a netns of its own; only the job writes on them.
        Process outside = cgroups.StartIn(cgroups.Make("not-a-job"), $"exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script} outside {path}'");
        started.Add(outside);
        TestCgroups.Go(outside);
        Assert.Equal("passed", LineWithin(outside));
        return (taker, outside, job);
    }

    [Fact]
    public void ASendOnASocketPassedInFromOutsideEveryJobKillsTheSenderUnlessItsPeerIsAllowed()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        (Process taker, Process outside, string job) = PassSockets(kernel, rules);
        // The allowed destination: untouched, the job lives on.
        Assert.True(Result(taker).GetProperty("alive").GetBoolean());
        // The pool: the first send kills the sender.
        Assert.True(taker.WaitForExit(10_000), "the job wrote on the pool's socket and lived 10 s");
        Assert.Equal(128 + 9, taker.ExitCode);
        Thread.Sleep(300);
        outside.StandardInput.WriteLine("report");
        JsonElement got = Result(outside);
        Assert.Equal("aaa", got.GetProperty("allowed").GetString());
        Assert.InRange(got.GetProperty("pool").GetString()!.Length, 0, 1);

        // Reported as a denial of the section, with what it was.
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        ConfineEvent denied = Assert.Single(
            new ConfineDenials().Check(kernel.Denials(), Libc.NowNs(Libc.ClockBoottime), rules, JobsOf(job, rules, cgroups), table), e => e.Attempt == "passed-in socket");
        Assert.Equal(OtherPort, denied.DestinationPort);
        Assert.Equal(1UL, denied.Count);
        JsonElement line = Ecs(denied);
        Assert.Equal("denied", line.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("test", line.GetProperty("guard").GetProperty("confine").GetProperty("section").GetString());
        Assert.Equal("passed-in socket", line.GetProperty("guard").GetProperty("confine").GetProperty("attempt").GetString());
        Assert.Equal(SlurmId(job), line.GetProperty("guard").GetProperty("job").GetProperty("id").GetString());
    }

    [Fact]
    public void AuditOnlyRecordsASendOnAPassedInSocket()
    {
        ConfineRules rules = Rules("audit");
        using ConfineKernel kernel = Attach(rules);
        (Process taker, Process outside, _) = PassSockets(kernel, rules);
        Assert.True(Result(taker).GetProperty("alive").GetBoolean());
        Assert.True(Result(taker).GetProperty("alive").GetBoolean()); // after its 20 writes to the pool
        Assert.True(taker.WaitForExit(10_000), "the job did not end after its writes");
        Assert.Equal(0, taker.ExitCode);
        Thread.Sleep(300);
        outside.StandardInput.WriteLine("report");
        Assert.Equal(new string('p', 20), Result(outside).GetProperty("pool").GetString());
        Assert.Contains(
            kernel.Denials(),
            d => d.Key.What == (byte)ConfineWhat.Passed && d.Key.Port == OtherPort && d.Value.Mode == (uint)ConfineKernelMode.Audit && d.Value.Count == 20);
    }

    [Fact]
    public void ALauncherTreeIsConfinedFromItsLauncherDown()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        Process tree = StartProbe(cgroups.Make("launched"), "probe");
        // The shell is the launcher: its unshare, sh and python are forked below it after this.
        Assert.True(Guard.Sensor.Processes.ProcfsReader.TryReadStat(tree.Id, out var stat));
        kernel.ConfineProcess(tree.Id, stat.StartTicks, rules.KernelJob(rules.Sections[0], 0));
        Process outside = StartProbe(cgroups.Make("not-a-job"), "probe");
        TestCgroups.Go(tree);
        TestCgroups.Go(outside);
        AssertConfined(Result(tree));
        AssertFree(Result(outside));
    }

    [Fact]
    public void ALauncherNamedByCommStartsAConfinedTreeAtItsExec()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        foreach ((string comm, ConfineSection section) in rules.LauncherNames())
            kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
        string trainer = dir.ShellCopy("trainer");
        string script = dir.File("probe.py", Probe);
        Process shell = cgroups.StartIn(cgroups.Make("launched"), $"exec unshare --net {trainer} -c 'ip link set lo up; {Run.Python} {script} probe'");
        started.Add(shell);
        TestCgroups.Go(shell);
        AssertConfined(Result(shell));
    }

    [Fact]
    public void AuditOnlyCounts()
    {
        ConfineRules rules = Rules("audit");
        using ConfineKernel kernel = Attach(rules);
        Process job = StartProbe(ConfinedSlurmJob(kernel, rules), "probe");
        TestCgroups.Go(job);
        AssertFree(Result(job));
        Assert.Contains(kernel.Denials(), d => d.Key.Port == OtherPort && d.Value.Mode == (uint)ConfineKernelMode.Audit && d.Value.Count >= 1);
    }

    [Fact]
    public void ASocketConnectedBeforeTheRuleIsDropped()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = cgroups.Make("job_" + Random.Shared.Next(1000, 99999).ToString(CultureInfo.InvariantCulture));
        Process probe = StartProbe(job, "preconnect");
        TestCgroups.Go(probe);
        Assert.StartsWith("connected", LineWithin(probe), StringComparison.Ordinal);
        // Connected (to the other port) while nothing confined the job: now it is.
        kernel.ConfineCgroup(Libc.InodeOf(cgroups.DirectoryOf(job))!.Value, Cgroupfs.LevelOf(job), rules.KernelJob(rules.Sections[0], 0));
        probe.StandardInput.WriteLine("send");
        Assert.Equal("a", Result(probe).GetProperty("received").GetString());
        Assert.Contains(kernel.Denials(), d => d.Key.Port == OtherPort && d.Key.What == (byte)ConfineWhat.Egress);
    }

    /// <summary>
    /// A probe in <paramref name="job"/> started in <paramref name="mode"/>, connected, with its
    /// socket's entry deleted from the pinned confine_verdicts by cookie: what the LRU does to the
    /// oldest entries when 65,536 sockets are newer.
    /// </summary>
    private unsafe (Process Probe, ulong Cookie) ConnectedWithoutItsVerdict(string job, string mode)
    {
        Process probe = StartProbe(job, mode);
        TestCgroups.Go(probe);
        string? line = LineWithin(probe);
        Assert.True(line is not null && line.StartsWith("connected ", StringComparison.Ordinal), "the probe did not connect: " + line);
        ulong cookie = ulong.Parse(line["connected ".Length..], CultureInfo.InvariantCulture);
        using var verdicts = new FileDescriptor(Libbpf.ObjectGet(Path.Join(ConfineKernel.PinRoot, BpfMapNames.ConfineVerdicts)));
        Assert.True(verdicts.Fd >= 0, "no pinned confine_verdicts");
        Assert.Equal(0, Libbpf.MapDelete(verdicts.Fd, &cookie));
        return (probe, cookie);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public unsafe void ASocketWhoseVerdictWasEvictedIsJudgedAgainAtItsNextPacket(bool stillAllowed)
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        (Process probe, ulong cookie) = ConnectedWithoutItsVerdict(job, "keep");
        if (!stillAllowed)
            kernel.ReplaceSet(1, new ConfineRules(Policies.Over("[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"10.0.0.0/8:443\"]\n")).Sets[0]);
        probe.StandardInput.WriteLine("send");
        Assert.Equal(stillAllowed ? "ab" : "a", Result(probe).GetProperty("received").GetString());
        // Judged again, it has its verdict back (struct confine_verdict: 40 bytes).
        byte* verdict = stackalloc byte[64];
        using var verdicts = new FileDescriptor(Libbpf.ObjectGet(Path.Join(ConfineKernel.PinRoot, BpfMapNames.ConfineVerdicts)));
        Assert.Equal(0, Libbpf.MapLookup(verdicts.Fd, &cookie, verdict));
        if (!stillAllowed)
            Assert.Contains(kernel.Denials(), d => d.Key.Port == AllowedPort && d.Key.What == (byte)ConfineWhat.Egress);
    }

    /// <summary>
    /// The trick an adversary pass found: a connected socket on a port the job also
    /// listens on, its verdict gone (the LRU), was taken for an accepted one and let be
    /// forever. Accepted is known by how a socket opened now: this one is judged again.
    /// </summary>
    [Fact]
    public unsafe void AListenerOnItsPortDoesNotMakeAConnectedSocketInbound()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        (Process probe, ulong cookie) = ConnectedWithoutItsVerdict(job, "trick");
        kernel.ReplaceSet(1, new ConfineRules(Policies.Over("[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"10.0.0.0/8:443\"]\n")).Sets[0]);
        probe.StandardInput.WriteLine("send");
        Assert.Equal("a", Result(probe).GetProperty("received").GetString());
        Assert.Contains(kernel.Denials(), d => d.Key.Port == AllowedPort && d.Key.What == (byte)ConfineWhat.Egress);
    }

    [Fact]
    public void AListChangesLiveWithoutAttachingAgain()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        string[] links = [.. Pins.Links(ConfineKernel.PinRoot)];
        // Every destination allowed now: the other port and address, UDP and IPv6 go.
        ConfineRules open = new(Policies.Over("[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"0.0.0.0/0\", \"::/0\"]\n"));
        kernel.ReplaceSet(1, open.Sets[0]);
        Process probe = StartProbe(job, "probe");
        TestCgroups.Go(probe);
        AssertFree(Result(probe));
        Assert.Equal(links, Pins.Links(ConfineKernel.PinRoot));
    }

    [Fact]
    public void ASigkilledSensorLeavesConfinementInForce()
    {
        string number = Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture);
        string job = cgroups.Make("job_" + number);
        // Running before the sensor starts: confined from what /proc shows at its start.
        Process probe = StartProbe(job, "probe");
        string policy = dir.File("confine.toml", $"[[confine]]\njobs = [\"slurm:{number}\"]\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\n");
        ulong id = Libc.InodeOf(cgroups.DirectoryOf(job))!.Value;
        using Process watch = Run.Start(Run.GuardExecutable, "watch", "--output", "json", "--type", "exec", "--policy", policy);
        try
        {
            Run.WaitFor(() => watch.HasExited || (ConfineKernel.Attached && PinnedConfinement.Confines(id)), "guard watch to confine the job", 30_000);
            if (watch.HasExited)
                Assert.Fail("guard watch exited: " + watch.StandardError.ReadToEnd());
            watch.Kill(); // SIGKILL: nothing is handed over or cleaned up
            Assert.True(watch.WaitForExit(10_000), "guard watch outlived its SIGKILL by 10 s");
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            SensorPins.RemoveDead(Guard.Sensor.Processes.ProcfsReader.IsRunning);
        }
        // The job's programs stay attached through their pins; a cgroup beside it runs none.
        Assert.Equal(JobPrograms, Pins.Links(ConfineKernel.CgroupLinks(id)).Count);
        Assert.Equal(JobPrograms, ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job)).Count);
        Assert.Empty(ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(cgroups.Make("beside"))));
        TestCgroups.Go(probe);
        AssertConfined(Result(probe));
    }

    [Fact]
    public void AChildCgroupAConfinedJobMakesIsStillConfined()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        // A cgroup the job makes below its own (a step, or a try to get out from under its programs): they run there too.
        string child = cgroups.Make(job[(cgroups.Top.Length + 1)..] + "/escape");
        Assert.Equal(ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job)).Order(), ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(child)).Order());
        Process probe = StartProbe(child, "probe");
        TestCgroups.Go(probe);
        AssertConfined(Result(probe));
    }

    [Fact]
    public void AProcessOutsideEveryJobRunsNoConfineProgramWhileNoTreeIsConfined()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        string outside = cgroups.Make("not-a-job");
        Assert.Equal(JobPrograms, ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job)).Count);
        Assert.Empty(ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(outside)));
        Assert.Empty(ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(cgroups.Top)));

        // A launcher tree confined: the tree instances run at the root (this test's cgroup) while it lives.
        Process tree = cgroups.StartIn(outside, "exec sleep 60");
        started.Add(tree);
        Assert.True(ProcfsReader.TryReadStat(tree.Id, out var stat));
        kernel.ConfineProcess(tree.Id, stat.StartTicks, rules.KernelJob(rules.Sections[0], 0));
        Assert.Equal(TreePrograms, ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(outside)).Count);
        Assert.Equal(JobPrograms + TreePrograms, ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job)).Count);
        tree.Kill();
        Assert.True(tree.WaitForExit(10_000), "the tree's shell outlived its SIGKILL by 10 s");
        Run.WaitFor(() => kernel.Processes().Count == 0, "the kernel to forget the tree at its exit", 10_000);
        Assert.Empty(kernel.ReleaseGone());
        Assert.Empty(ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(outside)));
        Assert.Equal(JobPrograms, ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job)).Count);
    }

    [Fact]
    public void AJobsLinksArePinnedUntilItsCgroupGoesOrDetachAll()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = ConfinedSlurmJob(kernel, rules);
        ulong id = Libc.InodeOf(cgroups.DirectoryOf(job))!.Value;
        Assert.Equal(JobPrograms, Pins.Links(ConfineKernel.CgroupLinks(id)).Count);

        // A job cgroup that goes: its entry and its links' pins go at the next sweep.
        string ended = ConfinedSlurmJob(kernel, rules);
        ulong endedId = Libc.InodeOf(cgroups.DirectoryOf(ended))!.Value;
        Directory.Delete(cgroups.DirectoryOf(ended));
        Assert.Equal([endedId], kernel.ReleaseGone());
        Assert.False(Directory.Exists(ConfineKernel.CgroupLinks(endedId)));
        Assert.Null(kernel.JobOfCgroup(endedId));
        Assert.NotNull(kernel.JobOfCgroup(id));

        // guard detach --all signals every sensor on the host: only when none but ours runs.
        IReadOnlyList<int> holders = EmergencyDetach.Holders();
        Assert.True(holders.Count == 0, $"a Guard sensor runs on this host ({string.Join(", ", holders)}): not running detach --all");
        List<uint> running = ConfineKernel.ProgramsRunIn(cgroups.DirectoryOf(job));
        Assert.Equal(JobPrograms, running.Count);
        Assert.Equal(0, Guard.Cli.GuardCli.Run(["detach", "--all"], new TestConsole()));
        Assert.False(Directory.Exists(ConfineKernel.PinRoot), "confine pins are left");
        Assert.Empty(ConfineKernel.EffectivePrograms(cgroups.DirectoryOf(job)).Intersect(running));
        Process probe = StartProbe(job, "probe");
        TestCgroups.Go(probe);
        AssertFree(Result(probe));
    }

    [Fact]
    public void ANewJobIsConfinedWithinMillisecondsOfItsFirstExec()
    {
        string first = Random.Shared.Next(100000, 499999).ToString(CultureInfo.InvariantCulture);
        string number = Random.Shared.Next(500000, 999999).ToString(CultureInfo.InvariantCulture);
        string policy = dir.File("window.toml", $"[[confine]]\njobs = [\"slurm:{first}\", \"slurm:{number}\"]\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\n");
        string script = dir.File("window.py", Window);
        // A job running before the sensor: confined at its start, which says the sensor is up.
        string running = cgroups.Make("job_" + first);
        Process before = cgroups.StartIn(running, "exec sleep 60");
        started.Add(before);
        using Process watch = Run.Start(Run.GuardExecutable, "watch", "--output", "json", "--type", "alert", "--policy", policy);
        try
        {
            Run.WaitFor(() => watch.HasExited || (ConfineKernel.Attached && PinnedConfinement.Confines(Libc.InodeOf(cgroups.DirectoryOf(running))!.Value)), "guard watch to confine the running job", 30_000);
            Assert.False(watch.HasExited, "guard watch exited: " + (watch.HasExited ? watch.StandardError.ReadToEnd() : ""));
            Thread.Sleep(1000); // its event loop running
            // The job cgroup is made after the sensor started: confined at its first exec (date's).
            string job = cgroups.Make("job_" + number);
            Process probe = cgroups.StartIn(job, $"export T0=$(date +%s%N); exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script}'");
            started.Add(probe);
            TestCgroups.Go(probe);
            JsonElement r = Result(probe);
            // When the connect program's link was pinned (bpffs keeps the time), after the job's first exec.
            string pin = Path.Join(ConfineKernel.CgroupLinks(Libc.InodeOf(cgroups.DirectoryOf(job))!.Value), BpfProgramNames.ConfineConnect4);
            double attachedMs = (((File.GetLastWriteTimeUtc(pin) - DateTime.UnixEpoch).Ticks * 100.0) - r.GetProperty("t0").GetInt64()) / 1e6;
            output.WriteLine($"attached {attachedMs:F0} ms after the job's first exec; went {r.GetProperty("went")}, last allowed {r.GetProperty("last_allowed_ms")} ms, first denied {r.GetProperty("first_denied_ms")} ms after it");
            Assert.True(r.GetProperty("first_denied_ms").ValueKind == JsonValueKind.Number, "the new job's connects were never denied: " + r);
            Assert.InRange(r.GetProperty("first_denied_ms").GetDouble(), 0, 2000);
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            watch.WaitForExit(10_000);
            SensorPins.RemoveDead(ProcfsReader.IsRunning);
        }
    }


    public void Dispose()
    {
        foreach (Process p in started)
        {
            if (!p.HasExited)
                p.Kill(entireProcessTree: true);
            p.Dispose();
        }
        try
        {
            cgroups.Dispose();
        }
        finally
        {
            ConfineKernel.Remove();
            dir.Dispose();
        }
    }
}
