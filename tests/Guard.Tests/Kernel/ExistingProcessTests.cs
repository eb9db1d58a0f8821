using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Processes that were running before the sensor started: the kernel never
/// saw them exec, so the sensor judges them at start by the rules an exec
/// meets. Every stand-in is started by the test and outlives nothing.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ExistingProcessTests
{
    private static SensorHarness Watch() => SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

    private static JsonElement Evidence(RecordedEvent alert) =>
        alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");

    private static Process Started(string file, params string[] args)
    {
        Process p = Run.Start(file, args);
        Run.WaitFor(() => ProcfsReader.TryReadStat(p.Id, out _), "the stand-in to run");
        return p;
    }

    /// <summary>
    /// Starts a sensor with <paramref name="miner"/> already running: the
    /// <paramref name="rule"/> alert about it, once it is dead. The miner is
    /// killed here whatever the outcome.
    /// </summary>
    private static RecordedEvent KilledAtStart(Process miner, string rule)
    {
        try
        {
            using SensorHarness sensor = Watch();
            RecordedEvent alert = sensor.WaitFor(rule, e => e.Action == rule && e.Pid == miner.Id);
            Assert.True(miner.WaitForExit(5000), $"a process found by {rule} that ran before the sensor lives on");
            return alert;
        }
        finally
        {
            if (!miner.HasExited)
                miner.Kill();
        }
    }

    [Fact]
    public void AKnownMinerRunningBeforeTheSensorIsKilledWhenItStarts()
    {
        using var dir = new TempDir();
        using Process miner = Started(dir.ExecutableCopy("/bin/sleep", "xmrig"), "60");
        RecordedEvent alert = KilledAtStart(miner, "known-miner");
        Assert.True(Evidence(alert).GetProperty("running_before_start").GetBoolean());
        Assert.Equal(Sha256.HexOf(File.ReadAllBytes("/bin/sleep")), Evidence(alert).GetProperty("sha256").GetString());
    }

    [Fact]
    public void AMinerRenamedWithPrctlIsKnownByTheFileItRuns()
    {
        using var dir = new TempDir();
        string xmrig = Path.Combine(dir.Path, "xmrig");
        File.Move(dir.Compile("renamed"), xmrig);
        // comm becomes "kworker" before the sensor starts; the file it runs is still named xmrig.
        using Process miner = Started(xmrig);
        Assert.Equal("renamed", miner.StandardOutput.ReadLine());
        KilledAtStart(miner, "known-miner");
    }

    [Fact]
    public void MinerArgumentsRunningBeforeTheSensorAreKilledWhenItStarts()
    {
        using Process miner = Started(Run.Python, "-c", "import time; time.sleep(60)", "--donate-level", "1", "-o", "stratum+tcp://127.0.0.1:3333");
        KilledAtStart(miner, "miner-arguments");
    }

    [Fact]
    public void ABenignTrainingCommandRunningBeforeTheSensorIsLeftAlone()
    {
        using Process training = Started(Run.Python, "-c", "import time; time.sleep(60)", "train.py", "--algo=ppo", "--env", "CartPole-v1");
        try
        {
            using SensorHarness sensor = Watch();
            // Judged in the first polls (a few hundred processes here): anything it would do is done by now.
            Thread.Sleep(500);
            Assert.False(training.HasExited, "a reinforcement-learning command line was killed");
            Assert.DoesNotContain(sensor.Events, e => e.Pid == training.Id && e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
        }
        finally
        {
            training.Kill();
        }
    }

    [Fact]
    public void ArgumentsRemappedOntoAFuseFileWhoseDaemonNeverAnswersDoNotHoldTheStart()
    {
        using var dir = new TempDir();
        string mount = Path.Combine(dir.Path, "mnt");
        Directory.CreateDirectory(mount);
        string server = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuse", "hanging_fs.py");
        using Process daemon = Run.Start(Run.Python, server, mount, "/bin/true", "page");
        Process? victim = null;
        try
        {
            if (daemon.StandardOutput.ReadLine() != "mounted")
                throw new Xunit.Sdk.XunitException($"the test's FUSE file system did not mount: {daemon.StandardError.ReadToEnd()}");
            // The page that holds its arguments becomes a page of the FUSE file, whose
            // daemon stops answering. The kernel reads /proc/PID/cmdline from anonymous
            // memory only (FOLL_ANON, since CVE-2018-1120), so the sensor reads it directly.
            string remap = $$"""
                import ctypes, mmap, os, time
                libc = ctypes.CDLL(None, use_errno=True)
                libc.mmap.restype = ctypes.c_void_p
                libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
                arg_start = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[45])
                fd = os.open('{{Path.Combine(mount, "page")}}', os.O_RDONLY)
                page = arg_start & ~(mmap.PAGESIZE - 1)
                got = libc.mmap(page, mmap.PAGESIZE, mmap.PROT_READ, mmap.MAP_PRIVATE | 0x10, fd, 0)
                print('remapped' if got == page else 'failed %d' % ctypes.get_errno(), flush=True)
                time.sleep(120)
                """;
            victim = Run.PythonScript(remap);
            Assert.Equal("remapped", victim.StandardOutput.ReadLine());
            daemon.StandardInput.WriteLine("hang");
            Assert.Equal("hanging", daemon.StandardOutput.ReadLine());

            var started = Stopwatch.StartNew();
            using SensorHarness sensor = Watch();
            started.Stop();
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"the start took {started.Elapsed}: a held read was waited for");
            Assert.NotNull(sensor.Sensor.Processes.Find(victim.Id));
            // And the sensor goes on: a new exec is seen.
            using Process p = Run.Start("/bin/true");
            p.WaitForExit();
            sensor.WaitFor("an exec after the held read", e => e.Action == "exec" && e.Pid == p.Id);
        }
        finally
        {
            // Its /dev/fuse closed, the connection is aborted: the reader left behind returns.
            if (!daemon.HasExited)
                daemon.Kill();
            daemon.WaitForExit();
            if (victim is { HasExited: false })
                victim.Kill();
            victim?.Dispose();
            Run.Complete("umount", "-l", mount);
        }
    }
}
