using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class AlertCountsTests
{
    private static readonly ProcessEntry Miner = new(4242, 1, "test-1-4242", ProcessOrigin.Exec);
    private static readonly ProcessEntry Other = new(4343, 1, "test-1-4343", ProcessOrigin.Exec);

    private static AlertEvent Alert(ProcessEntry process, string rule, double seconds) =>
        new() { Process = process, Rule = rule, TimeNs = (long)(seconds * 1e9) };

    [Fact]
    public void OneAlertPerProcessAndRuleThenTheCountAtMostOnceAMinuteAndAtExit()
    {
        var counts = new AlertCounts();
        AlertEvent first = Alert(Miner, "stratum", 1);
        Assert.True(counts.Admit(first));
        Assert.Equal(1, first.Count);

        AlertEvent second = Alert(Miner, "stratum", 2), third = Alert(Miner, "stratum", 3);
        Assert.False(counts.Admit(second));
        Assert.False(counts.Admit(third));
        Assert.Equal(3, third.Count);

        Assert.True(counts.Admit(Alert(Miner, "pool-sni", 3)), "another rule is another alert");
        Assert.True(counts.Admit(Alert(Other, "stratum", 3)), "another process is another alert");

        AlertEvent late = Alert(Miner, "stratum", 62);
        Assert.True(counts.Admit(late), "a minute on, the count is reported again");
        Assert.Equal(4, late.Count);

        AlertEvent last = Alert(Miner, "stratum", 63);
        Assert.False(counts.Admit(last));
        var due = new List<AlertEvent>();
        counts.OnExit(Miner, due);
        Assert.Equal([last], due);
        Assert.Equal(5, due[0].Count);

        due.Clear();
        counts.OnExit(Other, due);
        Assert.Empty(due); // nothing unreported
    }
}
