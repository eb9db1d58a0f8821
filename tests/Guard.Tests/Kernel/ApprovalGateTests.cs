using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Kernel;

/// <summary>
/// The approval gate (mode = "ask") end to end: a real <c>guard watch</c> with an
/// ask section confines a stand-in Slurm job cgroup (job_N under this test's
/// cgroup) whose probe runs in a network namespace of its own (loopback only);
/// the test answers as a person would, with <c>guard approvals</c>,
/// <c>guard approve</c> and <c>guard deny</c>, and reads the watch's ECS lines.
/// Every program, pin, cgroup and file it made is removed after.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ApprovalGateTests : IDisposable
{
    private const int Eperm = 1;

    /// <summary>Listens on 5001-5004 in its netns; then per stdin line "connect PORT" or "exec PATH ARGS...", prints the errno (0: it went) or the exit code (-9: killed).</summary>
    private const string Probe = """
        import socket, subprocess, sys, threading
        def serve(port):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(64)
            while True:
                s.accept()[0].close()
        for p in (5001, 5002, 5003, 5004):
            threading.Thread(target=serve, args=(p,), daemon=True).start()
        print("ready", flush=True)
        for line in sys.stdin:
            what, *rest = line.split()
            if what == "connect":
                try:
                    c = socket.create_connection(("127.0.0.1", int(rest[0])), timeout=2)
                    c.close()
                    print(0, flush=True)
                except OSError as e:
                    print(e.errno or -1, flush=True)
            else:
                print(subprocess.run(rest).returncode, flush=True)
        """;

    private readonly TestCgroups cgroups = new();
    private readonly TempDir dir = new();
    private readonly List<Process> started = [];
    private readonly ConcurrentQueue<string> watchLines = new();
    private Process? watch;

    private readonly ITestOutputHelper output;

    public ApprovalGateTests(ITestOutputHelper output)
    {
        KernelRequirements.Check();
        this.output = output;
    }

    [Fact]
    public void AConnectAskedForIsApprovedOnceAndDeniedOrExpiredRequestsLetNothingThrough()
    {
        (string number, Process probe) = StartJob();
        StartWatch($"[[confine]]\nname = \"ask-test\"\njobs = [\"slurm:{number}\"]\nmode = \"ask\"\nask_expiry_seconds = 6\negress.allow = [\"tcp://127.0.0.1:5001\"]\n", number);

        // No answer from a CLI that names no request: one line, exit 1, nothing written.
        (int unknownExit, string unknownOut, string unknownErr) = Cli("approve", "aaaaaaaaaaaa");
        Assert.Equal((1, "", "guard: no pending request aaaaaaaaaaaa (unknown, answered already, or expired)\n"), (unknownExit, unknownOut, unknownErr));
        (int badExit, _, string badErr) = Cli("deny", "../../etc/x");
        Assert.Equal(1, badExit);
        Assert.Equal("guard: ../../etc/x is not a request id (12 characters, a-z and 2-7, as guard approvals lists them)\n", badErr);

        Assert.Equal("0", Ask(probe, "connect 5001")); // on the section's allow list
        // Denied meanwhile (EPERM), and raised as a request naming the job, the process and its lineage.
        Assert.Equal(Eperm.ToString(CultureInfo.InvariantCulture), Ask(probe, "connect 5002"));
        var clock = Stopwatch.StartNew();
        JsonElement request = PendingFor("127.0.0.1", 5002);
        output.WriteLine($"request listed {clock.ElapsedMilliseconds} ms after the denied connect returned");
        string id = request.GetProperty("id").GetString()!;
        Assert.True(ApprovalRequest.IsId(id), id);
        Assert.Equal($"slurm:{number}", request.GetProperty("job").GetString());
        Assert.Equal("ask-test", request.GetProperty("section").GetString());
        Assert.Equal("tcp", request.GetProperty("destination").GetProperty("transport").GetString());
        Assert.Equal(ProbePid(probe), request.GetProperty("process").GetProperty("pid").GetInt32());
        Assert.NotEqual(0, request.GetProperty("process").GetProperty("lineage").GetArrayLength());
        // A retry while it waits: denied again, counted, no second request.
        Assert.Equal("1", Ask(probe, "connect 5002"));
        Run.WaitFor(() => Pending().Single(r => Port(r) == 5002).GetProperty("count").GetUInt64() >= 2, "the retry to be counted on the request", 5000);
        Assert.Single(Pending(), r => Port(r) == 5002);
        (int listExit, string table, _) = Cli("approvals");
        Assert.Equal(0, listExit);
        Assert.Contains(id, table, StringComparison.Ordinal);
        Assert.Contains("tcp 127.0.0.1:5002", table, StringComparison.Ordinal);

        // Approved: the retried connect goes at once; only that job, that destination.
        clock.Restart();
        (int approveExit, string approved, string approveErr) = Cli("approve", id, "--for", "1h");
        output.WriteLine($"guard approve answered in {clock.ElapsedMilliseconds} ms");
        Assert.True(approveExit == 0, approveErr);
        Assert.StartsWith($"guard: approved {id}: tcp 127.0.0.1:5002 for job slurm:{number} for 1 h", approved, StringComparison.Ordinal);
        Assert.Equal("0", Ask(probe, "connect 5002"));
        Assert.Equal("1", Ask(probe, "connect 5003"));
        // Answered already: a second answer is refused in one line.
        Assert.Equal(1, Cli("deny", id).Exit);

        // Denied: closed, the connect stays refused, and its retries raise nothing new.
        string denyId = PendingFor("127.0.0.1", 5003).GetProperty("id").GetString()!;
        (int denyExit, string denied, _) = Cli("deny", denyId);
        Assert.Equal(0, denyExit);
        Assert.StartsWith($"guard: denied {denyId}", denied, StringComparison.Ordinal);
        Assert.Equal("1", Ask(probe, "connect 5003"));
        Thread.Sleep(500);
        Assert.DoesNotContain(Pending(), r => Port(r) == 5003);

        // Unanswered: it expires (ask_expiry_seconds = 6) and approving it then does nothing.
        Assert.Equal("1", Ask(probe, "connect 5004"));
        string expiringId = PendingFor("127.0.0.1", 5004).GetProperty("id").GetString()!;
        Run.WaitFor(() => !Pending().Any(r => r.GetProperty("id").GetString() == expiringId), "the request to expire", 12_000);
        Assert.Equal(1, Cli("approve", expiringId).Exit);
        Assert.Equal("1", Ask(probe, "connect 5004"));

        // Every request and decision is an ECS line of the watch, each decision with the uid that made it.
        StopWatch();
        List<JsonElement> lines = [.. watchLines.Select(l => JsonDocument.Parse(l).RootElement)];
        JsonElement raised = Assert.Single(lines, l => Action(l) == "confine-ask" && Approval(l)?.GetProperty("id").GetString() == id);
        Assert.Equal("denied", raised.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("network", raised.GetProperty("event").GetProperty("category")[0].GetString());
        Assert.Equal(5002, raised.GetProperty("destination").GetProperty("port").GetInt32());
        JsonElement approveLine = Assert.Single(lines, l => Action(l) == "approve");
        Assert.Equal("0", approveLine.GetProperty("user").GetProperty("id").GetString());
        Assert.Equal("approved", Approval(approveLine)!.Value.GetProperty("decision").GetString());
        Assert.Equal(0, Approval(approveLine)!.Value.GetProperty("decided_by_uid").GetInt32());
        Assert.Equal("denied", Approval(Assert.Single(lines, l => Action(l) == "deny"))!.Value.GetProperty("decision").GetString());
        Assert.Contains(lines, l => Action(l) == "approval-expired" && Approval(l)?.GetProperty("id").GetString() == expiringId);
        // The approval ended with the sensor, and is gone from the kernel.
        Assert.Contains(lines, l => Action(l) == "approval-ended" && Approval(l)?.GetProperty("id").GetString() == id);
        using ConfineKernel? kernel = ConfineKernel.OpenPinned();
        Assert.NotNull(kernel);
        Assert.Empty(kernel.ApprovedDestinations());
        Assert.Equal("1", Ask(probe, "connect 5002"));
    }

    [Fact]
    public void AnExecAskedForIsKilledThenRunsOnceApproved()
    {
        string program = dir.ExecutableCopy("/bin/true", "helper"); // in a world-writable tree (/tmp)
        (string number, Process probe) = StartJob();
        StartWatch($"[[confine]]\nname = \"ask-exec\"\njobs = [\"slurm:{number}\"]\nmode = \"ask\"\n[confine.exec]\ndeny = [\"world-writable\"]\n", number);

        Assert.Equal("-9", Ask(probe, $"exec {program}")); // killed before its first instruction
        JsonElement request = Run.WaitForValue(() => Pending().FirstOrDefault(r => r.GetProperty("kind").GetString() == "program") is { ValueKind: JsonValueKind.Object } r ? r : (JsonElement?)null, "the exec's request", 5000);
        Assert.Equal(program, request.GetProperty("program").GetProperty("path").GetString());
        using (FileStream f = File.OpenRead(program))
            Assert.Equal(Sha256.HexOf(f), request.GetProperty("program").GetProperty("sha256").GetString());
        Assert.Equal($"slurm:{number}", request.GetProperty("job").GetString());
        string id = request.GetProperty("id").GetString()!;
        Assert.Equal("-9", Ask(probe, $"exec {program}")); // a retry: killed, counted, no second request
        Run.WaitFor(() => Pending().Single(r => r.GetProperty("kind").GetString() == "program").GetProperty("count").GetUInt64() >= 2, "the retry to be counted", 5000);

        (int exit, string said, string err) = Cli("approve", id);
        Assert.True(exit == 0, err);
        Assert.Contains("for the job's life", said, StringComparison.Ordinal);
        Assert.Equal("0", Ask(probe, $"exec {program}"));
        // Another program of the same class is still killed: the approval is of that file alone.
        string other = dir.ExecutableCopy("/bin/true", "other");
        Assert.Equal("-9", Ask(probe, $"exec {other}"));

        StopWatch();
        Assert.Contains(watchLines, l => l.Contains("\"confine-ask\"", StringComparison.Ordinal) && l.Contains(id, StringComparison.Ordinal));
    }

    [Fact]
    public void AnApprovedProgramRewrittenInPlaceIsKilledOnceHashedAndItsApprovalEnds()
    {
        string program = dir.ExecutableCopy("/bin/true", "helper");
        (string number, Process probe) = StartJob();
        StartWatch($"[[confine]]\nname = \"ask-exec\"\njobs = [\"slurm:{number}\"]\nmode = \"ask\"\n[confine.exec]\ndeny = [\"world-writable\"]\n", number);
        Assert.Equal("-9", Ask(probe, $"exec {program}"));
        string id = Run.WaitForValue(() => Pending().FirstOrDefault(r => r.GetProperty("kind").GetString() == "program") is { ValueKind: JsonValueKind.Object } r ? r : (JsonElement?)null, "the exec's request", 5000)
            .GetProperty("id").GetString()!;
        Assert.Equal(0, Cli("approve", id).Exit);
        Assert.Equal("0", Ask(probe, $"exec {program}"));

        // Same inode, other bytes; past a tick of the file clock, so the change time is surely before the exec.
        using (var f = new FileStream(program, FileMode.Open, FileAccess.Write))
        {
            f.SetLength(0);
            f.Write(File.ReadAllBytes("/bin/sleep"));
        }
        Thread.Sleep(100);
        Assert.Equal("-9", Ask(probe, $"exec {program} 10"));
        Run.WaitFor(() => !Approved().Any(r => r.GetProperty("id").GetString() == id), "the approval of the rewritten file to end", 5000);
        Assert.Equal("-9", Ask(probe, $"exec {program} 10")); // killed by the kernel at exec again
        StopWatch();
        Assert.Contains(watchLines, l => l.Contains("\"approval-ended\"", StringComparison.Ordinal) && l.Contains("other bytes", StringComparison.Ordinal));
    }

    [Fact]
    public void WithNoSensorRunningEachCommandSaysSoInOneLine()
    {
        foreach (string[] args in new[] { new[] { "approvals" }, ["approve", "aaaaaaaaaaaa"], ["deny", "aaaaaaaaaaaa"] })
        {
            (int exit, string stdout, string stderr) = Cli(args);
            Assert.Equal((1, ""), (exit, stdout));
            Assert.Equal("guard: no guard watch runs on this host: approval requests are raised and answered by the running sensor\n", stderr);
        }
    }

    /// <summary>The stand-in Slurm job cgroup and its probe (running, ready), started before the watch: confined from what /proc shows at the watch's start.</summary>
    [Fact]
    public void OneJobFloodingDenialsHoldsAtMostItsShareOfRequests()
    {
        (string number, Process probe) = StartJob();
        StartWatch($"[[confine]]\nname = \"ask-test\"\njobs = [\"slurm:{number}\"]\nmode = \"ask\"\negress.allow = [\"tcp://127.0.0.1:5001\"]\n", number);
        int flood = Approvals.JobCapacity + 36;
        for (int port = 6000; port < 6000 + flood; port++)
            Assert.Equal(Eperm.ToString(CultureInfo.InvariantCulture), Ask(probe, $"connect {port}"));
        Run.WaitFor(() => Pending().Count >= Approvals.JobCapacity, "the job's requests to be raised", 10_000);
        Thread.Sleep(500); // two more scans: nothing past the job's share
        Assert.Equal(Approvals.JobCapacity, Pending().Count);
    }

    private (string Number, Process Probe) StartJob()
    {
        string number = Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture);
        string job = cgroups.Make("job_" + number);
        string script = dir.File("probe.py", Probe);
        Process probe = cgroups.StartIn(job, $"exec unshare --net /bin/sh -c 'ip link set lo up; exec {Run.Python} {script}'");
        started.Add(probe);
        TestCgroups.Go(probe);
        Assert.Equal("ready", LineWithin(probe));
        return (number, probe);
    }

    private void StartWatch(string policyText, string number)
    {
        string policy = dir.File("ask.toml", policyText);
        ulong id = Libc.InodeOf(cgroups.DirectoryOf($"{cgroups.Top}/job_{number}"))!.Value;
        watch = Run.Start(Run.GuardExecutable, "watch", "--output", "json", "--type", "confine", "--policy", policy);
        watch.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
                watchLines.Enqueue(line);
        };
        watch.BeginOutputReadLine();
        Run.WaitFor(() => watch.HasExited || (ConfineKernel.Attached && PinnedConfinement.Confines(id) && File.Exists(ApprovalChannel.ListFile)), "guard watch to confine the job", 30_000);
        if (watch.HasExited)
            Assert.Fail("guard watch exited: " + watch.StandardError.ReadToEnd());
    }

    /// <summary>Stops the watch as systemd would (SIGTERM) and waits for its last lines.</summary>
    private void StopWatch()
    {
        Assert.NotNull(watch);
        Run.Complete("/bin/kill", "-TERM", watch.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(watch.WaitForExit(20_000), "guard watch did not stop within 20 s of SIGTERM");
        watch.WaitForExit(); // the output's last lines are read
    }


    private static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var console = new TestConsole();
        int exit = GuardCli.Run(args, console);
        return (exit, console.Out.ToString()!, console.ErrorText);
    }

    private static List<JsonElement> Pending()
    {
        (int exit, string stdout, string stderr) = Cli("approvals", "-o", "json");
        Assert.True(exit == 0, stderr);
        return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).Where(r => r.GetProperty("state").GetString() == "pending")];
    }

    private static List<JsonElement> Approved()
    {
        (int exit, string stdout, string stderr) = Cli("approvals", "-o", "json");
        Assert.True(exit == 0, stderr);
        return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).Where(r => r.GetProperty("state").GetString() == "approved")];
    }

    private static JsonElement PendingFor(string ip, int port) =>
        Run.WaitForValue(() => Pending().FirstOrDefault(r => r.TryGetProperty("destination", out JsonElement d) && d.GetProperty("ip").GetString() == ip && d.GetProperty("port").GetInt32() == port) is { ValueKind: JsonValueKind.Object } r ? r : (JsonElement?)null,
            $"a pending request for {ip}:{port}", 5000);

    private static int Port(JsonElement r) => r.TryGetProperty("destination", out JsonElement d) ? d.GetProperty("port").GetInt32() : 0;

    private static string? Action(JsonElement line) => line.GetProperty("event").GetProperty("action").GetString();

    private static JsonElement? Approval(JsonElement line) =>
        line.TryGetProperty("guard", out JsonElement g) && g.TryGetProperty("approval", out JsonElement a) ? a : null;

    /// <summary>The probe's python: the shell exec'd unshare, which exec'd sh, which exec'd python, all one pid.</summary>
    private static int ProbePid(Process probe) => probe.Id;

    private static string Ask(Process probe, string command)
    {
        probe.StandardInput.WriteLine(command);
        return LineWithin(probe) ?? throw new Xunit.Sdk.XunitException($"the probe said nothing to {command}: {probe.StandardError.ReadToEnd()}");
    }

    private static string? LineWithin(Process probe)
    {
        Task<string?> read = probe.StandardOutput.ReadLineAsync();
        Assert.True(read.Wait(30_000), "the probe did not answer within 30 s");
        return read.Result;
    }

    public void Dispose()
    {
        try
        {
            if (watch is { HasExited: false })
                watch.Kill();
            watch?.Dispose();
            foreach (Process p in started)
            {
                if (!p.HasExited)
                    p.Kill(entireProcessTree: true);
                p.Dispose();
            }
            cgroups.Dispose();
        }
        finally
        {
            ConfineKernel.Remove();
            EnforcementKernel.Remove(); // what the watch handed over on its way out
            SensorPins.RemoveDead(static (_, _) => false);
            ApprovalChannel.RemoveList();
            dir.Dispose();
        }
    }
}
