using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// An executable is hashed as the kernel ran it, never as its path reads
/// later: an exec through a descriptor (fexecve: the path is /dev/fd/N, which
/// in the sensor names its own descriptor N) or through /proc/self/fd/N, a
/// path replaced by a FIFO, a device or another file, must neither stall the
/// sensor nor hide a denied hash nor pin one on an innocent. The stand-ins are
/// copies of /bin/sleep and /bin/true with random bytes appended (they run the
/// same; the hash is theirs alone).
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ExecutedFileTests
{
    /// <summary>python3: opens argv[1] and runs it through the descriptor (fexecve), argv[2..] as its argv.</summary>
    private const string FdExec = "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.execve(fd, sys.argv[2:], {})\n";

    /// <summary>python3: opens argv[1] and runs /proc/self/fd/N, argv[2..] as its argv.</summary>
    private const string ProcSelfFdExec = "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.execv(f'/proc/self/fd/{fd}', sys.argv[2:])\n";

    /// <summary>A copy of <paramref name="program"/> that hashes like nothing else on the machine.</summary>
    private static string UniqueCopy(TempDir dir, string program, string name)
    {
        string path = Path.Combine(dir.Path, name);
        File.WriteAllBytes(path, [.. File.ReadAllBytes(program), .. Guid.NewGuid().ToByteArray()]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static Policy Denying(string hash) => Policies.Over($"[indicators]\nminer_hashes = [\"{hash}\"]\n");

    /// <summary>The sensor still reads the ring: a program run now shows up as an exec.</summary>
    private static void StillSeesExecs(SensorHarness sensor)
    {
        string marker = "still-seeing-" + Guid.NewGuid().ToString("N")[..8];
        Run.Complete("/bin/echo", marker);
        sensor.WaitFor($"the exec of /bin/echo {marker}", e => e.Action == "exec" && e.Args.Contains(marker));
    }

    private static RecordedEvent[] AlertsFor(SensorHarness sensor, int pid) =>
        [.. sensor.Events.Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert" && e.Pid == pid)];

    [Theory]
    [InlineData(FdExec, "/dev/fd/")]
    [InlineData(ProcSelfFdExec, "/proc/self/fd/")]
    public void ADescriptorExecNeitherBlindsTheSensorNorHidesADeniedHash(string script, string pathPrefix)
    {
        using var dir = new TempDir();
        string miner = UniqueCopy(dir, "/bin/sleep", "data-loader");
        string quick = UniqueCopy(dir, "/bin/true", "quick");
        string hash = Sha256.HexOf(File.ReadAllBytes(miner));
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = Denying(hash) });

        // Gone before it is read: nothing to hash, and nothing may be read in its place.
        using (Process p = Run.PythonScript(script, quick, "quick"))
            Assert.True(p.WaitForExit(5000));
        using Process minerProcess = Run.PythonScript(script, miner, "data-loader", "30");
        Assert.True(minerProcess.WaitForExit(5000), "the fd-exec'd miner still runs 5 s later: its denied hash was not acted on");

        RecordedEvent alert = sensor.WaitFor("miner-hash", e => e.Action == "miner-hash" && e.Pid == minerProcess.Id);
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal(hash, evidence.GetProperty("sha256").GetString());
        Assert.StartsWith(pathPrefix, evidence.GetProperty("executable").GetString(), StringComparison.Ordinal);
        Assert.Equal(137, minerProcess.ExitCode);
        StillSeesExecs(sensor);
    }

    [Fact]
    public void ARunningMinerWhosePathBecameAFifoIsHashedThroughWhatTheKernelRan()
    {
        using var dir = new TempDir();
        string miner = UniqueCopy(dir, "/bin/sleep", "data-loader");
        string hash = Sha256.HexOf(File.ReadAllBytes(miner));
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = Denying(hash) });

        Process minerProcess;
        using (sensor.Pause())
        {
            minerProcess = Run.Start(miner, "30");
            // Before the sensor reads its exec, the path names a FIFO no one writes.
            File.Move(miner, miner + ".moved");
            Run.Complete("mkfifo", miner);
        }
        using (minerProcess)
        {
            Assert.True(minerProcess.WaitForExit(5000), "the miner still runs 5 s later");
            RecordedEvent alert = sensor.WaitFor("miner-hash", e => e.Action == "miner-hash" && e.Pid == minerProcess.Id);
            Assert.Equal(hash, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("sha256").GetString());
            Assert.Equal(137, minerProcess.ExitCode);
        }
        StillSeesExecs(sensor);
    }

    [Fact]
    public void APathReplacedByAFifoADeviceOrADeniedFileAfterTheExecIsNeverReadAsIt()
    {
        using var dir = new TempDir();
        string denied = UniqueCopy(dir, "/bin/sleep", "denied");
        string hash = Sha256.HexOf(File.ReadAllBytes(denied));
        string fifo = UniqueCopy(dir, "/bin/true", "becomes-fifo");
        string device = UniqueCopy(dir, "/bin/true", "becomes-device");
        string linkTarget = UniqueCopy(dir, "/bin/true", "link-target");
        string link = Path.Combine(dir.Path, "swapped-link");
        File.CreateSymbolicLink(link, linkTarget);
        string framed = UniqueCopy(dir, "/bin/true", "becomes-denied");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = Denying(hash) });

        var pids = new List<int>();
        using (sensor.Pause())
        {
            foreach (string program in new[] { fifo, device, link, framed })
            {
                using Process p = Run.Start(program);
                Assert.True(p.WaitForExit(5000));
                pids.Add(p.Id);
            }
            // Each is gone; what its path names now is not what ran.
            File.Delete(fifo);
            Run.Complete("mkfifo", fifo);
            File.Delete(device);
            File.CreateSymbolicLink(device, "/dev/zero"); // read as the file, it never ends
            File.Delete(link);
            File.CreateSymbolicLink(link, "/dev/zero");
            File.Delete(framed);
            File.Copy(denied, framed); // a denied file, not the one that ran: no innocent is blamed for it
        }

        foreach (int pid in pids)
            sensor.WaitFor($"the exit of {pid}", e => e.Action == "exit" && e.Pid == pid);
        StillSeesExecs(sensor);
        Thread.Sleep(300); // a hash would be in by now
        Assert.All(pids, pid => Assert.Empty(AlertsFor(sensor, pid)));
    }

    [Fact]
    public void AnAllowedPathThatNamesAnotherFileInAnotherMountNamespaceAllowsNothing()
    {
        using var dir = new TempDir();
        string allowed = dir.ShellCopy("allowed-tool");
        string miner = dir.ShellCopy("miner");
        Policy policy = Policies.Over($"[allow]\nexecutables = [\"{allowed}\"]\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });

        // Inside its own mount namespace the allowed path names the miner, run with miner arguments
        // (from a script: on unshare's own command line they would be judged first).
        string script = dir.File("run.sh", $"mount --bind {miner} {allowed} && exec {allowed} -c 'sleep 30' miner --donate-level 1\n");
        using Process p = Run.Start("unshare", "--mount", "--propagation", "private", "/bin/sh", script);
        try
        {
            Assert.True(p.WaitForExit(5000), "the miner under the allowed path still runs 5 s later");
        }
        finally
        {
            if (!p.HasExited)
                p.Kill();
        }

        RecordedEvent alert = sensor.WaitFor("miner-arguments", e => e.Action == "miner-arguments" && e.Pid == p.Id);
        Assert.Equal(allowed, alert.Process.GetProperty("executable").GetString());
        Assert.Equal(137, p.ExitCode);

        // The allowed file itself, under its own path, is still left alone.
        using Process tool = Run.Start(allowed, "-c", "true", "--donate-level", "1");
        Assert.True(tool.WaitForExit(5000));
        Assert.Equal(0, tool.ExitCode);
        sensor.WaitFor("the allowed tool's exit", e => e.Action == "exit" && e.Pid == tool.Id);
        Assert.Empty(AlertsFor(sensor, tool.Id));
    }

    [Fact]
    public void AFindingWaitsForTheAllowListsHashThenSparesTheAllowedAndActsOnTheRest()
    {
        using var dir = new TempDir();
        string allowed = UniqueCopy(dir, "/bin/sh", "stress-tool");
        string other = UniqueCopy(dir, "/bin/sh", "other-tool");
        string marker = Path.Combine(dir.Path, "marker");
        Policy policy = Policies.Over($"[allow]\nhashes = [\"{Sha256.HexOf(File.ReadAllBytes(allowed))}\"]\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });

        // Miner arguments at exec: judged before the hash is in, acted on only once it is.
        using Process spared = Run.Start(allowed, "-c", $"sleep 1; echo ran > {marker}", "bench", "--donate-level", "1");
        using Process killed = Run.Start(other, "-c", "sleep 30", "bench", "--donate-level", "1");
        try
        {
            Assert.True(killed.WaitForExit(5000), "the tool the allow list does not name still runs 5 s later");
            Assert.True(spared.WaitForExit(5000));
        }
        finally
        {
            if (!killed.HasExited)
                killed.Kill();
        }

        Assert.Equal(137, killed.ExitCode);
        sensor.WaitFor("miner-arguments", e => e.Action == "miner-arguments" && e.Pid == killed.Id);
        Assert.Equal(0, spared.ExitCode);
        Assert.True(File.Exists(marker));
        sensor.WaitFor("the allowed tool's exit", e => e.Action == "exit" && e.Pid == spared.Id);
        Assert.Empty(AlertsFor(sensor, spared.Id));
    }

    [Fact]
    public void AMinerOnAFuseFileSystemWhoseDaemonStopsAnsweringIsNeverReadAndNeverHoldsTheSensor()
    {
        using var dir = new TempDir();
        string source = UniqueCopy(dir, "/bin/sleep", "source");
        string mount = Path.Combine(dir.Path, "mnt");
        Directory.CreateDirectory(mount);
        string server = Path.Combine(AppContext.BaseDirectory, "Fixtures", "fuse", "hanging_fs.py");
        using Process daemon = Run.Start(Run.Python, server, mount, source, "xmrig");
        try
        {
            if (daemon.StandardOutput.ReadLine() != "mounted")
            {
                if (!daemon.WaitForExit(5000))
                    daemon.Kill();
                throw new Xunit.Sdk.XunitException($"the test's FUSE file system did not mount: {daemon.StandardError.ReadToEnd()}");
            }
            // A deny list: every exec is hashed, the FUSE one included.
            using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = Denying(new string('0', 64)) });
            int pid;
            using (sensor.Pause())
            {
                // A known miner name: killed by the kernel at exec, its alert waits for the hash.
                using Process miner = Run.Start(Path.Combine(mount, "xmrig"), "30");
                Assert.True(miner.WaitForExit(5000));
                Assert.Equal(137, miner.ExitCode);
                pid = miner.Id;
                daemon.StandardInput.WriteLine("hang");
                Assert.Equal("hanging", daemon.StandardOutput.ReadLine());
            }

            RecordedEvent alert = sensor.WaitFor("known-miner", e => e.Action == "known-miner" && e.Pid == pid);
            Assert.Equal("not hashed: on a FUSE file system, which the sensor never reads",
                alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("sha256").GetString());
            StillSeesExecs(sensor);
            // A request it read and never answered would hold the asking thread, and the sensor's exit, for good.
            // (a RELEASE the kernel sends in the background once the killed miner's file is let go holds no one).
            daemon.StandardInput.WriteLine("count");
            string count = daemon.StandardOutput.ReadLine() ?? "";
            Assert.True(count.Split(' ')[0] == "0", $"requests left unanswered that a thread waits on, then opcodes of all: {count}");
        }
        finally
        {
            // Its /dev/fuse closed, the connection is aborted: any request still waiting fails.
            if (!daemon.HasExited)
                daemon.Kill();
            daemon.WaitForExit();
            Run.Complete("umount", "-l", mount);
        }
    }
}
