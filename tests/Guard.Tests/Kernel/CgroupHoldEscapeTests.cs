using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Kernel;

/// <summary>
/// A member of a held cgroup is moved out of it, against the real kernel (the
/// adversary's h2b: `echo PID > other/cgroup.procs` thawed it, and it ran and
/// connected to its pool while `guard status` said "frozen"). The hold follows
/// the process: stopped where it went, denied the network there, the move an
/// action event, and status says who is inside and who left, and where. Also a
/// move into a child cgroup of the held one, a process moved in after the hold,
/// and one an outside helper starts straight into the held cgroup with
/// clone3(CLONE_INTO_CGROUP). Stand-ins only: the compiled spinner, /bin/sleep,
/// python3 in a private network namespace with its own loopback listener.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class CgroupHoldEscapeTests : IDisposable
{
    // In a private netns: a loopback "pool", and a member (forked) that opens a new
    // connection every 20 ms and sends one tick on each. "read SECONDS" says how many
    // ticks the pool got so far.
    private const string PoolScript = """
        import os, select, socket, sys, time
        lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(64)
        port = lst.getsockname()[1]
        member = os.fork()
        if member == 0:
            lst.close()
            while True:
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=0.5)
                    c.sendall(b"tick;")
                    c.close()
                except OSError:
                    pass
                time.sleep(0.02)
        print("member", member, flush=True)
        got = 0
        for line in sys.stdin:
            end = time.time() + float(line.split()[1])
            while time.time() < end:
                r, _, _ = select.select([lst], [], [], 0.05)
                if r:
                    a, _ = lst.accept()
                    a.settimeout(0.2)
                    try:
                        got += a.recv(64).count(b"tick;")
                    except OSError:
                        pass
                    a.close()
            print("received", got, flush=True)
        """;

    private const int SigCont = 18;

    private readonly TempDir dir = new();
    private readonly ITestOutputHelper output;
    private readonly List<Process> started = [];
    private readonly OwnProcesses own = new();
    private readonly TestCgroups cgroups = new();

    public CgroupHoldEscapeTests(ITestOutputHelper output) => this.output = output;

    private static (int Code, TestConsole Console) Guard(params string[] args)
    {
        var console = new TestConsole();
        return (GuardCli.Run(args, console), console);
    }

    /// <summary>A stand-in Slurm job cgroup (job_N/step_0, N unused on this host) and its job id.</summary>
    private (string Job, string Step) MakeJob()
    {
        string number = Random.Shared.Next(7_000_000, 7_999_999).ToString(CultureInfo.InvariantCulture);
        string job = cgroups.Make($"slurm/job_{number}");
        return ($"slurm:{number}", cgroups.Make($"slurm/job_{number}/step_0"));
    }

    private static void HoldJob(string job)
    {
        (int code, TestConsole console) = Guard("quarantine", "--job", job, "--reason", "escape test");
        Assert.True(code == 0, console.ErrorText);
    }

    /// <summary>What `guard status --output json` says of the hold that has <paramref name="pid"/> among its members.</summary>
    private static JsonElement StatusOf(int pid)
    {
        (int code, TestConsole console) = Guard("status", "--output", "json");
        Assert.Equal(0, code);
        JsonElement status = JsonDocument.Parse(console.JsonLines().Single()).RootElement;
        return status.GetProperty("quarantined").EnumerateArray().Single(h => h.GetProperty("pids").EnumerateArray().Any(p => p.GetInt32() == pid));
    }

    private static string StatusText()
    {
        (int code, TestConsole console) = Guard("status");
        Assert.Equal(0, code);
        return console.Out.ToString()!;
    }

    private static int[] Ints(JsonElement array) => [.. array.EnumerateArray().Select(p => p.GetInt32())];

    /// <summary>Moves <paramref name="pid"/> into <paramref name="cgroup"/> as an attacker does: a shell outside the hold writes cgroup.procs. Returns the shell's pid.</summary>
    private int MoveByShell(int pid, string cgroup)
    {
        using Process sh = Run.Start("/bin/sh", "-c", $"echo {pid.ToString(CultureInfo.InvariantCulture)} > {Path.Join(cgroups.DirectoryOf(cgroup), "cgroup.procs")}");
        Assert.True(sh.WaitForExit(5000));
        Assert.True(sh.ExitCode == 0, sh.StandardError.ReadToEnd());
        return sh.Id;
    }

    /// <summary>The hold (by its record) the kernel holds process <paramref name="pid"/> for, or null.</summary>
    private static ulong? HeldBy(int pid)
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is not null && ProcfsReader.TryReadStat(pid, out ProcfsStat stat) && kernel.IsHeld(pid, stat.StartTicks, out ulong id) ? id : null;
    }

    /// <summary>The moves of <paramref name="pid"/> out of its held cgroup the kernel counted.</summary>
    private static ulong MovesCounted(int pid)
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is null ? 0 : kernel.Continues().Where(c => c.Key.Tgid == (uint)pid && c.Key.Via == ContinueVia.CgroupMove).Aggregate(0UL, (sum, c) => sum + c.Value.Attempts);
    }

    private (Process Process, Func<long> Progress) StartSpinner(int threads)
    {
        if (!File.Exists(dir.Path + "/spinner"))
            dir.Compile("spinner");
        string counters = dir.File($"counters-{threads}", "");
        Process spinner = Run.Start(dir.Path + "/spinner", counters, threads.ToString(CultureInfo.InvariantCulture));
        started.Add(spinner);
        Assert.Equal("ready", spinner.StandardOutput.ReadLine());
        own.Add(spinner.Id);
        return (spinner, Progress);

        long Progress()
        {
            byte[] bytes = File.ReadAllBytes(counters);
            long sum = 0;
            for (int i = 0; i + 8 <= bytes.Length; i += 8)
                sum += (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i));
            return sum;
        }
    }

    private Process StartSleeper()
    {
        Process sleeper = Run.Start("/bin/sleep", "120");
        started.Add(sleeper);
        own.Add(sleeper.Id);
        return sleeper;
    }

    private static int Received(Process pool, double seconds)
    {
        pool.StandardInput.WriteLine($"read {seconds.ToString(CultureInfo.InvariantCulture)}");
        // Its stderr is not read: the member, its fork, holds it open.
        string line = pool.StandardOutput.ReadLine() ?? throw new Xunit.Sdk.XunitException("the pool ended");
        return int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    private static bool Stopped(int pid) => ProcfsReader.AllThreadsStopped(pid);

    /// <summary>
    /// h2b as a test. Measured on the project's shared 2-CPU machine under other
    /// helpers' load (see the output): the spinner's slip between the move and the
    /// kernel's stop, against its free-running rate; asserted under 5 ms of free
    /// running, as a continue's is.
    /// </summary>
    [Fact]
    public void AMemberMovedOutOfAHeldCgroupIsStoppedWhereItWentTalksToNoOneAndStatusSaysWhereItIs()
    {
        KernelRequirements.Check();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        (string job, string step) = MakeJob();
        string escape = cgroups.Make("escape");

        Process pool = Run.Start("unshare", "--net", "/bin/sh", "-c", $"ip link set lo up; exec {Run.Python} -c \"$0\"", PoolScript);
        started.Add(pool);
        string? first = pool.StandardOutput.ReadLine();
        if (first is null || !first.StartsWith("member ", StringComparison.Ordinal))
            throw new Xunit.Sdk.XunitException($"the pool did not start: {first}");
        int talker = int.Parse(first[7..], CultureInfo.InvariantCulture);
        long talkerStart = own.Add(talker);
        cgroups.Enter(talker, step);
        (Process spinner, Func<long> progress) = StartSpinner(threads: 2);
        cgroups.Enter(spinner.Id, step);
        long free0 = progress();
        var clock = Stopwatch.StartNew();
        Thread.Sleep(300);
        double perSecond = (progress() - free0) / clock.Elapsed.TotalSeconds;
        Assert.True(Received(pool, 0.5) > 0, "the member never reached the pool before the hold");

        HoldJob(job);
        Assert.Equal(HeldBy(spinner.Id), HeldBy(talker));
        Assert.NotNull(HeldBy(talker));
        int before = Received(pool, 0.3);
        Assert.Equal(before, Received(pool, 0.5));

        // The escape: a shell outside the hold moves both out of the held cgroup.
        long atMove = progress();
        int mover = MoveByShell(spinner.Id, escape);
        MoveByShell(talker, escape);
        Run.WaitFor(() => Stopped(spinner.Id) && Stopped(talker), "the kernel to stop both where they went");
        long slipped = progress() - atMove;
        output.WriteLine($"moved out: {slipped} increments ran before the stop; {perSecond:F0} a second free-running");
        // The stop lands when the task next returns to user space: ~32 us on a quiet machine (the
        // README's figure); a loaded one delays it by milliseconds, so the bound here only tells
        // a stop in the kernel from a stop by the sensor after a poll (which takes ~100 ms and more).
        Assert.True(slipped < perSecond * 0.05, $"{slipped} increments ran after the move: more than 50 ms of free running ({perSecond:F0}/s)");
        Assert.Equal(before, Received(pool, 1.0));
        Assert.Equal(1UL, MovesCounted(spinner.Id));
        Assert.Equal(1UL, MovesCounted(talker));

        RecordedEvent moved = sensor.WaitFor("the move reported", e => e.Action == "quarantine-move-refused"
            && Ints(e.Json.GetProperty("guard").GetProperty("action").GetProperty("pids")).Contains(spinner.Id));
        Assert.Equal("success", moved.Json.GetProperty("event").GetProperty("outcome").GetString());
        JsonElement attempt = moved.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt");
        Assert.Equal("cgroup-move", attempt.GetProperty("via").GetString());
        Assert.Equal(1UL, attempt.GetProperty("count").GetUInt64());
        Assert.Equal(mover, attempt.GetProperty("by").GetProperty("pid").GetInt32());
        Assert.Equal("sh", attempt.GetProperty("by").GetProperty("name").GetString());
        Assert.Contains($"was moved out of cgroup {cgroups.Top}/slurm/job_", moved.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains($"into {escape} by pid {mover} (sh)", moved.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);

        // Status tells the truth: nothing inside, two members moved out, where, stopped.
        JsonElement hold = StatusOf(spinner.Id);
        Assert.True(hold.GetProperty("held").GetBoolean());
        Assert.True(hold.GetProperty("frozen").GetBoolean());
        Assert.Empty(Ints(hold.GetProperty("inside")));
        JsonElement[] left = [.. hold.GetProperty("moved_out").EnumerateArray()];
        Assert.Equal(new[] { spinner.Id, talker }.Order(), left.Select(m => m.GetProperty("pid").GetInt32()).Order());
        Assert.All(left, m => Assert.Equal(escape, m.GetProperty("cgroup").GetString()));
        Assert.All(left, m => Assert.True(m.GetProperty("stopped").GetBoolean()));
        Assert.Equal(2UL, hold.GetProperty("moves_out").GetUInt64());
        string text = StatusText();
        Assert.Contains($"0 processes inside ()", text, StringComparison.Ordinal);
        Assert.Contains("2 members moved out of the cgroup, held where they are:", text, StringComparison.Ordinal);
        Assert.Contains($"pid {spinner.Id} in {escape}: stopped", text, StringComparison.Ordinal);

        // Let run where it went (the kernel's answer to SIGCONT taken away), the talker is
        // still denied the network as a process: nothing it sends reaches the pool.
        HoldAnswers.DetachContinueAnswer();
        Assert.True(OwnProcesses.Signal(talker, talkerStart, SigCont));
        Run.WaitFor(() => !Stopped(talker), "the talker to run");
        Assert.Equal(before, Received(pool, 1.0));
        JsonElement loose = StatusOf(talker);
        Assert.False(loose.GetProperty("held").GetBoolean());
        Assert.Equal([talker], Ints(loose.GetProperty("running")));
        Assert.Contains($"1 member moved out RUNNING ({talker})", StatusText(), StringComparison.Ordinal);

        // Released, the members the kernel stopped outside run again, and talk.
        (int code, TestConsole released) = Guard("release", "--job", job);
        Assert.True(code == 0, released.ErrorText);
        Run.WaitFor(() => !Stopped(spinner.Id), "the released spinner to run");
        long after = progress();
        Run.WaitFor(() => progress() > after, "the released spinner to make progress");
        Assert.True(Received(pool, 1.0) > before, "the released member did not reach the pool");
    }

    [Fact]
    public void AMemberMovedIntoAChildCgroupOfTheHeldOneStaysFrozenAndIsNotAnEscape()
    {
        KernelRequirements.Check();
        (string job, string step) = MakeJob();
        Process sleeper = StartSleeper();
        cgroups.Enter(sleeper.Id, step);
        HoldJob(job);
        string inner = cgroups.Make(step[(cgroups.Top.Length + 1)..] + "/inner");
        MoveByShell(sleeper.Id, inner);
        Thread.Sleep(300);
        Assert.True(cgroups.Frozen(inner));
        Assert.Equal(0UL, MovesCounted(sleeper.Id));
        Assert.NotEqual('T', Run.State(sleeper.Id)); // frozen by the freezer, not stopped by a signal a release would leave behind
        JsonElement hold = StatusOf(sleeper.Id);
        Assert.True(hold.GetProperty("held").GetBoolean());
        Assert.Equal([sleeper.Id], Ints(hold.GetProperty("inside")));
        Assert.Empty(hold.GetProperty("moved_out").EnumerateArray());
    }

    [Fact]
    public void AProcessMovedInAfterTheHoldAndOneClonedIntoItByAnOutsideHelperAreMembersAndStoppedWhenMovedOut()
    {
        KernelRequirements.Check();
        (string job, string step) = MakeJob();
        string escape = cgroups.Make("escape");
        Process first = StartSleeper();
        cgroups.Enter(first.Id, step);
        HoldJob(job);
        ulong? hold = HeldBy(first.Id);
        Assert.NotNull(hold);

        // Moved in by someone after the hold: frozen by the move, and a member.
        Process late = StartSleeper();
        MoveByShell(late.Id, step);
        Assert.Equal(hold, HeldBy(late.Id));

        // clone3(CLONE_INTO_CGROUP) from outside: never runs there, and is a member from fork.
        string cloneInto = dir.Compile("clone-into");
        string pidFile = dir.File("cloned", "");
        using Process helper = Run.Start(cloneInto, cgroups.DirectoryOf(step), pidFile, "/bin/sleep", "120");
        Assert.True(helper.WaitForExit(5000), "clone-into did not finish");
        Assert.True(helper.ExitCode == 0, $"clone-into exited {helper.ExitCode} (3: open, 4: clone3, 5: stdio, 6: the pid file)");
        int cloned = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        own.Add(cloned);
        Assert.Equal(hold, HeldBy(cloned));
        Assert.Equal(new[] { first.Id, late.Id, cloned }.Order(), Ints(StatusOf(cloned).GetProperty("inside")).Order());

        foreach (int pid in new[] { late.Id, cloned })
        {
            MoveByShell(pid, escape);
            Run.WaitFor(() => Stopped(pid), $"the kernel to stop {pid} where it went");
            Assert.Equal(1UL, MovesCounted(pid));
        }
        JsonElement status = StatusOf(first.Id);
        Assert.True(status.GetProperty("held").GetBoolean());
        Assert.Equal([first.Id], Ints(status.GetProperty("inside")));
        Assert.Equal(new[] { late.Id, cloned }.Order(), status.GetProperty("moved_out").EnumerateArray().Select(m => m.GetProperty("pid").GetInt32()).Order());
    }

    public void Dispose()
    {
        // Whatever failed above: nothing stays held, stopped, pinned or running.
        GuardCli.Run(["release", "--all"], new TestConsole());
        own.KillAll();
        foreach (Process p in started)
        {
            try
            {
                if (!p.HasExited)
                    p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
                // never started
            }
            p.Dispose();
        }
        own.Dispose();
        cgroups.Dispose();
        dir.Dispose();
    }
}
