using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Kernel;

/// <summary>
/// The held try to undo their hold, against the real kernel: the owner sends
/// SIGCONT, over and over; a tracer resumes it; a socket connected outside
/// the hold is passed in over a unix socket; a held cgroup is thawed; a held
/// process with a GPU descriptor opened before the hold issues an ioctl. Each
/// is answered (stopped again, killed, dropped, frozen again), reported, and
/// `guard status` says what it sees. Stand-ins only: a compiled spinner that
/// counts in a shared file, /bin/sleep, python3 in a private network
/// namespace with its own loopback listener, /dev/full as the GPU.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class HoldEscapeTests : IDisposable
{
    private const int SigKill = 9;
    private const int SigStop = 19;
    private const int SigCont = 18;

    // In a private netns: a loopback listener; a held process that waits on a unix
    // socket for a descriptor, sends on what it gets and says so back; and this
    // script, the helper outside the hold, which connects and passes the socket in.
    private const string PassScript = """
        import array, os, select, socket, sys, time
        lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(4)
        port = lst.getsockname()[1]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        held = os.fork()
        if held == 0:
            ours.close(); lst.close()
            while True:
                msg, anc, _, _ = theirs.recvmsg(16, socket.CMSG_SPACE(4))
                if not msg:
                    os._exit(0)
                fds = array.array("i")
                for level, kind, data in anc:
                    if kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[:4])
                s = socket.socket(fileno=fds[0])
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(b"escaped;")
                s.detach()
                theirs.sendall(b"s")
        theirs.close()
        print("held", held, flush=True)
        got, acks, conns = b"", 0, []
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "pass":
                c = socket.create_connection(("127.0.0.1", port))
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sendall(b"outside;")
                a, _ = lst.accept(); conns.append(a)
                ours.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [c.fileno()]))])
                print("passed", flush=True)
            elif cmd[0] == "read":
                # read SECONDS [untilack]: what the listener got, and how many sends the held process made
                end = time.time() + float(cmd[1])
                while time.time() < end:
                    r, _, _ = select.select(conns + [ours], [], [], 0.05)
                    for x in r:
                        if x is ours:
                            acks += len(ours.recv(16))
                            if len(cmd) > 2:
                                end = min(end, time.time() + 0.5)
                        else:
                            got += x.recv(4096)
                print("received", got.decode(), "acks", acks, flush=True)
        """;

    private readonly TempDir dir = new();
    private readonly ITestOutputHelper output;
    private readonly List<Process> started = [];
    private readonly OwnProcesses own = new();

    public HoldEscapeTests(ITestOutputHelper output) => this.output = output;

    private static (int Code, TestConsole Console) Guard(params string[] args)
    {
        var console = new TestConsole();
        return (GuardCli.Run(args, console), console);
    }

    private static void Hold(params string[] args)
    {
        (int code, TestConsole console) = Guard(["quarantine", .. args]);
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

    private static bool Stopped(int pid) => ProcfsReader.AllThreadsStopped(pid);

    /// <summary>The continues of <paramref name="pid"/> the kernel answered, as it counted them.</summary>
    private static ulong Refused(int pid)
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is null ? 0 : kernel.Continues().Where(c => c.Key.Tgid == (uint)pid).Aggregate(0UL, (sum, c) => sum + c.Value.Refused);
    }

    /// <summary>A watching sensor (built-in policy) that answers and reports what the kernel counts.</summary>
    private static SensorHarness Watch(IReadOnlyList<GpuDevice>? gpus = null) =>
        SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn, Kernel = new KernelOptions { GpuDevices = gpus ?? [] } });

    /// <summary>A compiled spinner: <paramref name="threads"/> threads each counting in the shared file.</summary>
    private (Process Process, long StartTicks, Func<long> Progress) StartSpinner(int threads)
    {
        string counters = dir.File($"counters-{threads}", "");
        Process spinner = Run.Start(dir.Path + "/spinner", counters, threads.ToString(CultureInfo.InvariantCulture));
        started.Add(spinner);
        Assert.Equal("ready", spinner.StandardOutput.ReadLine());
        long startTicks = own.Add(spinner.Id);
        return (spinner, startTicks, Progress);

        long Progress()
        {
            byte[] bytes = File.ReadAllBytes(counters);
            long sum = 0;
            for (int i = 0; i + 8 <= bytes.Length; i += 8)
                sum += (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i));
            return sum;
        }
    }

    private void CompileSpinner()
    {
        if (!File.Exists(dir.Path + "/spinner"))
            dir.Compile("spinner");
    }

    [Fact]
    public void AHeldTreeSentSigcontIsStoppedAgainAndTheEventNamesTheSender()
    {
        KernelRequirements.Check();
        CompileSpinner();
        using SensorHarness sensor = Watch();
        (Process spinner, _, _) = StartSpinner(threads: 4);
        Hold(spinner.Id.ToString(CultureInfo.InvariantCulture));
        Run.WaitFor(() => Stopped(spinner.Id), "the hold to stop every thread");

        // The owner's escape: kill -CONT from a process of its own.
        using Process kill = Run.Start("/bin/kill", "-CONT", spinner.Id.ToString(CultureInfo.InvariantCulture));
        Assert.True(kill.WaitForExit(5000));
        Assert.Equal(0, kill.ExitCode);

        RecordedEvent refused = sensor.WaitFor("the refused continue", e => e.Action == "quarantine-continue-refused" && e.Pid == spinner.Id);
        Assert.Equal("success", refused.Json.GetProperty("event").GetProperty("outcome").GetString());
        JsonElement attempt = refused.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt");
        Assert.Equal("signal", attempt.GetProperty("via").GetString());
        Assert.Equal(1UL, attempt.GetProperty("count").GetUInt64());
        Assert.Equal(kill.Id, attempt.GetProperty("by").GetProperty("pid").GetInt32());
        Assert.Equal("kill", attempt.GetProperty("by").GetProperty("name").GetString());
        Assert.Equal(0, attempt.GetProperty("si_code").GetInt32()); // SI_USER: kill(2)
        Assert.Contains($"by pid {kill.Id} (kill)", refused.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
        Run.WaitFor(() => Stopped(spinner.Id), "every thread to be stopped again");

        JsonElement hold = StatusOf(spinner.Id);
        Assert.True(hold.GetProperty("held").GetBoolean());
        Assert.Empty(hold.GetProperty("running").EnumerateArray());
        Assert.Equal(1UL, hold.GetProperty("continues_refused").GetUInt64());
        Assert.Equal("kill", hold.GetProperty("last_continued_by").GetProperty("name").GetString());
        Assert.Contains($"continues refused: 1; the latest by pid {kill.Id} (kill)", StatusText(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Measured on the project's shared 2-CPU machine, kernel 6.18, 200 SIGCONTs
    /// 10 ms apart, a spinner counting ~2 billion a second free: quiet, a
    /// one-thread spinner never ran (0 of 200, ten runs) and an eight-thread one
    /// ran in 7-9 of 200; under other helpers' load (load average 3-10) 0-10 of
    /// 200 and 0-90 of 200. A continue that runs at all runs a few µs (median
    /// 5,000-25,000 increments): a woken thread can take the siglock and leave
    /// the kernel before the stop queued after it lands. Asserted with room for
    /// a loaded machine: less than 5 ms of free running in all; without the
    /// answer each continue runs until the next, 2 s in all.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void AMemberContinuedTwoHundredTimesMakesNoProgressWorthTheName(int threads)
    {
        KernelRequirements.Check();
        CompileSpinner();
        (Process spinner, long startTicks, Func<long> progress) = StartSpinner(threads);
        long free0 = progress();
        var clock = Stopwatch.StartNew();
        Thread.Sleep(300);
        double perSecond = (progress() - free0) / clock.Elapsed.TotalSeconds;

        Hold(spinner.Id.ToString(CultureInfo.InvariantCulture));
        Run.WaitFor(() => Stopped(spinner.Id), "the hold to stop every thread");
        long held = progress();
        Thread.Sleep(100);
        Assert.Equal(held, progress());

        int ran = 0;
        for (int i = 0; i < 200; i++)
        {
            long before = progress();
            Assert.True(OwnProcesses.Signal(spinner.Id, startTicks, SigCont), "the spinner is gone");
            Thread.Sleep(10);
            if (progress() != before)
                ran++;
        }
        Run.WaitFor(() => Stopped(spinner.Id), "every thread to be stopped again");
        long slipped = progress() - held;
        output.WriteLine($"{threads} thread(s): {slipped} increments over 200 continues ({ran} of them ran at all); {perSecond:F0} a second free-running");
        Assert.True(slipped < perSecond * 0.005, $"{slipped} increments slipped through 200 continues: more than 5 ms of free running ({perSecond:F0}/s)");

        JsonElement hold = StatusOf(spinner.Id);
        Assert.Equal(200UL, hold.GetProperty("continues_refused").GetUInt64() + hold.GetProperty("continues_unanswered").GetUInt64());
        Assert.True(hold.GetProperty("held").GetBoolean());
    }

    [Fact]
    public void StatusSaysRunningWhenAMemberRunsAndStoppedWhenItIsStopped()
    {
        KernelRequirements.Check();
        using Process sleeper = Run.Start("/bin/sleep", "60");
        started.Add(sleeper);
        long startTicks = own.Add(sleeper.Id);
        Hold(sleeper.Id.ToString(CultureInfo.InvariantCulture));
        JsonElement hold = StatusOf(sleeper.Id);
        Assert.True(hold.GetProperty("held").GetBoolean());
        Assert.Contains("tree stopped", StatusText(), StringComparison.Ordinal);

        // With the kernel's answer gone, a continue lets it run: status says so.
        HoldAnswers.DetachContinueAnswer();
        Assert.True(OwnProcesses.Signal(sleeper.Id, startTicks, SigCont));
        Run.WaitFor(() => Run.State(sleeper.Id) == 'S', "the member to run");
        hold = StatusOf(sleeper.Id);
        Assert.False(hold.GetProperty("held").GetBoolean());
        Assert.Equal([sleeper.Id], hold.GetProperty("running").EnumerateArray().Select(p => p.GetInt32()));
        Assert.Contains($"tree NOT STOPPED: 1 of 1 running ({sleeper.Id})", StatusText(), StringComparison.Ordinal);

        // Stopped again (here by this test), it says stopped.
        Assert.True(OwnProcesses.Signal(sleeper.Id, startTicks, SigStop));
        Run.WaitFor(() => Stopped(sleeper.Id), "the member to stop");
        Assert.True(StatusOf(sleeper.Id).GetProperty("held").GetBoolean());
    }

    /// <summary>The pass-in scenario in a private network namespace; returns it and the held process's pid.</summary>
    private (Process Scenario, int Held) StartPassScenario()
    {
        Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", $"ip link set lo up; exec {Run.Python} -c \"$0\"", PassScript);
        started.Add(ns);
        string? first = ns.StandardOutput.ReadLine();
        if (first is null || !first.StartsWith("held ", StringComparison.Ordinal))
            throw new Xunit.Sdk.XunitException($"the scenario did not start: {first} {ns.StandardError.ReadToEnd()}");
        int held = int.Parse(first[5..], CultureInfo.InvariantCulture);
        own.Add(held);
        return (ns, held);
    }

    private static string Ask(Process scenario, string command)
    {
        scenario.StandardInput.WriteLine(command);
        return scenario.StandardOutput.ReadLine() ?? throw new Xunit.Sdk.XunitException($"the scenario ended at '{command}': {scenario.StandardError.ReadToEnd()}");
    }

    [Fact]
    public void ASocketConnectedOutsideAndPassedInSendsNothingAfterTheHold()
    {
        KernelRequirements.Check();
        (Process scenario, int held) = StartPassScenario();
        Assert.True(ProcfsReader.TryReadStat(held, out ProcfsStat stat));
        Hold(held.ToString(CultureInfo.InvariantCulture));
        Assert.Equal("passed", Ask(scenario, "pass"));

        // Continued, it is stopped again before it can take the socket.
        Assert.True(OwnProcesses.Signal(held, stat.StartTicks, SigCont));
        Assert.Equal("received outside; acks 0", Ask(scenario, "read 0.5"));
        Assert.True(Stopped(held));

        // Even let run (the answer to SIGCONT detached), what it sends on the socket it was passed never leaves.
        HoldAnswers.DetachContinueAnswer();
        Assert.True(OwnProcesses.Signal(held, stat.StartTicks, SigCont));
        Assert.Equal("received outside; acks 1", Ask(scenario, "read 5 untilack"));
    }

    [Fact]
    public void APassedInSocketSendsNothingFromAThawedCgroupAndAWatchFreezesItAgain()
    {
        KernelRequirements.Check();
        using var cgroups = new TestCgroups();
        string unit = $"hold-{Guid.NewGuid():N}"[..16] + ".service";
        string cgroup = cgroups.Make(unit);
        (Process scenario, int held) = StartPassScenario();
        cgroups.Enter(held, cgroup);
        Hold("--job", $"systemd:{unit}");
        Assert.True(cgroups.Frozen(cgroup));
        Assert.True(StatusOf(held).GetProperty("frozen").GetBoolean());

        // The socket is the helper's, made outside the cgroup: the cgroup's own programs never see it.
        Assert.Equal("passed", Ask(scenario, "pass"));
        File.WriteAllText(Path.Join(cgroups.DirectoryOf(cgroup), "cgroup.freeze"), "0");
        Run.WaitFor(() => !cgroups.Frozen(cgroup), "the thaw");
        Assert.False(StatusOf(held).GetProperty("frozen").GetBoolean());
        Assert.Equal("received outside; acks 1", Ask(scenario, "read 5 untilack"));

        // A watching sensor sees the thaw: frozen again, said as an action.
        using SensorHarness sensor = Watch();
        RecordedEvent refused = sensor.WaitFor("the refused thaw", e => e.Action == "quarantine-thaw-refused");
        Assert.Equal(cgroup, refused.Json.GetProperty("guard").GetProperty("action").GetProperty("cgroup").GetString());
        Assert.Equal("cgroup-thaw", refused.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("via").GetString());
        Run.WaitFor(() => cgroups.Frozen(cgroup), "the cgroup to be frozen again");
        Assert.True(StatusOf(held).GetProperty("held").GetBoolean());
    }

    // A tracer as an attacker uses one: PTRACE_SEIZE a held process and PTRACE_CONT it,
    // which resumes a stopped process without any signal. argv: pid.
    private const string ResumingTracer = """
        import ctypes, os, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        pid = int(sys.argv[1])
        if libc.ptrace(0x4206, pid, None, None):
            print("seize failed", ctypes.get_errno(), flush=True); sys.exit(1)
        os.waitpid(pid, 0x40000000)
        print("cont", libc.ptrace(7, pid, None, None), flush=True)
        end = time.time() + 3
        while time.time() < end:
            try:
                got, status = os.waitpid(pid, 0x40000000 | os.WNOHANG)
            except ChildProcessError:
                break
            if got and os.WIFSTOPPED(status):
                libc.ptrace(7, pid, None, None)
            time.sleep(0.001)
        """;

    // A tracer as strace is: attached before the hold, it passes every signal on (the hold's
    // SIGSTOP too) and listens in a group stop. argv: pid. Says "attached", then runs 2 s.
    private const string PassingTracer = """
        import ctypes, os, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        pid = int(sys.argv[1])
        if libc.ptrace(0x4206, pid, None, None):
            print("seize failed", ctypes.get_errno(), flush=True); sys.exit(1)
        print("attached", flush=True)
        end = time.time() + 2
        while time.time() < end:
            got, status = os.waitpid(pid, 0x40000000 | os.WNOHANG)
            if not got:
                time.sleep(0.001); continue
            if not os.WIFSTOPPED(status):
                break
            if status >> 16 == 0x80:
                libc.ptrace(0x4208, pid, None, None)
            else:
                libc.ptrace(7, pid, None, ctypes.c_void_p(os.WSTOPSIG(status)))
        libc.ptrace(17, pid, None, None)
        """;

    [Fact]
    public void AHeldProcessItsTracerResumesIsKilledAndOneWhoseTracerPassesTheStopOnStaysHeld()
    {
        KernelRequirements.Check();
        CompileSpinner();
        using SensorHarness sensor = Watch();

        // strace-like: the hold's own SIGSTOP goes through the tracer, and the process stays held.
        (Process traced, _, Func<long> progress) = StartSpinner(threads: 1);
        using Process passing = Run.PythonScript(PassingTracer, traced.Id.ToString(CultureInfo.InvariantCulture));
        started.Add(passing);
        Assert.Equal("attached", passing.StandardOutput.ReadLine());
        Hold(traced.Id.ToString(CultureInfo.InvariantCulture));
        Run.WaitFor(() => Stopped(traced.Id), "the traced process to stop");
        long at = progress();
        Assert.True(passing.WaitForExit(10_000), "the passing tracer did not finish");
        Run.WaitFor(() => Run.State(traced.Id) == 'T', "the process to stay stopped once its tracer left");
        Assert.Equal(at, progress());
        Assert.False(traced.HasExited, "a process whose tracer only passed the stop on was killed");

        // An attacker's tracer resumes a held process: it is killed, and the tracer named.
        (Process resumed, _, _) = StartSpinner(threads: 2);
        Hold(resumed.Id.ToString(CultureInfo.InvariantCulture));
        Run.WaitFor(() => Stopped(resumed.Id), "the hold to stop it");
        using Process tracer = Run.PythonScript(ResumingTracer, resumed.Id.ToString(CultureInfo.InvariantCulture));
        started.Add(tracer);
        Assert.Equal("cont 0", tracer.StandardOutput.ReadLine());
        Assert.True(resumed.WaitForExit(5000), "the held process its tracer resumed is still alive");
        Assert.Equal(128 + SigKill, resumed.ExitCode);
        RecordedEvent refused = sensor.WaitFor("the refused ptrace resume", e => e.Action == "quarantine-continue-refused" && e.Pid == resumed.Id);
        JsonElement attempt = refused.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt");
        Assert.Equal("ptrace", attempt.GetProperty("via").GetString());
        Assert.Equal(tracer.Id, attempt.GetProperty("by").GetProperty("pid").GetInt32());
        Assert.Contains("killed in the kernel", refused.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// The adversary's h1b: a SIGCONT flood, then a tracer's resume. Its event said
    /// "61037 ptrace resumes", the flood's count plus one: the kernel kept one count
    /// for every way. Each way is counted apart now, in the kernel and in the events.
    /// </summary>
    [Fact]
    public void ASigcontFloodThenAPtraceResumeAreCountedEachApart()
    {
        KernelRequirements.Check();
        CompileSpinner();
        using SensorHarness sensor = Watch();
        (Process spinner, long startTicks, _) = StartSpinner(threads: 1);
        Hold(spinner.Id.ToString(CultureInfo.InvariantCulture));
        Run.WaitFor(() => Stopped(spinner.Id), "the hold to stop it");
        for (int i = 0; i < 50; i++)
            Assert.True(OwnProcesses.Signal(spinner.Id, startTicks, SigCont));
        Run.WaitFor(() => Counted(spinner.Id, ContinueVia.Signal) == 50, "the kernel to count 50 continues");
        sensor.WaitFor("the refused continues", e => e.Action == "quarantine-continue-refused" && e.Pid == spinner.Id);

        using Process tracer = Run.PythonScript(ResumingTracer, spinner.Id.ToString(CultureInfo.InvariantCulture));
        started.Add(tracer);
        Assert.Equal("cont 0", tracer.StandardOutput.ReadLine());
        Assert.True(spinner.WaitForExit(5000), "the held process its tracer resumed is still alive");
        RecordedEvent resumed = sensor.WaitFor("the refused ptrace resume", e => e.Action == "quarantine-continue-refused" && e.Pid == spinner.Id
            && e.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("via").GetString() == "ptrace");
        Assert.Equal(1UL, resumed.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("count").GetUInt64());
        Assert.Contains("1 ptrace resume of held process", resumed.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
        // Every continue report together says 50, not 50 and then 51.
        ulong continues = sensor.Events.Where(e => e.Action == "quarantine-continue-refused" && e.Pid == spinner.Id
                && e.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("via").GetString() == "signal")
            .Aggregate(0UL, (sum, e) => sum + e.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("count").GetUInt64());
        Assert.Equal(50UL, continues);
    }

    /// <summary>The attempts the kernel counted for <paramref name="pid"/> one way.</summary>
    private static ulong Counted(int pid, ContinueVia via)
    {
        using QuarantineKernel? kernel = QuarantineKernel.OpenPinned();
        return kernel is null ? 0 : kernel.Continues().Where(c => c.Key.Tgid == (uint)pid && c.Key.Via == via).Aggregate(0UL, (sum, c) => sum + c.Value.Attempts);
    }

    // Opens the stand-in GPU before the hold; each line on stdin is one RM ioctl on that descriptor, then "did".
    private const string GpuUser = """
        import fcntl, os, sys
        fd = os.open("/dev/full", os.O_RDWR)
        print("ready", flush=True)
        for line in sys.stdin:
            try:
                fcntl.ioctl(fd, (3 << 30) | (32 << 16) | (ord("F") << 8) | 0x2A, bytearray(32), True)
            except OSError:
                pass
            print("did", flush=True)
        """;

    [Fact]
    public async Task AHeldProcessThatIssuesAGpuIoctlOnAnEarlierDescriptorIsStoppedAgain()
    {
        KernelRequirements.Check();
        using SensorHarness sensor = Watch([new GpuDevice(1, 7, GpuRole.ResourceManager)]);
        Assert.Contains(sensor.Sensor.Kernel.Attached, a => a.Spec.Name == BpfProgramNames.Ioctl);
        using Process gpuUser = Run.PythonScript(GpuUser);
        started.Add(gpuUser);
        Assert.Equal("ready", gpuUser.StandardOutput.ReadLine());
        long startTicks = own.Add(gpuUser.Id);
        Hold(gpuUser.Id.ToString(CultureInfo.InvariantCulture), "--gpu-device", "1:7");

        // A refused continue, reported: the sensor has looked at the holds, the ioctl program follows them.
        Assert.True(OwnProcesses.Signal(gpuUser.Id, startTicks, SigCont));
        Run.WaitFor(() => Refused(gpuUser.Id) == 1, "the kernel to count the refused continue");
        sensor.WaitFor("the refused continue", e => e.Action == "quarantine-continue-refused" && e.Pid == gpuUser.Id);

        // Let run by a path the kernel does not answer, it issues one ioctl on the descriptor it had: stopped there.
        HoldAnswers.DetachContinueAnswer();
        Assert.True(OwnProcesses.Signal(gpuUser.Id, startTicks, SigCont));
        Run.WaitFor(() => Run.State(gpuUser.Id) == 'S', "the held process to run");
        Task<string?> after = gpuUser.StandardOutput.ReadLineAsync();
        gpuUser.StandardInput.WriteLine("ioctl");
        Run.WaitFor(() => Stopped(gpuUser.Id), "the ioctl program to stop it");
        RecordedEvent refused = sensor.WaitFor("the GPU ioctl of a held process", e => e.Action == "quarantine-continue-refused" && e.Pid == gpuUser.Id
            && e.Json.GetProperty("guard").GetProperty("action").GetProperty("attempt").GetProperty("via").GetString() == "gpu-ioctl");
        Assert.Contains("1 GPU ioctl of held process", refused.Json.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
        // Stopped as the ioctl returned: it did not get on to its next line.
        Assert.NotSame(after, await Task.WhenAny(after, Task.Delay(500)));
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
        dir.Dispose();
    }
}
