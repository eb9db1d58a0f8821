using Guard.Sensor.Abi;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Cgroupfs on a hierarchy of plain files: the reads and writes are the same
/// as on /sys/fs/cgroup, only nothing is frozen or killed.
/// </summary>
public sealed class CgroupfsTests : IDisposable
{
    private readonly TempDir root = new();

    private Cgroupfs Cgroupfs => new(root.Path);

    private string Make(string cgroupPath, params int[] pids)
    {
        string dir = Path.Join(root.Path, cgroupPath);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Join(dir, Cgroupfs.ProcsFile), string.Concat(pids.Select(p => $"{p}\n")));
        return dir;
    }

    [Fact]
    public void ProcessesAreTheCgroupsAndEveryDescendantsAscending()
    {
        Make("/", 1);
        Make("/slurm/job_42", 300, 20);
        Make("/slurm/job_42/step_0", 7);
        Make("/slurm/job_42/step_0/task_0", 4000);
        Make("/slurm/job_43", 5);
        Assert.Equal([7, 20, 300, 4000], Cgroupfs.Processes("/slurm/job_42"));
        Assert.Empty(Cgroupfs.Processes("/gone"));
    }

    [Fact]
    public void CgroupsAreFoundByIdAndJobsByTheirOutermostCgroup()
    {
        Make("/system.slice/trainer.service/worker", 9);
        Make("/system.slice/other.service");
        ulong id = Cgroupfs.IdOf("/system.slice/trainer.service/worker")!.Value;
        Assert.Equal("/system.slice/trainer.service/worker", Cgroupfs.FindById(id));
        Assert.Equal("/system.slice/trainer.service", Cgroupfs.FindJob("systemd:trainer.service"));
        Assert.Null(Cgroupfs.FindJob("slurm:1"));
        Assert.Null(Cgroupfs.IdOf("/gone"));
    }

    [Fact]
    public void FreezeThawAndKillWriteTheirControlFiles()
    {
        string dir = Make("/job");
        File.WriteAllText(Path.Join(dir, Cgroupfs.FreezeFile), "0");
        Cgroupfs.Freeze("/job");
        Assert.Equal("1", File.ReadAllText(Path.Join(dir, Cgroupfs.FreezeFile)));
        Assert.True(Cgroupfs.Thaw("/job"));
        Assert.Equal("0", File.ReadAllText(Path.Join(dir, Cgroupfs.FreezeFile)));
        Cgroupfs.Kill("/job");
        Assert.Equal("1", File.ReadAllText(Path.Join(dir, Cgroupfs.KillFile)));
    }

    [Fact]
    public void AGoneCgroupIsNotThawedAndAFailedWriteNamesTheFile()
    {
        Assert.False(Cgroupfs.Thaw("/gone"));
        var e = Assert.Throws<SensorException>(() => Cgroupfs.Freeze("/gone"));
        Assert.StartsWith($"cannot write 1 to {Path.Join(root.Path, "/gone", Cgroupfs.FreezeFile)}: ", e.Message, StringComparison.Ordinal);
        Assert.False(Cgroupfs.TryKill("/gone", out string error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void WaitFrozenReadsCgroupEvents()
    {
        string dir = Make("/job");
        File.WriteAllText(Path.Join(dir, Cgroupfs.EventsFile), "populated 1\nfrozen 0\n");
        Assert.False(Cgroupfs.WaitFrozen("/job", TimeSpan.FromMilliseconds(30)));
        File.WriteAllText(Path.Join(dir, Cgroupfs.EventsFile), "populated 1\nfrozen 1\n");
        Assert.True(Cgroupfs.WaitFrozen("/job", TimeSpan.Zero));
    }

    [Fact]
    public void AHoldsRecordReadsBackAsItWasAskedForCutAtWholeCharacters()
    {
        var request = new QuarantineRequest
        {
            Reason = new string('é', 100), // 200 bytes: cut to 158, not inside a character
            OrderedBy = "miner-in-job",
            OrderedByUid = 1000,
            Timeout = TimeSpan.FromMinutes(30),
            OnTimeout = QuarantineExpiry.Kill,
        };
        GuardQuarantine record = request.ToRecord(QuarantineMode.Tree, 0, 4242, 99, "tree:4242(python3)");
        QuarantineHold hold = QuarantineHold.From(7, record, null, [4242]);
        Assert.Equal("tree:4242(python3)", hold.Name);
        Assert.Equal(new string('é', 79), hold.Reason);
        Assert.Equal("miner-in-job", hold.OrderedBy);
        Assert.Equal(1000u, hold.OrderedByUid);
        Assert.Equal(4242, hold.RootPid);
        Assert.Equal(QuarantineExpiry.Kill, hold.OnTimeout);
        Assert.Equal(TimeSpan.FromMinutes(30), hold.Deadline - hold.Since);

        GuardQuarantine untimed = new QuarantineRequest { OnTimeout = QuarantineExpiry.Kill }.ToRecord(QuarantineMode.Cgroup, 5, 0, 0, "slurm:42");
        Assert.Equal(QuarantineExpiry.None, untimed.Expiry);
        Assert.Null(QuarantineHold.From(5, untimed, "/slurm/job_42", []).Deadline);
    }

    public void Dispose() => root.Dispose();
}
