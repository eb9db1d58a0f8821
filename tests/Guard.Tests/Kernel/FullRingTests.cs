using System.Diagnostics;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// An adversary that fills the ring buffer first (a flood of execs while the
/// reader is stalled) and then runs its miner: the kernel's verdicts are
/// reached and carried out before any record is reserved, so a full ring
/// costs counted records, never a kill, a job membership or a drop. Each test
/// first proves the ring is full: the record of the very act it checks is
/// counted as lost.
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
