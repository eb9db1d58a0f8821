using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Response;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>A refused attempt to let a held job run, as a person reads it and as the SIEM gets it.</summary>
public sealed class HoldBreachTests
{
    private static readonly EcsEncoder Encoder = new(new RunInfo("host-a", "boot-a", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor());

    private static JsonElement Ecs(HoldBreach breach)
    {
        ActionEvent e = breach.ToActionEvent(null);
        var w = new JsonLineWriter();
        Encoder.Encode(e, w);
        return JsonDocument.Parse(Encoding.UTF8.GetString(w.Written)).RootElement;
    }

    [Fact]
    public void ARefusedSigcontNamesTheHeldProcessTheSenderAndWhatWasDone()
    {
        var breach = new HoldBreach("tree:4242(xmrig)", 1, 4242, 100, new HoldAttempt("signal", 3, 1, 77, "bash", 0), Held: true, "stopped again through its pidfd", 1, null);
        Assert.Equal("tree:4242(xmrig): 3 continues of held process 4242 by pid 77 (bash); stopped again through its pidfd; 1 socket it gained marked", breach.Message());

        JsonElement line = Ecs(breach);
        Assert.Equal("quarantine-continue-refused", line.GetProperty("event").GetProperty("action").GetString());
        Assert.Equal("success", line.GetProperty("event").GetProperty("outcome").GetString());
        JsonElement action = line.GetProperty("guard").GetProperty("action");
        Assert.Equal("hold", action.GetProperty("ordered_by").GetProperty("via").GetString());
        Assert.Equal([4242], action.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
        JsonElement attempt = action.GetProperty("attempt");
        Assert.Equal("signal", attempt.GetProperty("via").GetString());
        Assert.Equal(3UL, attempt.GetProperty("count").GetUInt64());
        Assert.Equal(1UL, attempt.GetProperty("unanswered").GetUInt64());
        Assert.Equal(77, attempt.GetProperty("by").GetProperty("pid").GetInt32());
        Assert.Equal("bash", attempt.GetProperty("by").GetProperty("name").GetString());
        Assert.Equal(0, attempt.GetProperty("si_code").GetInt32());
    }

    [Fact]
    public void APtraceResumeAGpuIoctlAndAThawReadAsWhatTheyAre()
    {
        Assert.Equal("tree:9(miner): 1 ptrace resume of held process 9 by pid 12 (gdb); killed in the kernel",
            new HoldBreach("tree:9(miner)", 1, 9, 1, new HoldAttempt("ptrace", 1, 0, 12, "gdb", null), true, "killed in the kernel", 0, null).Message());
        // The process itself made the ioctl: it is not named twice.
        Assert.Equal("tree:9(miner): 2 GPU ioctls of held process 9; stopped again in the kernel",
            new HoldBreach("tree:9(miner)", 1, 9, 1, new HoldAttempt("gpu-ioctl", 2, 0, 9, "miner", null), true, "stopped again in the kernel", 0, null).Message());

        var thaw = new HoldBreach("slurm:42", 7, 0, 0, new HoldAttempt("cgroup-thaw", 1, 1, 0, "", null), true, "frozen again", 2, "/job_42") { Pids = [10, 11] };
        Assert.Equal("slurm:42: cgroup /job_42 was thawed while held; frozen again; 2 sockets it gained marked", thaw.Message());
        JsonElement line = Ecs(thaw);
        Assert.Equal("quarantine-thaw-refused", line.GetProperty("event").GetProperty("action").GetString());
        JsonElement action = line.GetProperty("guard").GetProperty("action");
        Assert.Equal("/job_42", action.GetProperty("cgroup").GetString());
        Assert.Equal([10, 11], action.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
        Assert.False(action.GetProperty("attempt").TryGetProperty("by", out _));
        Assert.False(action.GetProperty("attempt").TryGetProperty("si_code", out _));
    }

    private static (GuardContinueKey, GuardContinue) Count(ContinueVia via, ulong refused, uint tgid = 4242) =>
        (new GuardContinueKey { HoldId = 1, Tgid = tgid, Via = via }, new GuardContinue { StartTicks = 100, Refused = refused, Via = via });

    /// <summary>
    /// The adversary's h1b: a SIGCONT flood (61,036 refused), then PTRACE_SEIZE,
    /// INTERRUPT and CONT (one resume). The kernel counts each way under its own
    /// key; each report says its own count, never another way's.
    /// </summary>
    [Fact]
    public void EachWayOfLettingAHeldProcessRunIsCountedApart()
    {
        var breaches = new HoldBreaches("/sys/fs/cgroup");
        Assert.Equal([(ContinueVia.Signal, 61036UL)], Grown(breaches, [Count(ContinueVia.Signal, 61036)]));
        // The ptrace resume comes on its own key; the signal count did not move.
        Assert.Equal([(ContinueVia.Ptrace, 1UL)], Grown(breaches, [Count(ContinueVia.Signal, 61036), Count(ContinueVia.Ptrace, 1)]));
        // More of each, and a move out of a held cgroup: each grows by its own.
        Assert.Equal([(ContinueVia.Signal, 4UL), (ContinueVia.Ptrace, 1UL), (ContinueVia.CgroupMove, 2UL)],
            Grown(breaches, [Count(ContinueVia.Signal, 61040), Count(ContinueVia.Ptrace, 2), Count(ContinueVia.CgroupMove, 2)]));
        Assert.Empty(Grown(breaches, [Count(ContinueVia.Signal, 61040), Count(ContinueVia.Ptrace, 2), Count(ContinueVia.CgroupMove, 2)]));
        // Another process of the hold is its own count.
        Assert.Equal([(ContinueVia.Signal, 3UL)], Grown(breaches, [Count(ContinueVia.Signal, 61040), Count(ContinueVia.Signal, 3, tgid: 7)]));

        var resume = new HoldBreach("tree:4242(held)", 1, 4242, 100, new HoldAttempt("ptrace", 1, 0, 2195, "python3", null), true, "killed in the kernel", 0, null);
        Assert.Equal("tree:4242(held): 1 ptrace resume of held process 4242 by pid 2195 (python3); killed in the kernel", resume.Message());
    }

    private static List<(ContinueVia, ulong)> Grown(HoldBreaches breaches, List<(GuardContinueKey, GuardContinue)> counts) =>
        [.. breaches.Grown(counts, id => id == 1).Select(g => (g.Key.Via, g.Growth))];

    [Fact]
    public void AMoveOutOfAHeldCgroupNamesWhereItWentAndWhoMovedIt()
    {
        var move = new HoldBreach("slurm:99010", 7, 1529, 100, new HoldAttempt("cgroup-move", 1, 0, 88, "sh", null), true, "stopped again in the kernel", 1, "/adv9/job_99010")
        {
            MovedTo = "/adv9/escape",
        };
        Assert.Equal("slurm:99010: held process 1529 was moved out of cgroup /adv9/job_99010 into /adv9/escape by pid 88 (sh); stopped again in the kernel; 1 socket it gained marked", move.Message());
        JsonElement line = Ecs(move);
        Assert.Equal("quarantine-move-refused", line.GetProperty("event").GetProperty("action").GetString());
        Assert.Equal("success", line.GetProperty("event").GetProperty("outcome").GetString());
        JsonElement action = line.GetProperty("guard").GetProperty("action");
        Assert.Equal([1529], action.GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
        Assert.Equal("/adv9/job_99010", action.GetProperty("cgroup").GetString());
        Assert.Equal("cgroup-move", action.GetProperty("attempt").GetProperty("via").GetString());
        Assert.Equal(88, action.GetProperty("attempt").GetProperty("by").GetProperty("pid").GetInt32());
    }

    [Fact]
    public void AnAnswerThatFailedIsAFailure()
    {
        var breach = new HoldBreach("tree:9(miner)", 1, 9, 1, new HoldAttempt("signal", 1, 1, 12, "kill", 0), Held: false, "could not be signalled", 0, null);
        Assert.Equal("failure", Ecs(breach).GetProperty("event").GetProperty("outcome").GetString());
    }
}
