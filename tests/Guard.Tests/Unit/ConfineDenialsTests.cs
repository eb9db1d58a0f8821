using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>confine_denials as the kernel counts it, turned into one report per job, destination and minute.</summary>
public sealed class ConfineDenialsTests
{
    private const long Second = 1_000_000_000;

    private static readonly ConfineRules Rules = new(Policies.Over("[[confine]]\nname = \"gpu\"\njobs = [\"slurm:*\"]\nmode = \"audit\"\negress.allow = [\"10.0.0.0/8\"]\n"));

    private static readonly ProcessTable Table = new(new EntityIds("feedfacecafe"), null, new UserNames());

    private static (GuardConfineDenialKey, GuardConfineDenial) Count(uint job, byte last, ulong count, ConfineWhat what = ConfineWhat.Connect)
    {
        var key = new GuardConfineDenialKey { Section = 1, Job = job, Port = 3333, Protocol = 6, What = (byte)what };
        key.Address[10] = 0xff;
        key.Address[11] = 0xff;
        key.Address[12] = 198;
        key.Address[13] = 51;
        key.Address[14] = 100;
        key.Address[15] = last;
        return (key, new GuardConfineDenial { Count = count, FirstNs = 5, LastNs = 7, Mode = (uint)ConfineKernelMode.Audit });
    }

    private static readonly Dictionary<uint, ConfinedJob> Jobs = new() { [2000] = new ConfinedJob("slurm:77", Rules.Sections[0]) };

    [Fact]
    public void AGrowingCountIsReportedAtOnceThenOnceAMinuteWithItsGrowth()
    {
        var denials = new ConfineDenials();
        ConfineEvent first = Assert.Single(denials.Check([Count(2000, 7, 3)], 100 * Second, Rules, Jobs, Table));
        Assert.Equal(3UL, first.Count);
        Assert.Equal("slurm:77", first.JobId);
        Assert.Equal("gpu", first.Section);
        Assert.True(first.WouldDeny);
        Assert.Equal(2, first.Family);
        Assert.Equal([198, 51, 100, 7], first.DestinationAddress[..4]);
        // A denial loop: within the minute nothing more, however it grows.
        Assert.Empty(denials.Check([Count(2000, 7, 5000)], 130 * Second, Rules, Jobs, Table));
        Assert.Empty(denials.Check([Count(2000, 7, 9000)], 159 * Second, Rules, Jobs, Table));
        ConfineEvent next = Assert.Single(denials.Check([Count(2000, 7, 9001)], 160 * Second, Rules, Jobs, Table));
        Assert.Equal(8998UL, next.Count);
        // Unchanged: nothing, even after a minute.
        Assert.Empty(denials.Check([Count(2000, 7, 9001)], 300 * Second, Rules, Jobs, Table));
    }

    [Fact]
    public void EachJobDestinationAndAttemptIsItsOwnReport()
    {
        var denials = new ConfineDenials();
        List<ConfineEvent> events = denials.Check(
            [Count(2000, 7, 1), Count(2000, 8, 1), Count(2001, 7, 1), Count(2000, 7, 1, ConfineWhat.Egress)], Second, Rules, Jobs, Table);
        Assert.Equal(4, events.Count);
        Assert.Null(events.Single(e => e.JobSet == 2001).JobId);
        Assert.Equal("egress", events.Single(e => e.Attempt == "egress").Attempt);
    }

    [Fact]
    public void ACountThatFellWasEvictedAndCountsAfresh()
    {
        var denials = new ConfineDenials();
        _ = denials.Check([Count(2000, 7, 50)], Second, Rules, Jobs, Table);
        Assert.Equal(2UL, Assert.Single(denials.Check([Count(2000, 7, 2)], 70 * Second, Rules, Jobs, Table)).Count);
    }
}
