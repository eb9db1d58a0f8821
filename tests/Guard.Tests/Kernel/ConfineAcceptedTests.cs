using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Kernel;

/// <summary>
/// A confined job's accepted sockets, known by how they opened: the kernel
/// marks a listener's child as it is established (sockops), the sensor the
/// ones the job accepted before it was confined (sock_diag); nothing is
/// guessed from a listener at egress. Each job is a python script in a
/// network namespace of its own (loopback only), in a stand-in Slurm job
/// cgroup under this test's cgroup; its peer is a child it forks and moves
/// to a cgroup outside every job, so only the job's end is judged.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ConfineAcceptedTests : IDisposable
{
    private const int AllowedPort = 5001;

    /// <summary>
    /// argv: accept PROCS | self. accept: listens on 5002; a child moves itself to the cgroup
    /// whose cgroup.procs is PROCS, connects and echoes; the job pings the child on the
    /// accepted socket every 5 ms (a 5 s wait for each echo), says "accepted COOKIE", and at
    /// each line from stdin says how many pings came back, the longest gap between two, and
    /// why they stopped. self: connects 127.0.0.1:5001 to itself (a simultaneous open), says
    /// "connected COOKIE", and on a line from stdin sends again and says what came back.
    /// </summary>
    private const string Script = """
        import json, os, socket, sys, threading, time
        if sys.argv[1] == "self":
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 5001))
            s.connect(("127.0.0.1", 5001))
            s.sendall(b"a")
            got = s.recv(1)
            print("connected", int.from_bytes(s.getsockopt(socket.SOL_SOCKET, 57, 8), "little"), flush=True)
            sys.stdin.readline()
            s.sendall(b"b")
            s.settimeout(1.5)
            try:
                got += s.recv(1)
            except OSError:
                pass
            print(json.dumps({"received": got.decode()}), flush=True)
            sys.exit(0)
        l = socket.socket()
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(("127.0.0.1", 5002))
        l.listen(4)
        if os.fork() == 0:
            with open(sys.argv[2], "w") as f:
                f.write(str(os.getpid()))
            l.close()
            c = socket.create_connection(("127.0.0.1", 5002))
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                b = c.recv(64)
                if not b:
                    os._exit(0)
                c.sendall(b)
        a, _ = l.accept()
        a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        a.settimeout(5)
        state = {"pings": 0, "gap": 0.0, "last": time.monotonic(), "failed": None}
        lock = threading.Lock()
        def ping():
            while True:
                try:
                    a.sendall(b"p")
                    if a.recv(1) != b"p":
                        raise OSError("no echo")
                except OSError as e:
                    with lock:
                        state["failed"] = str(e)
                    return
                now = time.monotonic()
                with lock:
                    state["pings"] += 1
                    state["gap"] = max(state["gap"], now - state["last"])
                    state["last"] = now
                time.sleep(0.005)
        threading.Thread(target=ping, daemon=True).start()
        print("accepted", int.from_bytes(a.getsockopt(socket.SOL_SOCKET, 57, 8), "little"), flush=True)
        for line in sys.stdin:
            with lock:
                print(json.dumps({"pings": state["pings"], "max_gap_ms": state["gap"] * 1000, "failed": state["failed"]}), flush=True)
        """;

    private readonly TestCgroups cgroups = new();
    private readonly TempDir dir = new();
    private readonly List<Process> started = [];
    private readonly ITestOutputHelper output;

    public ConfineAcceptedTests(ITestOutputHelper output)
    {
        KernelRequirements.Check();
        this.output = output;
    }

    private static ConfineRules Rules() =>
        new(Policies.Over($"[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\n"));

    /// <summary>Attaches confinement at this test's cgroup and writes the section's rules.</summary>
    private ConfineKernel Attach(ConfineRules rules)
    {
        ConfineKernel kernel = ConfineKernel.Ensure(cgroups.DirectoryOf(cgroups.Top));
        kernel.ReplaceSet(1, rules.Sets[0]);
        return kernel;
    }

    private string MakeJob(string number) => cgroups.Make("job_" + number);

    private static string Number() => Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture);

    private static ulong IdOf(TestCgroups cgroups, string cgroup) => Libc.InodeOf(cgroups.DirectoryOf(cgroup)) ?? throw new Xunit.Sdk.XunitException($"cgroup {cgroup} has no inode");

    /// <summary>Confines job cgroup <paramref name="job"/> with its own rule set, as the sensor does, but marks nothing it accepted before.</summary>
    private static void ConfineOnly(ConfineKernel kernel, ConfineRules rules, TestCgroups cgroups, string job)
    {
        ulong id = IdOf(cgroups, job);
        kernel.ConfineCgroup(id, Cgroupfs.LevelOf(job), rules.KernelJob(rules.Sections[0], ConfineRules.CgroupJobSet(id)));
    }

    /// <summary>The script in its own netns, started from a shell in <paramref name="cgroupPath"/>, told to go.</summary>
    private Process Start(string cgroupPath, string args)
    {
        string script = dir.File("accepted.py", Script);
        Process shell = cgroups.StartIn(cgroupPath, $"exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script} {args}'");
        started.Add(shell);
        TestCgroups.Go(shell);
        return shell;
    }

    /// <summary>Starts the accepting job in <paramref name="job"/>, its peer moving to a cgroup outside every job; returns it and the accepted socket's cookie.</summary>
    private (Process Job, ulong Cookie) StartAccepting(string job)
    {
        string outside = cgroups.Make("not-a-job");
        Process p = Start(job, $"accept {Path.Join(cgroups.DirectoryOf(outside), "cgroup.procs")}");
        string? line = LineWithin(p);
        if (line is null || !line.StartsWith("accepted ", StringComparison.Ordinal))
            Assert.Fail("the job did not accept: " + line + StderrOf(p));
        return (p, ulong.Parse(line["accepted ".Length..], CultureInfo.InvariantCulture));
    }

    /// <summary>What the pings did so far: how many came back, the longest gap (ms), why they stopped (null: they go on).</summary>
    private static (int Pings, double MaxGapMs, string? Failed) Pings(Process job)
    {
        job.StandardInput.WriteLine("say");
        string? line = LineWithin(job);
        if (line is null)
            Assert.Fail("the job said nothing: " + StderrOf(job));
        JsonElement r = JsonDocument.Parse(line).RootElement;
        return (r.GetProperty("pings").GetInt32(), r.GetProperty("max_gap_ms").GetDouble(), r.GetProperty("failed").ValueKind == JsonValueKind.String ? r.GetProperty("failed").GetString() : null);
    }

    /// <summary>The script's next line; bounded, so a script that never answers fails the test instead of holding the run.</summary>
    private static string? LineWithin(Process p)
    {
        Task<string?> read = p.StandardOutput.ReadLineAsync();
        Assert.True(read.Wait(30_000), "the script did not answer within 30 s");
        return read.Result;
    }

    /// <summary>What a script wrote to stderr, once it ended (killed here first: it may wait on its stdin).</summary>
    private static string StderrOf(Process p)
    {
        if (!p.HasExited)
            p.Kill(entireProcessTree: true);
        return p.StandardError.ReadToEnd();
    }

    private static unsafe FileDescriptor Verdicts()
    {
        var verdicts = new FileDescriptor(Libbpf.ObjectGet(Path.Join(ConfineKernel.PinRoot, BpfMapNames.ConfineVerdicts)));
        Assert.True(verdicts.Fd >= 0, "no pinned confine_verdicts");
        return verdicts;
    }

    [Fact]
    public unsafe void ASocketAcceptedWhileConfinedPassesBothWaysWithNoVerdict()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = MakeJob(Number());
        ConfineOnly(kernel, rules, cgroups, job);
        (Process p, ulong cookie) = StartAccepting(job);
        Thread.Sleep(300);
        (int before, _, string? failed) = Pings(p);
        Assert.True(before > 0 && failed is null, $"the accepted socket's pings did not go: {before}, {failed}");
        // Its peer (127.0.0.1, an ephemeral port) is no destination the job may reach, and it never had an
        // entry in the verdicts' LRU: marked in its storage at its birth, which nothing evicts.
        using FileDescriptor verdicts = Verdicts();
        Assert.NotEqual(0, Libbpf.MapDelete(verdicts.Fd, &cookie));
        // The lists change (every connected socket is judged again): it still goes.
        kernel.ReplaceSet(1, new ConfineRules(Policies.Over("[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"10.0.0.0/8:443\"]\n")).Sets[0]);
        Thread.Sleep(500);
        (int after, double gap, failed) = Pings(p);
        output.WriteLine($"pings {before} then {after}, longest gap {gap:F1} ms");
        Assert.True(after > before + 10 && failed is null, $"the accepted socket stopped after the lists changed: {before} then {after}, {failed}");
        Assert.DoesNotContain(kernel.Denials(), d => d.Key.What == (byte)ConfineWhat.Egress);
    }

    /// <summary>
    /// A socket that connect()ed and met a SYN (here: a connect to itself) is established
    /// through the passive callback too; it is no listener's child and is not marked: judged
    /// from its peer once its verdict is gone and the peer denied.
    /// </summary>
    [Fact]
    public unsafe void ASimultaneousOpenIsNoAcceptedSocket()
    {
        ConfineRules rules = Rules();
        using ConfineKernel kernel = Attach(rules);
        string job = MakeJob(Number());
        ConfineOnly(kernel, rules, cgroups, job);
        Process p = Start(job, "self");
        string? line = LineWithin(p);
        if (line is null || !line.StartsWith("connected ", StringComparison.Ordinal))
            Assert.Fail("the job did not connect to itself: " + line + StderrOf(p));
        ulong cookie = ulong.Parse(line["connected ".Length..], CultureInfo.InvariantCulture);
        using FileDescriptor verdicts = Verdicts();
        Assert.Equal(0, Libbpf.MapDelete(verdicts.Fd, &cookie));
        kernel.ReplaceSet(1, new ConfineRules(Policies.Over("[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"10.0.0.0/8:443\"]\n")).Sets[0]);
        p.StandardInput.WriteLine("send");
        line = LineWithin(p);
        if (line is null)
            Assert.Fail("the job said nothing: " + StderrOf(p));
        Assert.Equal("a", JsonDocument.Parse(line).RootElement.GetProperty("received").GetString());
        Assert.Contains(kernel.Denials(), d => d.Key.Port == AllowedPort && d.Key.What == (byte)ConfineWhat.Egress);
    }

    /// <summary>How a job that accepted a socket before it was confined is then confined.</summary>
    public enum Confining
    {
        /// <summary>Its programs attached, nothing marked: the socket is judged as outbound (the control).</summary>
        Unmarked,

        /// <summary>Its programs attached, then what the sensor does next: its accepted sockets found and marked, timed.</summary>
        Marked,

        /// <summary>By a guard watch that finds the job running at its start.</summary>
        Sensor,
    }

    [Theory]
    [InlineData(Confining.Unmarked)]
    [InlineData(Confining.Marked)]
    [InlineData(Confining.Sensor)]
    public void ASocketAcceptedBeforeTheJobWasConfinedKeepsWorkingOnceTheSensorConfinesIt(Confining how)
    {
        string number = Number();
        string job = MakeJob(number);
        ulong id = IdOf(cgroups, job);
        (Process p, _) = StartAccepting(job);
        Thread.Sleep(300);
        (int before, _, string? failed) = Pings(p);
        Assert.True(before > 0 && failed is null, $"the accepted socket's pings did not go before confinement: {before}, {failed}");
        if (how == Confining.Sensor)
            ConfineBySensor(number, id);
        else
        {
            ConfineRules rules = Rules();
            using ConfineKernel kernel = Attach(rules);
            ConfineOnly(kernel, rules, cgroups, job);
            if (how == Confining.Marked)
            {
                var shortfalls = new List<string>();
                var clock = Stopwatch.StartNew();
                List<ulong> marked = AcceptedBeforeConfinement.Mark(kernel, cgroups.DirectoryOf(job), shortfalls);
                output.WriteLine($"attached to marked: {clock.Elapsed.TotalMilliseconds:F1} ms, {marked.Count} socket(s) marked");
                Assert.Empty(shortfalls);
                Assert.Single(marked);
            }
        }
        Thread.Sleep(1500);
        (int confined, _, _) = Pings(p);
        Thread.Sleep(1000);
        (int later, double gap, failed) = Pings(p);
        using (ConfineKernel kernel = ConfineKernel.OpenPinned() ?? throw new Xunit.Sdk.XunitException("confinement is not pinned"))
        {
            long dropped = kernel.Denials().Where(d => d.Key.What == (byte)ConfineWhat.Egress).Sum(d => (long)d.Value.Count);
            output.WriteLine($"{how}: pings {before} before, {confined} 1.5 s after confinement, {later} 1 s later; longest gap {gap:F1} ms; {dropped} packet(s) dropped; {failed}");
            if (how == Confining.Unmarked)
            {
                // The control: unmarked, the socket is judged from its peer, denied, and stalls.
                Assert.True(later == confined, $"an unmarked accepted socket still went: {confined} then {later}");
                Assert.True(dropped > 0, "nothing was dropped at egress");
                return;
            }
        }
        Assert.True(later > confined + 10 && failed is null, $"the socket accepted before confinement stopped: {confined} then {later}, {failed}");
        // A packet dropped between attach and mark is sent again after an RTO (200 ms at least): the gap bounds the window's cost.
        Assert.InRange(gap, 0, 1000);
    }

    /// <summary>Runs guard watch with a policy confining slurm:<paramref name="number"/> until it confined cgroup <paramref name="id"/>, then SIGKILLs it (confinement stays pinned).</summary>
    private void ConfineBySensor(string number, ulong id)
    {
        string policy = dir.File("confine.toml", $"[[confine]]\njobs = [\"slurm:{number}\"]\negress.allow = [\"tcp://127.0.0.1:{AllowedPort}\"]\n");
        using Process watch = Run.Start(Run.GuardExecutable, "watch", "--output", "json", "--type", "exec", "--policy", policy);
        try
        {
            Run.WaitFor(() => watch.HasExited || (ConfineKernel.Attached && PinnedConfinement.Confines(id)), "guard watch to confine the job", 30_000);
            if (watch.HasExited)
                Assert.Fail("guard watch exited: " + watch.StandardError.ReadToEnd());
            // Confined at its start, with the job's accepted sockets marked before its first event is read.
            Thread.Sleep(1000);
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            watch.WaitForExit(10_000);
            Task<string> errors = watch.StandardError.ReadToEndAsync();
            if (errors.Wait(5000))
                output.WriteLine("guard watch stderr: " + errors.Result);
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
