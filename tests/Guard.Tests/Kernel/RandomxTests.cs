using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// RandomX's rounding-mode fingerprint against interval arithmetic. The
/// stand-in (Fixtures/standins/rounding.c, compiled here) does numeric work
/// in rounding modes drawn among those it is given, or holds one; it is
/// silent on the network and runs under an innocent name, beside an ordinary
/// spinner on the same CPU, so it is switched out both when it sleeps and
/// when the scheduler preempts it.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed partial class RandomxTests
{
    private static string CompileStandIn(TempDir dir)
    {
        string binary = Path.Combine(dir.Path, "solver");
        Run.Complete("clang", "-O2", "-Wall", "-Werror", "-o", binary, Path.Combine(AppContext.BaseDirectory, "Fixtures", "standins", "rounding.c"), "-lm");
        return binary;
    }

    private static Process OrdinarySpinner(int seconds) =>
        Run.Start("taskset", "-c", "0", "/bin/sh", "-c", $"end=$(($(date +%s)+{seconds})); while [ $(date +%s) -lt $end ]; do :; done");

    private static Process StandIn(string binary, int seconds, params string[] modes) =>
        Run.Start("taskset", ["-c", "0", binary, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. modes]);

    /// <summary>The stand-in on <paramref name="cpu"/>, its modes in the x87 control word alone (fldcw; MXCSR left at nearest).</summary>
    private static Process X87StandIn(string binary, int cpu, int seconds, params string[] modes) =>
        Run.Start("taskset", ["-c", cpu.ToString(System.Globalization.CultureInfo.InvariantCulture), binary, "--x87", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. modes]);

    [Fact]
    public void AProcessCyclingThroughTheRoundingModesIsFoundAndKilled()
    {
        using var dir = new TempDir();
        string solver = CompileStandIn(dir);
        Policy policy = Policies.Over("[thresholds]\nrandomx_rounding_switches = 50\nrandomx_window_seconds = 10\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });
        Assert.Contains(sensor.Sensor.Kernel.Attached, a => a.Spec.Name == BpfProgramNames.Fpu);

        using Process ordinary = OrdinarySpinner(20);
        using Process cycler = StandIn(solver, 20, "nearest", "down", "up", "zero"); // CFROUND draws among all four
        try
        {
            RecordedEvent alert = sensor.WaitFor("randomx alert", e => e.Action == "randomx", timeoutMs: 15_000);
            Assert.Equal(cycler.Id, alert.Pid);
            JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
            JsonElement evidence = finding.GetProperty("evidence");
            Assert.True(evidence.GetProperty("rounding_switches").GetInt32() >= 50);
            Assert.Matches(@"^down=\d+ up=\d+ toward-zero=\d+$", evidence.GetProperty("rounding_modes").GetString());
            Assert.StartsWith("killed", finding.GetProperty("response")[0].GetString(), StringComparison.Ordinal);
            Assert.True(cycler.WaitForExit(5000));
            Assert.Equal(137, cycler.ExitCode);
            Assert.False(ordinary.HasExited, "the ordinary spinner keeps running");
            Assert.DoesNotContain(sensor.Events, e => e.Action == "randomx" && e.Pid != cycler.Id);
        }
        finally
        {
            if (!cycler.HasExited)
                cycler.Kill();
            ordinary.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// The same draw among all four modes done in the x87 control word
    /// (fldcw, rounding control bits 10-11) with MXCSR left at nearest, alone
    /// on its CPU, under the built-in policy: the kernel reads the control
    /// word from the same saved FPU state, and the process is killed in 30 s.
    /// </summary>
    [Fact]
    public void AProcessCyclingTheX87RoundingModesIsFoundAndKilled()
    {
        using var dir = new TempDir();
        string solver = CompileStandIn(dir);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process cycler = X87StandIn(solver, AloneCpu, 60, "nearest", "down", "up", "zero");
        var running = Stopwatch.StartNew();
        try
        {
            AssertKilledAsAProcess(sensor, cycler);
            Assert.True(running.Elapsed < TimeSpan.FromSeconds(30), $"killed {running.Elapsed.TotalSeconds:F1} s after it started");
            JsonElement evidence = sensor.Events.First(e => e.Action == "randomx").Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
            Assert.Matches(@"^down=[1-9]\d* up=[1-9]\d* toward-zero=[1-9]\d*$", evidence.GetProperty("rounding_modes").GetString());
        }
        finally
        {
            if (!cycler.HasExited)
                cycler.Kill();
        }
    }

    /// <summary>
    /// CGAL holds FE_UPWARD around its interval arithmetic; Boost's
    /// rounded_arith_std alternates FE_DOWNWARD and FE_UPWARD. Either, held
    /// for longer than the window (8 s against 3), is left alone by the
    /// enforcing policy, though the kernel saw it switched out in a directed
    /// mode far more often than the switch threshold.
    /// </summary>
    [Theory]
    [InlineData(false, "up")]
    [InlineData(false, "down", "up")]
    [InlineData(true, "up")] // x87 interval arithmetic (long double) holding its mode in the control word alone: seen there, still one mode
    [InlineData(true, "down", "up")]
    public void AnIntervalArithmeticWorkerIsLeftAlone(bool x87, params string[] modes)
    {
        using var dir = new TempDir();
        string solver = CompileStandIn(dir);
        Policy policy = Policies.Over("[thresholds]\nrandomx_rounding_switches = 50\nrandomx_window_seconds = 3\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });

        using Process ordinary = OrdinarySpinner(10);
        using Process worker = x87 ? X87StandIn(solver, 0, 8, modes) : StandIn(solver, 8, modes);
        try
        {
            Thread.Sleep(6000);
            var counts = new List<(int Pid, GuardRounding Switches)>();
            sensor.Sensor.Kernel.ReadRoundingSwitches(counts);
            (int _, GuardRounding seen) = Assert.Single(counts, c => c.Pid == worker.Id);
            ulong[] byMode = [seen.Switches[0], seen.Switches[1], seen.Switches[2]];
            Assert.True(byMode.Sum(c => (long)c) >= 4 * 50, $"the kernel saw the worker switched out in a directed mode only {string.Join('/', byMode)} times (down/up/toward zero): the test shows nothing");
            Assert.Equal(0UL, byMode[2]); // never toward zero

            Assert.True(worker.WaitForExit(10_000), "the worker did not finish");
            Assert.Equal(0, worker.ExitCode);
            Assert.DoesNotContain(sensor.Events, e => e.Action == "randomx");
            // Its last counts are read once more (a life shorter than a sampling still counts), then
            // nothing is left for the next process with its pid. (The sensor's own sampling may have read them first.)
            counts.Clear();
            sensor.Sensor.Kernel.ReadRoundingSwitches(counts);
            Assert.True(counts.Count(c => c.Pid == worker.Id) <= 1);
            Assert.All(counts.Where(c => c.Pid == worker.Id), c => Assert.Equal(seen.StartTimeNs, c.Switches.StartTimeNs));
            counts.Clear();
            sensor.Sensor.Kernel.ReadRoundingSwitches(counts);
            Assert.DoesNotContain(counts, c => c.Pid == worker.Id);
        }
        finally
        {
            if (!worker.HasExited)
                worker.Kill();
            ordinary.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// Fixtures/standins/randomx-hasher.c against librandomx (tevador's
    /// reference implementation; packaging/setup.sh installs librandomx-dev):
    /// RandomX itself, not a model of it.
    /// </summary>
    private static string CompileHasher(TempDir dir)
    {
        if (!File.Exists("/usr/include/randomx.h"))
            throw new Xunit.Sdk.XunitException("librandomx-dev is not installed (randomx.h missing): run packaging/setup.sh");
        string binary = Path.Combine(dir.Path, "trainer");
        Run.Complete("clang", "-O2", "-Wall", "-Werror", "-o", binary, Path.Combine(AppContext.BaseDirectory, "Fixtures", "standins", "randomx-hasher.c"), "-lrandomx");
        return binary;
    }

    /// <summary>The hasher on CPU 0 beside the ordinary spinner, in a network namespace of its own; returns once its cache is made.</summary>
    private static Process Hasher(string binary, int seconds, int? hopMs = null) => Hasher(binary, seconds, 0, hopMs is { } hop ? [hop.ToString(System.Globalization.CultureInfo.InvariantCulture)] : []);

    /// <summary>The hasher on <paramref name="cpu"/>, <paramref name="options"/> first and the rest after its seconds.</summary>
    private static Process Hasher(string binary, int seconds, int cpu, string[] after, params string[] options)
    {
        string[] args = ["--net", "taskset", "-c", cpu.ToString(System.Globalization.CultureInfo.InvariantCulture), binary, .. options, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. after];
        Process hasher = Run.Start("unshare", args);
        Assert.Equal("ready", hasher.StandardOutput.ReadLine());
        return hasher;
    }

    /// <summary>The last CPU: the hasher alone there, on the machine as it is (no spinner of the test's own beside it).</summary>
    private static int AloneCpu => Environment.ProcessorCount - 1;

    private static long NonvoluntarySwitches(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)).Split(':')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The sampling is the sensor's choice: with the default policy a pinned
    /// SCHED_FIFO thread on each CPU wakes 100 times a second, and a spinner
    /// that never sleeps is switched out (involuntarily) at least at about
    /// that rate, against what the machine's own load does to it without them.
    /// </summary>
    [Fact]
    public void TheSensorSwitchesOutAThreadThatNeverSleepsAtItsOwnRate()
    {
        const int Seconds = 3;
        using Process bare = Run.Start("taskset", "-c", AloneCpu.ToString(System.Globalization.CultureInfo.InvariantCulture), "/bin/sh", "-c", "while :; do :; done"); // a builtin loop: no child to wait for, never a sleep
        long before;
        try
        {
            long start = NonvoluntarySwitches(bare.Id);
            Thread.Sleep(Seconds * 1000);
            before = NonvoluntarySwitches(bare.Id) - start;
        }
        finally
        {
            bare.Kill(entireProcessTree: true);
        }
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        PreemptingThreads threads = sensor.Sensor.Preempting ?? throw new Xunit.Sdk.XunitException($"no preempting threads run under the default policy: {string.Join("; ", sensor.Sensor.Warnings)}");
        Assert.Equal(Thresholds.DefaultRandomxSamplingHz, threads.RatePerSecond);
        Assert.Equal(PreemptingThreads.ParseCpuList(File.ReadAllText("/sys/devices/system/cpu/online")), threads.Cpus); // the online CPUs, not the test's own
        Assert.True(threads.RealTimeThreads == threads.Cpus.Count, string.Join("; ", threads.Warnings));
        using Process spinner = Run.Start("taskset", "-c", AloneCpu.ToString(System.Globalization.CultureInfo.InvariantCulture), "/bin/sh", "-c", "while :; do :; done"); // a builtin loop: no child to wait for, never a sleep
        try
        {
            long start = NonvoluntarySwitches(spinner.Id), wakes = threads.Wakes;
            Thread.Sleep(Seconds * 1000);
            long during = NonvoluntarySwitches(spinner.Id) - start;
            wakes = threads.Wakes - wakes;
            // Each wake on its CPU that finds the spinner running switches it out; the machine's other load takes some of the CPU.
            Assert.True(wakes >= Seconds * Thresholds.DefaultRandomxSamplingHz * threads.Cpus.Count * 8 / 10, $"{wakes} wakes in {Seconds} s on {threads.Cpus.Count} CPUs");
            Assert.True(during >= Seconds * Thresholds.DefaultRandomxSamplingHz / 2, $"the spinner was switched out {during} times in {Seconds} s with the sensor's threads ({before} without)");
        }
        finally
        {
            spinner.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// The sensor confined to CPU 0 (taskset, or a unit's CPUAffinity on
    /// housekeeping CPUs): its threads are still one on each online CPU,
    /// pinned there at the top SCHED_FIFO priority, and a spinner on the last
    /// CPU is still switched out at about the sampling rate. The test thread
    /// narrows its own affinity before it starts the sensor, so every thread
    /// the sensor makes inherits it, as under `taskset -c 0 guard watch`.
    /// </summary>
    [Fact]
    public unsafe void UnderANarrowedAffinityEveryOnlineCpuIsStillSampledAtTheTopPriority()
    {
        List<int> online = PreemptingThreads.ParseCpuList(File.ReadAllText("/sys/devices/system/cpu/online")) ?? throw new Xunit.Sdk.XunitException("/sys/devices/system/cpu/online is not a CPU list");
        if (online.Count < 2 || online[0] != 0)
            throw new Xunit.Sdk.XunitException($"the test needs CPU 0 and another online ({string.Join(',', online)}): nothing is narrowed on this machine");
        const int MaskBytes = 128;
        byte* saved = stackalloc byte[MaskBytes];
        byte* cpu0 = stackalloc byte[MaskBytes];
        new Span<byte>(cpu0, MaskBytes).Clear();
        cpu0[0] = 1;
        Assert.Equal(0, SchedGetAffinity(0, MaskBytes, saved));
        SensorHarness sensor;
        Assert.Equal(0, SchedSetAffinity(0, MaskBytes, cpu0));
        try
        {
            sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        }
        finally
        {
            Assert.Equal(0, SchedSetAffinity(0, MaskBytes, saved));
        }
        using (sensor)
        {
            PreemptingThreads threads = sensor.Sensor.Preempting ?? throw new Xunit.Sdk.XunitException($"no preempting threads run under the default policy: {string.Join("; ", sensor.Sensor.Warnings)}");
            Assert.Equal(online, threads.Cpus);
            Assert.True(threads.PinnedThreads == online.Count && threads.RealTimeThreads == online.Count, string.Join("; ", threads.Warnings));
            Assert.Equal(99, threads.FifoPriority);
            // What the kernel says of each thread: its CPU, its policy and its priority.
            var seen = new Dictionary<int, string>();
            foreach (string task in Directory.EnumerateDirectories($"/proc/{Environment.ProcessId}/task"))
            {
                string stat;
                string status;
                try
                {
                    stat = File.ReadAllText(Path.Combine(task, "stat"));
                    status = File.ReadAllText(Path.Combine(task, "status"));
                }
                catch (IOException)
                {
                    continue; // a thread that ended meanwhile
                }
                int open = stat.IndexOf('(', StringComparison.Ordinal), close = stat.LastIndexOf(')');
                if (!stat[(open + 1)..close].StartsWith("guard preempt", StringComparison.Ordinal))
                    continue;
                string[] fields = stat[(close + 2)..].Split(' '); // fields[0] is stat field 3
                string allowed = status.Split('\n').First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();
                seen[int.Parse(allowed, System.Globalization.CultureInfo.InvariantCulture)] = $"rt_priority {fields[40 - 3]} policy {fields[41 - 3]}";
            }
            Assert.Equal(online, seen.Keys.Order());
            Assert.All(seen.Values, v => Assert.Equal("rt_priority 99 policy 1", v)); // SCHED_FIFO 99

            const int Seconds = 3;
            int last = online[^1];
            using Process spinner = Run.Start("taskset", "-c", last.ToString(System.Globalization.CultureInfo.InvariantCulture), "/bin/sh", "-c", "while :; do :; done");
            try
            {
                long start = NonvoluntarySwitches(spinner.Id);
                Thread.Sleep(Seconds * 1000);
                long during = NonvoluntarySwitches(spinner.Id) - start;
                Assert.True(during >= Seconds * Thresholds.DefaultRandomxSamplingHz / 2, $"a spinner on CPU {last} was switched out {during} times in {Seconds} s with the sensor confined to CPU 0");
            }
            finally
            {
                spinner.Kill(entireProcessTree: true);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity")]
    private static unsafe partial int SchedGetAffinity(int pid, nuint size, byte* mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity")]
    private static unsafe partial int SchedSetAffinity(int pid, nuint size, byte* mask);

    /// <summary>
    /// The hasher that sets nearest before each sleep, run as the adversary
    /// ran it at SCHED_FIFO 2 (above the preempting threads' old priority 1):
    /// the sensor's threads at the top priority still preempt it, and it is
    /// killed in 30 s. (It holds most of its CPU while it runs; RT throttling
    /// leaves the rest 5%.)
    /// </summary>
    [Fact]
    public void AHasherAtALowRealTimePriorityIsStillFoundAndKilled()
    {
        using var dir = new TempDir();
        string trainer = CompileHasher(dir);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        Assert.NotNull(sensor.Sensor.Preempting);
        using Process hasher = Run.Start("unshare", "--net", "chrt", "-f", "2", "taskset", "-c", AloneCpu.ToString(System.Globalization.CultureInfo.InvariantCulture), trainer, "--nearest-sleep", "30");
        Assert.Equal("ready", hasher.StandardOutput.ReadLine());
        var hashing = Stopwatch.StartNew();
        try
        {
            Assert.Equal("1", File.ReadAllText($"/proc/{hasher.Id}/stat").Split(')')[1].Split(' ')[41 - 2]); // SCHED_FIFO, as asked
            AssertKilledAsAProcess(sensor, hasher);
            Assert.True(hashing.Elapsed < TimeSpan.FromSeconds(30), $"killed {hashing.Elapsed.TotalSeconds:F1} s after its first hash");
        }
        finally
        {
            if (!hasher.HasExited)
                hasher.Kill();
        }
    }

    /// <summary>
    /// RandomX that hides its modes: after every hash it sets the rounding mode
    /// back to nearest and sleeps 1 ms, so every switch it makes itself shows
    /// the default mode. Alone on its CPU, under the built-in policy, it is
    /// found by the sensor's own preemption, mid-hash, and killed in 30 s.
    /// </summary>
    [Fact]
    public void AHasherThatSetsNearestBeforeEachSleepIsFoundAndKilled() => AloneHasherIsKilled("--nearest-sleep");

    /// <summary>The plain hasher alone on its CPU: it never sleeps, and is switched out when the sensor chooses.</summary>
    [Fact]
    public void AHasherAloneOnItsCpuIsFoundAndKilled() => AloneHasherIsKilled();

    private static void AloneHasherIsKilled(params string[] options)
    {
        using var dir = new TempDir();
        string trainer = CompileHasher(dir);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        Assert.NotNull(sensor.Sensor.Preempting);
        using Process hasher = Hasher(trainer, 60, AloneCpu, [], options);
        var hashing = Stopwatch.StartNew();
        try
        {
            AssertKilledAsAProcess(sensor, hasher);
            Assert.True(hashing.Elapsed < TimeSpan.FromSeconds(30), $"killed {hashing.Elapsed.TotalSeconds:F1} s after its first hash");
        }
        finally
        {
            if (!hasher.HasExited)
                hasher.Kill();
        }
    }

    /// <summary>Within 30 s the hasher is found in the process scope, its alert says it was killed, and it died of SIGKILL.</summary>
    private static void AssertKilledAsAProcess(SensorHarness sensor, Process hasher)
    {
        RecordedEvent alert = sensor.WaitFor("randomx alert", e => e.Action == "randomx", timeoutMs: 30_000);
        Assert.Equal(hasher.Id, alert.Pid);
        JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
        Assert.Equal("process", finding.GetProperty("evidence").GetProperty("rounding_scope").GetString());
        Assert.StartsWith("killed", finding.GetProperty("response")[0].GetString(), StringComparison.Ordinal);
        Assert.True(hasher.WaitForExit(5000));
        Assert.Equal(137, hasher.ExitCode);
    }

    [Fact]
    public void ARealRandomxHasherIsFoundAndKilledUnderTheDefaultThresholds()
    {
        using var dir = new TempDir();
        string trainer = CompileHasher(dir);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process ordinary = OrdinarySpinner(60);
        using Process hasher = Hasher(trainer, 60);
        try
        {
            AssertKilledAsAProcess(sensor, hasher);
            Assert.False(ordinary.HasExited, "the ordinary spinner keeps running");
        }
        finally
        {
            if (!hasher.HasExited)
                hasher.Kill();
            ordinary.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// The hasher hops to a fresh process (fork, then the old one exits) every
    /// few hundred or few tens of milliseconds, so no process is switched out the default 200 times in its
    /// short life: the switches of its line of processes, one program, are
    /// summed, and the one hashing now is killed, which ends the line.
    /// </summary>
    [Theory]
    [InlineData(300)]
    [InlineData(40)] // shorter than a sampling: each process is read once, from the counts the kernel kept at its exit
    public void AHasherThatHopsToAFreshProcessEveryFewHundredMillisecondsIsFoundAsOneProgram(int hopMs)
    {
        using var dir = new TempDir();
        string trainer = CompileHasher(dir);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process ordinary = OrdinarySpinner(60);
        using Process hasher = Hasher(trainer, 60, hopMs);
        using var own = new OwnProcesses();
        try
        {
            RecordedEvent alert = sensor.WaitFor("randomx alert", e => e.Action == "randomx", timeoutMs: 30_000);
            JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
            JsonElement evidence = finding.GetProperty("evidence");
            Assert.Equal("program", evidence.GetProperty("rounding_scope").GetString());
            Assert.True(evidence.GetProperty("rounding_processes").GetInt32() >= 2, evidence.ToString());
            Assert.StartsWith("killed", finding.GetProperty("response")[0].GetString(), StringComparison.Ordinal);
            // The line ends: no process of it hashes on.
            Thread.Sleep(1000);
            List<int> left = OwnProcesses.Running(trainer);
            Assert.True(left.Count == 0, $"{left.Count} processes of the hasher's line still run after the kill");
            Assert.DoesNotContain(sensor.Events, e => e.Action == "randomx" && e.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("rounding_scope").GetString() == "process");
        }
        finally
        {
            if (!hasher.HasExited)
                hasher.Kill();
            foreach (int pid in OwnProcesses.Running(trainer)) // the line's later processes: this test's own binary
            {
                try
                {
                    _ = own.Add(pid);
                }
                catch (Xunit.Sdk.XunitException)
                {
                    // It ended meanwhile.
                }
            }
            own.KillAll();
            ordinary.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// A shell loop that alternates two copies of the hasher (two executables: no line of one
    /// program), each hashing a second, under the count alone, outside any job: their launcher,
    /// the shell, sums them, and as it runs as the same user it is the one killed, tree and all,
    /// which ends the loop.
    /// </summary>
    [Fact]
    public void ALoopAlternatingTwoCopiesOfAHasherIsFoundAsItsLauncherAndEnded()
    {
        using var dir = new TempDir();
        string trainer = CompileHasher(dir);
        string a = Path.Combine(dir.Path, "train-a");
        string b = Path.Combine(dir.Path, "train-b");
        File.Copy(trainer, a);
        File.Copy(trainer, b);
        File.SetUnixFileMode(a, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        File.SetUnixFileMode(b, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process ordinary = OrdinarySpinner(60);
        using Process loop = Run.Start("unshare", "--net", "taskset", "-c", "0", "/bin/sh", "-c", $"while :; do {a} 1 >/dev/null; {b} 1 >/dev/null; done");
        using var own = new OwnProcesses();
        try
        {
            RecordedEvent alert = sensor.WaitFor("randomx alert", e => e.Action == "randomx", timeoutMs: 40_000);
            JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
            Assert.True(evidence.GetProperty("rounding_scope").GetString() == "launcher", $"found as {evidence}: a copy switched out the count alone, the test shows nothing of the launcher");
            Assert.Equal(loop.Id, alert.Pid);
            Assert.True(evidence.GetProperty("rounding_processes").GetInt32() >= 2, evidence.ToString());
            Assert.True(loop.WaitForExit(5000), "the loop runs on after its launcher was named");
            Assert.Equal(137, loop.ExitCode);
            Thread.Sleep(500);
            Assert.Empty(OwnProcesses.Running(a).Concat(OwnProcesses.Running(b)));
        }
        finally
        {
            if (!loop.HasExited)
                loop.Kill(entireProcessTree: true);
            foreach (int pid in OwnProcesses.Running(a).Concat(OwnProcesses.Running(b)))
            {
                try
                {
                    _ = own.Add(pid);
                }
                catch (Xunit.Sdk.XunitException)
                {
                    // It ended meanwhile.
                }
            }
            own.KillAll();
            ordinary.Kill(entireProcessTree: true);
        }
    }
}
