using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Which job a process is in: its cgroup's job first, else its launcher's
/// tree; and guard.job renders exactly that, so output says what the rules saw.
/// </summary>
public sealed class JobMembershipTests
{
    private static readonly Job Slurm = new("slurm:42", "slurm", "/slurm/job_42");

    private static ProcessEntry Process(int pid, string name, ProcessEntry? parent, Job? job = null, int rootPid = 0) =>
        new(pid, pid * 10, $"boot-a-{pid}", ProcessOrigin.Fork)
        {
            Parent = parent,
            ParentPid = parent?.Pid ?? 0,
            Name = Encoding.UTF8.GetBytes(name),
            CgroupJob = job,
            JobRootPid = rootPid,
        };

    private static string Exec(ProcessEntry p)
    {
        var encoder = new EcsEncoder(new RunInfo("host-a", "boot-a", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor());
        var e = new ProcessEvent { Process = p };
        e.Reset(EventType.Exec);
        var w = new JsonLineWriter();
        encoder.Encode(e, w);
        return Encoding.UTF8.GetString(w.Written);
    }

    [Fact]
    public void TheCgroupsJobComesFirstAndKeepsItsLauncherForItsWorkers()
    {
        ProcessEntry torchrun = Process(100, "torchrun", null, Slurm, rootPid: 100);
        ProcessEntry rank = Process(101, "python3", torchrun, Slurm, rootPid: 100);
        JobMembership job = rank.Membership;
        Assert.True(job.InJob);
        Assert.Equal(("slurm:42", "slurm"), (job.Id, job.Kind));
        Assert.Same(torchrun, job.Root);
        Assert.Contains("\"job\":{\"id\":\"slurm:42\",\"kind\":\"slurm\",\"cgroup\":\"/slurm/job_42\"}", Exec(rank), StringComparison.Ordinal);
    }

    [Fact]
    public void AShellInAJobsCgroupIsInTheJobWithNoLauncher()
    {
        JobMembership job = Process(200, "sh", null, Slurm).Membership;
        Assert.True(job.InJob);
        Assert.Equal(0, job.RootPid);
        Assert.Equal("slurm:42", job.Id);
    }

    [Fact]
    public void WithoutACgroupJobTheLaunchersTreeIsTheJob()
    {
        ProcessEntry python = Process(300, "python3", null, rootPid: 300);
        ProcessEntry shell = Process(301, "bash", python, rootPid: 300);
        Assert.Equal(("tree:boot-a-300", "tree"), (shell.Membership.Id, shell.Membership.Kind));
        Assert.Contains("\"job\":{\"id\":\"tree:boot-a-300\",\"kind\":\"tree\"},\"job_root_pid\":300", Exec(shell), StringComparison.Ordinal);

        // A launcher lineage does not reach (its fork was never seen): named by its pid, still a job.
        Assert.Equal("tree:300", Process(302, "bash", null, rootPid: 300).Membership.Id);
    }

    [Fact]
    public void OutsideEveryJobThereIsNoJobAndNoGuardJob()
    {
        ProcessEntry cron = Process(400, "t-rex", null);
        Assert.False(cron.Membership.InJob);
        Assert.Null(cron.Membership.Id);
        Assert.DoesNotContain("\"job\":", Exec(cron), StringComparison.Ordinal);
    }
}
