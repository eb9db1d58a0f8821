using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// `guard quarantine`, `guard release`, `guard status` and `guard kill` on a
/// held job, against the real kernel. The held "job" is a python process of
/// this test that, each time it is told to, tries what a miner would: send on
/// a connection it had, open a new one, open the stand-in GPU (/dev/full as
/// 1:7), fork a child. The test plays the escape: it continues (with the
/// kernel's answer to SIGCONT taken away; HoldEscapeTests tries that answer)
/// or thaws the held process itself, so every deny program is seen to hold on its own.
/// Traffic stays on 127.0.0.1 with a listener of this test.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class QuarantineTests : IDisposable
{
    private const string StandInGpu = "1:7";
    private const int Eperm = 1;

    private const string Job = """
        import json, os, socket, sys
        port, marker = int(sys.argv[1]), sys.argv[2]
        sys.stdin.readline()
        held = socket.create_connection(("127.0.0.1", port))
        held.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        held.sendall(b"before;")
        print("ready", flush=True)
        def attempt(tag):
            r = {}
            try:
                held.sendall(tag.encode() + b";")
                r["send"] = 0
            except OSError as e:
                r["send"] = e.errno
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                r["connect"] = 0
            except OSError as e:
                r["connect"] = e.errno
            try:
                os.close(os.open("/dev/full", os.O_WRONLY))
                r["gpu"] = 0
            except OSError as e:
                r["gpu"] = e.errno
            child = os.fork()
            if child == 0:
                open(marker + "." + tag, "w").close()
                os._exit(0)
            r["child"] = child
            return r
        for tag in ("held", "released"):
            sys.stdin.readline()
            print(json.dumps(attempt(tag)), flush=True)
        sys.stdin.readline()
        """;

    private readonly TempDir dir = new();
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly MemoryStream received = new();
    private readonly List<Process> started = [];
    private string? cgroup;

    private readonly Xunit.Abstractions.ITestOutputHelper output;

    public QuarantineTests(Xunit.Abstractions.ITestOutputHelper output)
    {
        this.output = output;
        listener.Start();
    }

    private int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    private string Marker => Path.Combine(dir.Path, "child");

    private string Received
    {
        get
        {
            lock (received)
                return Encoding.ASCII.GetString(received.ToArray());
        }
    }

    /// <summary>Starts the job script and its first connection, accepted and read in the background.</summary>
    private Process StartJob(Action<Process>? beforeConnect = null)
    {
        Process job = Run.PythonScript(Job, Port.ToString(CultureInfo.InvariantCulture), Marker);
        started.Add(job);
        beforeConnect?.Invoke(job);
        job.StandardInput.WriteLine("start");
        Task<TcpClient> accepted = listener.AcceptTcpClientAsync();
        Assert.Equal("ready", job.StandardOutput.ReadLine());
        Assert.True(accepted.Wait(5000), "the job's first connection was not accepted");
        NetworkStream stream = accepted.Result.GetStream();
        _ = Task.Run(() =>
        {
            var buffer = new byte[256];
            int n;
            while ((n = stream.Read(buffer)) > 0)
            {
                lock (received)
                    received.Write(buffer, 0, n);
            }
        });
        Run.WaitFor(() => Received.Contains("before;", StringComparison.Ordinal), "the job's first bytes");
        return job;
    }

    /// <summary>The job in a cgroup of this test's own, named like a systemd service: a job with its own cgroup.</summary>
    private (Process Job, string Name, string Dir) StartJobInItsOwnCgroup()
    {
        string name = $"guard-test-{Guid.NewGuid():N}"[..24] + ".service";
        string dir = cgroup = Path.Combine(KernelMounts.FindCgroup2Root(), name);
        Directory.CreateDirectory(dir);
        return (StartJob(p => File.WriteAllText(Path.Combine(dir, "cgroup.procs"), p.Id.ToString(CultureInfo.InvariantCulture))), name, dir);
    }

    private static JsonElement Attempt(Process job)
    {
        job.StandardInput.WriteLine("go");
        string? line = job.StandardOutput.ReadLine();
        Assert.NotNull(line);
        return JsonDocument.Parse(line).RootElement;
    }

    private static (int Code, TestConsole Console) Guard(params string[] args)
    {
        var console = new TestConsole();
        return (GuardCli.Run(args, console), console);
    }

    private static JsonElement Status()
    {
        (int code, TestConsole console) = Guard("status", "--output", "json");
        Assert.Equal(0, code);
        return JsonDocument.Parse(console.JsonLines().Single()).RootElement;
    }

    private static void Continue(int pid) => Run.Complete("/bin/kill", "-CONT", pid.ToString(CultureInfo.InvariantCulture));

    [Fact]
    public void TreeHoldDeniesNetworkGpuAndNewChildrenUntilReleasedAndOutlivesWatchRestarts()
    {
        KernelRequirements.Check();
        Process job = StartJob();

        (int code, TestConsole hold) = Guard("quarantine", job.Id.ToString(CultureInfo.InvariantCulture), "--gpu-device", StandInGpu, "--reason", "test hold", "--output", "json");
        Assert.True(code == 0, hold.ErrorText);
        JsonElement action = JsonDocument.Parse(hold.JsonLines().Single()).RootElement;
        Assert.Equal("quarantine", action.GetProperty("event").GetProperty("action").GetString());
        Assert.Equal("success", action.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal('T', Run.State(job.Id));

        // A watch started and stopped twice: the hold is not the sensor's, it stays.
        for (int i = 0; i < 2; i++)
            Assert.Equal(0, Guard("watch", "--duration", "1s", "--output", "json").Code);
        Assert.Equal('T', Run.State(job.Id));

        // A SIGCONT is refused: it stays stopped. With that answer taken away it runs, and is still denied it all.
        Continue(job.Id);
        Run.WaitFor(() => Run.State(job.Id) == 'T', "the refused continue to leave it stopped");
        HoldAnswers.DetachContinueAnswer();
        Continue(job.Id);
        JsonElement held = Attempt(job);
        Assert.Equal(Eperm, held.GetProperty("connect").GetInt32());
        Assert.Equal(Eperm, held.GetProperty("gpu").GetInt32());
        int child = held.GetProperty("child").GetInt32();
        Run.WaitFor(() => Run.State(child) == 'T', "the kernel to stop the new child");
        Thread.Sleep(300);
        Assert.False(File.Exists(Marker + ".held"), "a child forked under quarantine ran");
        Assert.DoesNotContain("held;", Received, StringComparison.Ordinal);

        JsonElement status = Status();
        JsonElement entry = status.GetProperty("quarantined").EnumerateArray().Single();
        Assert.Equal("tree", entry.GetProperty("mode").GetString());
        Assert.Equal("test hold", entry.GetProperty("reason").GetString());
        Assert.Contains(child, entry.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
        Assert.Contains(status.GetProperty("pins").EnumerateArray(), p => p.GetString()!.EndsWith("/tree/guard_qtree_egress", StringComparison.Ordinal));

        (code, TestConsole release) = Guard("release", job.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(code == 0, release.ErrorText);
        Run.WaitFor(() => File.Exists(Marker + ".held"), "the held child to run once released");
        JsonElement free = Attempt(job);
        Assert.Equal(0, free.GetProperty("send").GetInt32());
        Assert.Equal(0, free.GetProperty("connect").GetInt32());
        Assert.Equal(0, free.GetProperty("gpu").GetInt32());
        Run.WaitFor(() => Received.Contains("released;", StringComparison.Ordinal), "bytes sent after the release", 10_000);
        Assert.False(QuarantineKernel.Pinned, "the last release leaves no pin");
        Run.WaitFor(() => !GuardProgramsLoaded.List().Any(p => p.Name.StartsWith(BpfProgramNames.QuarantinePrefix, StringComparison.Ordinal)), "the kernel to free the quarantine programs");
    }

    [Fact]
    public void JobCgroupIsFrozenDeniedAndKilledWholeByGuardKill()
    {
        KernelRequirements.Check();
        (Process job, string name, string dir) = StartJobInItsOwnCgroup();

        (int code, TestConsole hold) = Guard("quarantine", "--job", $"systemd:{name}", "--gpu-device", StandInGpu);
        Assert.True(code == 0, hold.ErrorText);
        Assert.Contains("frozen 1", File.ReadAllLines(Path.Combine(dir, "cgroup.events")));

        // The escape: someone thaws the cgroup. The programs attached to it still deny.
        File.WriteAllText(Path.Combine(dir, "cgroup.freeze"), "0");
        JsonElement held = Attempt(job);
        Assert.Equal(Eperm, held.GetProperty("connect").GetInt32());
        Assert.Equal(Eperm, held.GetProperty("gpu").GetInt32());
        Thread.Sleep(500);
        Assert.DoesNotContain("held;", Received, StringComparison.Ordinal);

        JsonElement entry = Status().GetProperty("quarantined").EnumerateArray().Single();
        Assert.Equal("cgroup", entry.GetProperty("mode").GetString());
        Assert.Equal($"/{name}", entry.GetProperty("cgroup").GetString());

        (code, TestConsole kill) = Guard("kill", job.Id.ToString(CultureInfo.InvariantCulture), "--job");
        Assert.True(code == 0, kill.ErrorText);
        Assert.True(job.WaitForExit(5000));
        Assert.Equal(137, job.ExitCode);
        Assert.False(QuarantineKernel.Pinned, "killing the held job ends the hold");
        Assert.Empty(Status().GetProperty("quarantined").EnumerateArray());
    }

    [Fact]
    public void ReleaseRestoresAFrozenJobExactly()
    {
        KernelRequirements.Check();
        (Process job, string name, string dir) = StartJobInItsOwnCgroup();
        (int code, TestConsole hold) = Guard("quarantine", "--job", $"systemd:{name}", "--gpu-device", StandInGpu);
        Assert.True(code == 0, hold.ErrorText);

        (code, TestConsole release) = Guard("release", "--job", $"systemd:{name}");
        Assert.True(code == 0, release.ErrorText);
        Assert.Contains("frozen 0", File.ReadAllLines(Path.Combine(dir, "cgroup.events")));
        Attempt(job); // the "held" round, now free
        JsonElement free = Attempt(job);
        Assert.Equal(0, free.GetProperty("connect").GetInt32());
        Assert.Equal(0, free.GetProperty("gpu").GetInt32());
        Run.WaitFor(() => Received.Contains("released;", StringComparison.Ordinal), "bytes sent after the release");
        Assert.False(QuarantineKernel.Pinned);
    }

    [Fact]
    public void TimeoutsAreCarriedOutByARunningWatch()
    {
        KernelRequirements.Check();
        using Process killed = Run.Start("/bin/sleep", "60");
        using Process released = Run.Start("/bin/sleep", "60");
        try
        {
            Assert.Equal(0, Guard("quarantine", killed.Id.ToString(CultureInfo.InvariantCulture), "--timeout", "1s", "--then", "kill").Code);
            Assert.Equal(0, Guard("quarantine", released.Id.ToString(CultureInfo.InvariantCulture), "--timeout", "1s").Code);
            Assert.Equal('T', Run.State(released.Id));

            (int code, TestConsole watch) = Guard("watch", "--duration", "2500ms", "--output", "json", "--type", "exec");
            Assert.Equal(0, code);
            Assert.True(killed.WaitForExit(1000), "the watch did not carry out the kill");
            Assert.Equal(137, killed.ExitCode);
            JsonElement[] actions = [.. watch.JsonLines().Select(l => JsonDocument.Parse(l).RootElement)
                .Where(e => e.GetProperty("event").GetProperty("dataset").GetString() == "guard.response")];
            Assert.Contains(actions, a => a.GetProperty("event").GetProperty("action").GetString() == "kill-quarantined"
                && a.GetProperty("guard").GetProperty("action").GetProperty("ordered_by").GetProperty("via").GetString() == "timeout of cli");
            Assert.Contains(actions, a => a.GetProperty("event").GetProperty("action").GetString() == "release");
            Run.WaitFor(() => Run.State(released.Id) == 'S', "the released sleeper to run again");
            Assert.False(QuarantineKernel.Pinned);
        }
        finally
        {
            killed.Kill();
            released.Kill();
        }
    }

    [Fact]
    public void ATimeoutGivenWhileAWatchRunsIsCarriedOutWithinATenthOfASecondOfItsDeadline()
    {
        KernelRequirements.Check();
        Process standIn = Run.Start("/bin/sleep", "60");
        started.Add(standIn); // killed and disposed by Dispose
        // A real service: `guard watch` in a process of its own, running before the hold is made.
        Process watch = Run.Start(Run.GuardExecutable, "watch", "--output", "json", "--type", "exec", "--duration", "60s");
        started.Add(watch);
        var lines = new List<string>();
        var reading = new Thread(() =>
        {
            while (watch.StandardOutput.ReadLine() is { } line)
            {
                lock (lines)
                    lines.Add(line);
            }
        });
        reading.Start();
        _ = watch.StandardError.ReadToEndAsync();
        try
        {
            Run.WaitFor(() => RunningSensors.List().Any(s => s.Pid == watch.Id) || watch.HasExited, "the watch to start", 30_000);
            Assert.False(watch.HasExited, $"guard watch ended at its start with code {(watch.HasExited ? watch.ExitCode : 0)}");

            DateTimeOffset asked = DateTimeOffset.UtcNow;
            Assert.Equal(0, Guard("quarantine", standIn.Id.ToString(CultureInfo.InvariantCulture), "--timeout", "2s").Code);
            Assert.Equal('T', Run.State(standIn.Id));
            // The deadline as the hold records it (status reads it; nothing expires before it).
            JsonElement hold = Status().GetProperty("quarantined").EnumerateArray().Single(h => h.GetProperty("pids").EnumerateArray().Any(p => p.GetInt32() == standIn.Id));
            DateTimeOffset deadline = hold.GetProperty("deadline").GetDateTimeOffset();
            Assert.InRange(deadline - asked, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(12));
            while (Run.State(standIn.Id) == 'T' && DateTimeOffset.UtcNow < deadline.AddSeconds(10))
                Thread.Sleep(5);
            DateTimeOffset released = DateTimeOffset.UtcNow;

            Assert.True(Run.State(standIn.Id) != 'T', "the running watch did not release the hold within 10 s of its deadline");
            TimeSpan late = released - deadline;
            output.WriteLine($"deadline {(deadline - asked).TotalMilliseconds:F0} ms after the order; released {late.TotalMilliseconds:F0} ms after the deadline");
            // 5 ms polling and a clock read apart: never before the deadline; within the watch's 100 ms look, and room for a loaded machine.
            Assert.True(late >= TimeSpan.FromMilliseconds(-20), $"released {-late.TotalMilliseconds:F0} ms before its deadline");
            Assert.True(late <= TimeSpan.FromMilliseconds(500), $"released {late.TotalMilliseconds:F0} ms after its deadline: the watch looks every 100 ms");
            Assert.False(standIn.HasExited, "the timeout killed the stand-in; --then release was asked");
            Run.WaitFor(() => { lock (lines) return lines.Any(l => l.Contains("\"action\":\"release\"", StringComparison.Ordinal) && l.Contains("timeout of cli", StringComparison.Ordinal)); },
                "the watch's release action event, ordered by the timeout", 5_000);
            Assert.False(QuarantineKernel.Pinned);
        }
        finally
        {
            if (!watch.HasExited && ProcfsReader.TryReadStat(watch.Id, out ProcfsStat stat))
                OwnProcesses.Signal(watch.Id, stat.StartTicks, 15);
            if (!watch.WaitForExit(15_000))
                watch.Kill();
            watch.WaitForExit();
            reading.Join(5_000);
            EnforcementKernel.Remove();
            SensorPins.RemoveDead(static (_, _) => false);
        }
    }

    [Fact]
    public void ListingOnlyReadsAndPruneEndsAHoldWhoseProcessesAreGone()
    {
        KernelRequirements.Check();
        using Process sleeper = Run.Start("/bin/sleep", "60");
        try
        {
            Assert.Equal(0, Guard("quarantine", sleeper.Id.ToString(CultureInfo.InvariantCulture)).Code);
            var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
            Assert.Equal(sleeper.Id, Assert.Single(quarantines.List()).RootPid);

            sleeper.Kill();
            Assert.True(sleeper.WaitForExit(5000));
            Assert.Empty(quarantines.List());
            Assert.Null(quarantines.Holding(sleeper.Id));
            Assert.True(QuarantineKernel.Pinned, "listing ended the hold");

            Assert.Equal(sleeper.Id, Assert.Single(quarantines.Prune()).RootPid);
            Assert.False(QuarantineKernel.Pinned, "pruning the last hold leaves no pin");
            Assert.Empty(quarantines.Prune());
        }
        finally
        {
            if (!sleeper.HasExited)
                sleeper.Kill();
        }
    }

    [Fact]
    public void KillAndReleaseSignalOnlyWhatTheKernelStillHoldsAsItself()
    {
        KernelRequirements.Check();
        using Process held = Run.Start("/bin/sleep", "60");
        // A process that got a pid the hold once had: the map still has an entry for
        // that pid, left by the member that exited, with the member's start.
        Process bystander = StartJob();
        Assert.True(ProcfsReader.TryReadStat(bystander.Id, out ProcfsStat stat));
        long leftStart = stat.StartTicks - 1;
        try
        {
            Assert.Equal(0, Guard("quarantine", held.Id.ToString(CultureInfo.InvariantCulture)).Code);
            var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
            QuarantineHold hold = quarantines.Holding(held.Id)!;
            LeaveEntry(bystander.Id, leftStart, hold.Id);

            // The kernel holds nobody by such an entry: the bystander connects, and its child runs.
            JsonElement free = Attempt(bystander);
            Assert.Equal(0, free.GetProperty("connect").GetInt32());
            Run.WaitFor(() => File.Exists(Marker + ".held"), "the bystander's child to run");

            // Release continues the members, and nothing else: the bystander, stopped by this test, stays stopped.
            Assert.True(OwnProcesses.Signal(bystander.Id, stat.StartTicks, 19));
            Run.WaitFor(() => Run.State(bystander.Id) == 'T', "the bystander to stop");
            Assert.Equal(0, Guard("release", held.Id.ToString(CultureInfo.InvariantCulture)).Code);
            Run.WaitFor(() => Run.State(held.Id) == 'S', "the member to run again");
            Assert.Equal('T', Run.State(bystander.Id));
            Assert.True(OwnProcesses.Signal(bystander.Id, stat.StartTicks, 18));

            // A kill from a snapshot read earlier that lists the bystander's pid kills the member alone.
            Assert.Equal(0, Guard("quarantine", held.Id.ToString(CultureInfo.InvariantCulture)).Code);
            hold = quarantines.Holding(held.Id)!;
            LeaveEntry(bystander.Id, leftStart, hold.Id);
            QuarantineOutcome killed = quarantines.Kill(hold with { Pids = [held.Id, bystander.Id] });
            Assert.Equal([held.Id], killed.Pids);
            Assert.True(held.WaitForExit(5000));
            Thread.Sleep(200);
            Assert.False(bystander.HasExited, "a process the hold did not hold was killed");
        }
        finally
        {
            if (!held.HasExited)
                held.Kill();
        }
    }

    private static void LeaveEntry(int pid, long startTicks, ulong holdId)
    {
        using QuarantineKernel kernel = QuarantineKernel.OpenPinned()!;
        kernel.HoldTgid(pid, startTicks, holdId);
    }

    [Fact]
    public void ExpiryEndsEveryDueHoldThoughOneCannotBeEnded()
    {
        KernelRequirements.Check();
        using Process released = Run.Start("/bin/sleep", "60");
        using Process unkillable = Run.Start("/bin/sleep", "60");
        // A hierarchy whose cgroup.kill cannot be written, as on a kernel without it.
        using var hierarchy = new TempDir();
        string job = Directory.CreateDirectory(Path.Combine(hierarchy.Path, "job_7")).FullName;
        File.WriteAllText(Path.Combine(job, "cgroup.procs"), $"{unkillable.Id}\n");
        Directory.CreateDirectory(Path.Combine(job, "cgroup.kill"));
        ulong jobId = Libc.InodeOf(job)!.Value;
        try
        {
            Assert.Equal(0, Guard("quarantine", released.Id.ToString(CultureInfo.InvariantCulture), "--timeout", "1s").Code);
            var due = new QuarantineRequest { Timeout = TimeSpan.Zero, OnTimeout = QuarantineExpiry.Kill };
            using (QuarantineKernel kernel = QuarantineKernel.OpenPinned()!)
                kernel.Put(jobId, due.ToRecord(QuarantineMode.Cgroup, jobId, 0, 0, "test:unkillable"));
            Thread.Sleep(1100);

            IReadOnlyList<QuarantineOutcome> outcomes = new Quarantines(hierarchy.Path).Expire(DateTimeOffset.UtcNow);

            Assert.Equal(["kill-quarantined", "release"], outcomes.Select(o => o.Action));
            Assert.False(outcomes[0].Done);
            Assert.Contains("test:unkillable is still held", outcomes[0].Message, StringComparison.Ordinal);
            Assert.True(outcomes[1].Done, outcomes[1].Message);
            Run.WaitFor(() => Run.State(released.Id) == 'S', "the hold due after the one that failed to be released");
            Assert.False(unkillable.HasExited);
        }
        finally
        {
            using (QuarantineKernel? kernel = QuarantineKernel.OpenPinned())
            {
                kernel?.Remove(jobId);
                kernel?.RemoveUnneededPins();
            }
            released.Kill();
            unkillable.Kill();
        }
    }

    [Fact]
    public void RefusalsAndUnknownTargetsAreOneLineAndNonZero()
    {
        KernelRequirements.Check();
        (int code, TestConsole console) = Guard("quarantine", "2");
        Assert.Equal((int)ExitCode.Failure, code);
        Assert.Contains("kernel thread", console.ErrorText, StringComparison.Ordinal);

        (code, console) = Guard("quarantine", "--job", "slurm:999999999");
        Assert.Equal((int)ExitCode.Failure, code);
        Assert.Contains("no cgroup", console.ErrorText, StringComparison.Ordinal);

        (code, console) = Guard("quarantine", "1234", "--job", "slurm:1");
        Assert.Equal((int)ExitCode.Usage, code);

        (code, console) = Guard("release", "2");
        Assert.Equal((int)ExitCode.Failure, code);
        Assert.Contains("not quarantined", console.ErrorText, StringComparison.Ordinal);
        Assert.False(QuarantineKernel.Pinned);
    }

    public void Dispose()
    {
        // Whatever failed above: nothing stays held, stopped, pinned or running.
        GuardCli.Run(["release", "--all"], new TestConsole());
        foreach (Process p in started)
        {
            if (!p.HasExited)
                p.Kill(entireProcessTree: true);
            p.WaitForExit(5000);
            p.Dispose();
        }
        if (cgroup is not null && Directory.Exists(cgroup))
        {
            File.WriteAllText(Path.Combine(cgroup, "cgroup.kill"), "1");
            for (int i = 0; i < 50 && File.ReadAllText(Path.Combine(cgroup, "cgroup.procs")).Length > 0; i++)
                Thread.Sleep(20);
            Directory.Delete(cgroup);
        }
        listener.Stop();
        dir.Dispose();
    }
}
