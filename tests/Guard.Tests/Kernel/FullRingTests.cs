using System.Diagnostics;
using System.Globalization;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// An adversary that fills the ring buffer first (a flood of execs while the
/// reader is stalled) and then runs its miner: the kernel's verdicts are
/// reached and carried out before any record is reserved, so a full ring
/// costs counted records, never a kill, a job membership or a drop. What the
/// lost records hid is judged late, from /proc: a process whose exec record
/// was lost, its arguments read whole. Each test first proves the ring is
/// full: the record of the very act it checks is counted as lost. Miner
/// stand-ins run in a network namespace of their own (`unshare --net`).
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class FullRingTests
{
    private const int Trials = 5;

    /// <summary>A ring read only when the test says (4 KB: a few execs fill it for good).</summary>
    private static SensorHarness StalledSensor(KernelOptions? kernel = null) => SensorHarness.Start(
        new SensorOptions { Policy = PolicyLoader.BuiltIn, Kernel = kernel ?? new KernelOptions { RingBufferBytes = 4096 } }, poll: false);

    private static ulong Lost(SensorHarness sensor, RecordKind kind) => sensor.Sensor.Kernel.ReadDrops()[(int)kind];

    /// <summary>Runs /bin/true until even an exit record (the smallest) finds no room: from then on every record is lost.</summary>
    private static void Fill(SensorHarness sensor)
    {
        for (int i = 0; i < 1000 && Lost(sensor, RecordKind.Exit) == 0; i++)
        {
            using Process p = Run.Start("/bin/true");
            p.WaitForExit();
        }
        Assert.True(Lost(sensor, RecordKind.Exit) > 0, "1000 processes did not fill a 4 KB ring nobody reads");
    }

    /// <summary>Polls a stalled sensor (reads the ring, then the work between reads) until <paramref name="done"/>, at most 10 s.</summary>
    private static void PollUntil(SensorHarness sensor, Func<bool> done, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                string recent = string.Join("\n", sensor.Events.TakeLast(10).Select(e => e.ToString()[..Math.Min(300, e.ToString().Length)]));
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}. Last events:\n{recent}");
            }
            sensor.Sensor.Poll(10);
        }
    }

    private static string[] JudgedLatePids(SensorHarness sensor) =>
        [.. sensor.Events.Where(e => e.Action == "judge-late")
            .SelectMany(e => e.Json.GetProperty("guard").GetProperty("action").GetProperty("pids").EnumerateArray().Select(p => p.GetInt32().ToString(CultureInfo.InvariantCulture)))];

    /// <summary>
    /// Starts <paramref name="worker"/> with <paramref name="args"/> in a network namespace of
    /// its own into the full ring of a stalled sensor; proves its exec record was lost.
    /// </summary>
    private static Process StartIntoFullRing(SensorHarness sensor, string worker, params string[] args)
    {
        ulong lostBefore = Lost(sensor, RecordKind.Exec);
        Process p = Run.Start("unshare", ["--net", worker, .. args]);
        Run.WaitFor(() => ProcfsReader.TryReadStat(p.Id, out ProcfsStat s) && s.Name.AsSpan().SequenceEqual(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(worker))), "the worker to run");
        Assert.True(Lost(sensor, RecordKind.Exec) > lostBefore, "its exec record was not lost, so the ring was not full");
        return p;
    }

    [Fact]
    public void AMinerWhoseExecRecordWasLostIsJudgedLateAndKilled()
    {
        using var dir = new TempDir();
        string worker = Path.Combine(dir.Path, "worker");
        File.Move(dir.Compile("sleeper"), worker);
        using SensorHarness sensor = StalledSensor();
        Fill(sensor);
        using Process miner = StartIntoFullRing(sensor, worker, "--donate-level", "1");
        try
        {
            PollUntil(sensor, () => miner.HasExited, "the worker whose exec record was lost to be killed");
            Assert.Equal(137, miner.ExitCode);
            RecordedEvent alert = sensor.WaitFor("its alert", e => e.Action == "miner-arguments" && e.Pid == miner.Id);
            PollUntil(sensor, () => JudgedLatePids(sensor).Contains(miner.Id.ToString(CultureInfo.InvariantCulture)), "a judge-late event naming it");
            RecordedEvent late = sensor.Events.First(e => e.Action == "judge-late");
            Assert.Matches(@"^judged \d+ process(es)? late after \d+ lost records? ", late.Json.GetProperty("event").GetProperty("reason").GetString());
        }
        finally
        {
            if (!miner.HasExited)
                miner.Kill();
        }
    }

    [Fact]
    public void ArgumentsPastTheExecRecordsKilobyteAreReadWholeWhenJudgedLate()
    {
        using var dir = new TempDir();
        string worker = Path.Combine(dir.Path, "worker");
        File.Move(dir.Compile("sleeper"), worker);
        // The adversary's padding: the flag starts past byte 1,100, beyond what an exec record keeps.
        string[] padding = [.. Enumerable.Range(0, 60).Select(i => $"--verbose-padding-{i:D4}")];
        Assert.True(string.Join(' ', padding).Length > 1100);
        using SensorHarness sensor = StalledSensor();
        Fill(sensor);
        using Process miner = StartIntoFullRing(sensor, worker, [.. padding, "--donate-level", "1"]);
        try
        {
            PollUntil(sensor, () => miner.HasExited, "the worker with its flag past byte 1,100 to be killed");
            RecordedEvent alert = sensor.WaitFor("its alert", e => e.Action == "miner-arguments" && e.Pid == miner.Id);
            Assert.Equal("--donate-level", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("argument").GetString());
        }
        finally
        {
            if (!miner.HasExited)
                miner.Kill();
        }
    }

    [Fact]
    public void AProcessWhoseForkWasSeenButWhoseExecWasLostIsJudgedLate()
    {
        using var dir = new TempDir();
        string worker = Path.Combine(dir.Path, "worker");
        File.Move(dir.Compile("sleeper"), worker);
        // Forked while the ring has room; it execs the miner's command line once told, into a full ring.
        // The flag is put together at run time: the parent's own arguments (this script) must not carry it.
        const string parent = """
            import os, sys
            child = os.fork()
            if child == 0:
                sys.stdin.readline()
                os.execv('/usr/bin/unshare', ['unshare', '--net', sys.argv[1], '--donate' + '-level', '1'])
            print(child, flush=True)
            os.waitpid(child, 0)
            """;
        using SensorHarness sensor = StalledSensor(new KernelOptions { RingBufferBytes = 64 << 10 });
        using Process python = Run.PythonScript(parent, worker);
        int child = int.Parse(python.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        var own = new OwnProcesses();
        try
        {
            own.Add(child);
            Fill(sensor);
            ulong lostBefore = Lost(sensor, RecordKind.Exec);
            python.StandardInput.WriteLine("go");
            Run.WaitFor(() => ProcfsReader.TryReadStat(child, out ProcfsStat s) && s.Name.AsSpan().SequenceEqual("worker"u8), "the child to exec the worker");
            Assert.True(Lost(sensor, RecordKind.Exec) > lostBefore, "its exec record was not lost, so the ring was not full");

            PollUntil(sensor, () => python.HasExited, "the worker to be killed (its parent then ends)");
            Assert.Contains(sensor.Events, e => e.Action == "fork" && e.Pid == child); // the table knew it: only the kernel's list said it exec'd
            Assert.Contains(sensor.Events, e => e.Action == "miner-arguments" && e.Pid == child);
            PollUntil(sensor, () => JudgedLatePids(sensor).Contains(child.ToString(CultureInfo.InvariantCulture)), "a judge-late event naming it");
        }
        finally
        {
            own.Dispose();
            if (!python.HasExited)
                python.Kill();
        }
    }

    [Fact]
    public void AFloodThatKeepsTheRingFullHidesNoMiner()
    {
        // The adversary's c4: a 4 KB ring read as fast as the sensor can while two floods of execs keep it full.
        using var dir = new TempDir();
        string flood = dir.Compile("flood");
        string worker = Path.Combine(dir.Path, "worker");
        File.Move(dir.Compile("sleeper"), worker);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn, Kernel = new KernelOptions { RingBufferBytes = 4096 } });
        using Process flood1 = Run.Start(flood, "8", "8192");
        using Process flood2 = Run.Start(flood, "8", "8192");
        Process? miner = null;
        try
        {
            Run.WaitFor(() => Lost(sensor, RecordKind.Exec) > 100, "the floods to fill the ring");
            miner = Run.Start("unshare", "--net", worker, "--donate-level", "1");
            Assert.True(miner.WaitForExit(5000), "under the flood, the worker lived 5 s");
            Assert.Equal(137, miner.ExitCode);
            Assert.False(flood1.HasExited || flood2.HasExited, "the floods ended before the worker was judged: the ring may have had room");
            sensor.WaitFor("the alert about it", e => e.Action == "miner-arguments" && e.Pid == miner.Id);
            sensor.WaitFor("a judge-late event", e => e.Action == "judge-late", 5000);
        }
        finally
        {
            if (miner is { HasExited: false })
                miner.Kill();
            miner?.Dispose();
            foreach (Process f in new[] { flood1, flood2 })
            {
                if (!f.HasExited)
                    f.Kill();
            }
        }
    }

    [Fact]
    public void AKnownMinerExecdIntoAFullRingIsKilledEveryTime()
    {
        using var dir = new TempDir();
        string miner = dir.ExecutableCopy("/bin/true", "xmrig");
        using SensorHarness sensor = StalledSensor();
        Fill(sensor);

        for (int trial = 1; trial <= Trials; trial++)
        {
            ulong lostBefore = Lost(sensor, RecordKind.Exec);
            using Process p = Run.Start(miner);
            Assert.True(p.WaitForExit(5000), $"trial {trial}: the stand-in did not end");
            Assert.True(Lost(sensor, RecordKind.Exec) > lostBefore, $"trial {trial}: its exec record was not lost, so the ring was not full");
            Assert.True(p.ExitCode == 137, $"trial {trial}: exit {p.ExitCode}, not SIGKILL (137): the kernel's verdict was skipped");
        }
    }

    [Fact]
    public void AChildForkedIntoAFullRingStaysInItsJob()
    {
        using var dir = new TempDir();
        // A real program elsewhere: killed only inside a job, so only membership kept at fork kills it.
        string miner = dir.ExecutableCopy("/bin/true", "rigel");
        // python3 is a job root; for each line it forks a child that execs the miner name.
        const string root = """
            import os, sys
            for _ in sys.stdin:
                pid = os.fork()
                if pid == 0:
                    os.execv(sys.argv[1], [sys.argv[1]])
                _, status = os.waitpid(pid, 0)
                print(f"signal={os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit={os.WEXITSTATUS(status)}", flush=True)
            """;
        using SensorHarness sensor = StalledSensor();
        using Process job = Run.PythonScript(root, miner);
        try
        {
            Fill(sensor);
            for (int trial = 1; trial <= Trials; trial++)
            {
                ulong lostBefore = Lost(sensor, RecordKind.Fork);
                job.StandardInput.WriteLine("go");
                string? result = job.StandardOutput.ReadLine();
                Assert.True(Lost(sensor, RecordKind.Fork) > lostBefore, $"trial {trial}: the fork record was not lost, so the ring was not full");
                Assert.True(result == "signal=9", $"trial {trial}: the child's miner ended with {result ?? job.StandardError.ReadToEnd()}, not SIGKILL: the child left its job");
            }
        }
        finally
        {
            job.StandardInput.Close();
            if (!job.WaitForExit(5000))
                job.Kill();
        }
    }

    [Fact]
    public void AStratumLineSentIntoAFullRingIsStillDropped()
    {
        using var dir = new TempDir();
        string received = Path.Combine(dir.Path, "received");
        string line = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).First(l => l.StartsWith('{'));
        string first = dir.File("first-line", line);
        using SensorHarness sensor = StalledSensor();
        Fill(sensor);
        ulong lostBefore = Lost(sensor, RecordKind.Payload);

        string script = $"ip link set lo up; {Run.Python} {dir.File("pool.py", StratumTests.Pool)} {received} & "
            + $"{Run.Python} {dir.File("miner.py", StratumTests.Miner)} {received} whole {first}; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        Assert.True(ns.WaitForExit(15_000), "the pool and miner did not finish");

        Assert.True(Lost(sensor, RecordKind.Payload) > lostBefore, "the payload record was not lost, so the ring was not full");
        Assert.Empty(File.ReadAllBytes(received)); // not a byte of the line, nor of what followed
    }

    [Fact]
    public void AGpuTouchWhoseRecordWasLostIsRecordedAtTheNextTouch()
    {
        // /dev/full (1:7) stands in for a GPU, as in GpuIoctlTests. The ring is larger
        // here: once drained, the machine's other processes must not refill it at once.
        const string toucher = """
            import fcntl, os, sys
            for _ in sys.stdin:
                fd = os.open('/dev/full', os.O_RDWR)
                try:
                    fcntl.ioctl(fd, (3 << 30) | (32 << 16) | (ord('F') << 8) | 0x2A, bytearray(32), True)
                except OSError:
                    pass
                os.close(fd)
                print('touched', flush=True)
            """;
        var kernel = new KernelOptions { RingBufferBytes = 64 << 10, GpuDevices = [new GpuDevice(1, 7, GpuRole.ResourceManager)] };
        using SensorHarness sensor = StalledSensor(kernel);
        using Process python = Run.PythonScript(toucher);
        try
        {
            Fill(sensor);
            ulong opensLost = Lost(sensor, RecordKind.GpuOpen), ioctlsLost = Lost(sensor, RecordKind.GpuIoctl);
            python.StandardInput.WriteLine("touch");
            Assert.Equal("touched", python.StandardOutput.ReadLine());
            Assert.True(Lost(sensor, RecordKind.GpuOpen) > opensLost && Lost(sensor, RecordKind.GpuIoctl) > ioctlsLost,
                "the first touch's records were not lost, so the ring was not full");

            while (sensor.Sensor.Poll(0) > 0)
            {
            }
            // The lost records are not made up (a gpu-activity line from the kernel's counters, which
            // count whatever the ring loses, may come at the periodic flush: that is not these records).
            Assert.DoesNotContain(sensor.Events, e => e.Action is "gpu-open" or "gpu-first-ioctl" && e.Pid == python.Id);
            python.StandardInput.WriteLine("touch");
            Assert.Equal("touched", python.StandardOutput.ReadLine());
            sensor.Sensor.Poll(0);
            Assert.Contains(sensor.Events, e => e.Action == "gpu-open" && e.Pid == python.Id);
            Assert.Contains(sensor.Events, e => e.Action == "gpu-first-ioctl" && e.Pid == python.Id);
        }
        finally
        {
            python.StandardInput.Close();
            if (!python.WaitForExit(5000))
                python.Kill();
        }
    }
}
