using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A loader writes a miner (Fixtures/standins/marked-miner.c, a stand-in with
/// a real miner's markers and nothing else) where its name says nothing (a
/// memfd, an O_TMPFILE, a file it deletes) and runs it through fexecve or
/// /proc/self/fd: the kernel flags the exec as staged, the sensor reads the
/// file the kernel ran, finds the markers, and kills it before its first
/// act, a second in. The same program unmarked (/bin/sleep) runs on.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class MinerContentKernelTests
{
    // Python: writes FILE's bytes where HOW says, then execs them with ARGS (argv[1] the marker path).
    private const string Loader = """
        import os, sys
        how, source, marker = sys.argv[1:4]
        data = open(source, 'rb').read()
        if how == 'memfd':
            fd = os.memfd_create('', 0)
            os.write(fd, data)
        elif how == 'tmpfile':
            w = os.open(os.path.dirname(marker), os.O_TMPFILE | os.O_RDWR, 0o700)
            os.write(w, data)
            fd = os.open('/proc/self/fd/%d' % w, os.O_RDONLY)
            os.close(w)
        else:
            path = os.path.join(os.path.dirname(marker), '.cache-worker')
            with open(path, 'wb') as f:
                f.write(data)
            os.chmod(path, 0o700)
            fd = os.open(path, os.O_RDONLY)
            os.unlink(path)
        if how == 'deleted':
            os.execv('/proc/self/fd/%d' % fd, ['kworker', marker])
        os.execve(fd, ['kworker', marker], dict(os.environ))
        """;

    [Theory]
    [InlineData("memfd", "memfd")]
    [InlineData("tmpfile", "unlinked")]
    [InlineData("deleted", "unlinked")]
    public void AMinerStagedWhereItsNameSaysNothingIsKnownByItsBytes(string how, string staging)
    {
        using var dir = new TempDir();
        string miner = dir.Compile("marked-miner");
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        using Process p = Run.Start(Run.Python, dir.File("loader.py", Loader), how, miner, marker);
        Assert.True(p.WaitForExit(5000), "the staged miner was not killed");
        Assert.Equal(137, p.ExitCode);
        Assert.False(File.Exists(marker), $"the miner staged as {how} ran");
        RecordedEvent alert = sensor.WaitFor("the miner-content alert", e => e.Action == "miner-content" && e.Pid == p.Id);
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal("RandomX\\x03, mining.subscribe, donate-level", evidence.GetProperty("markers").GetString());
        Assert.Equal(Sha256.HexOf(File.ReadAllBytes(miner)), evidence.GetProperty("sha256").GetString());
        Assert.Equal(staging, evidence.GetProperty("staging").GetString());
        Assert.Contains(alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").EnumerateArray(),
            r => r.GetString()!.StartsWith("killed", StringComparison.Ordinal));
    }

    [Fact]
    public void AnOrdinaryProgramStagedTheSameWayRunsOn()
    {
        // A build's test binary run from a memfd is no miner: nothing in its bytes says so.
        using var dir = new TempDir();
        string marker = Path.Combine(dir.Path, "marker");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        using Process p = Run.Start(Run.Python, dir.File("loader.py", Loader), "memfd", "/bin/sleep", "1");
        Assert.True(p.WaitForExit(5000));
        Assert.Equal(0, p.ExitCode);
        sensor.WaitFor("its exit", e => e.Action == "exit" && e.Pid == p.Id);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert" && e.Pid == p.Id);
    }
}
