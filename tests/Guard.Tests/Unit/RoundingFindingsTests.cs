using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The RandomX judgement on the kernel's per-mode switch counts, sampled once
/// a second. The process judged is this test's own (the table reads it from
/// /proc); the counts are made up.
/// </summary>
public sealed class RoundingFindingsTests
{
    private static readonly int Self = Environment.ProcessId;

    private static readonly ulong SelfStartNs = ProcfsReader.TryReadStat(Self, out ProcfsStat stat)
        ? (ulong)stat.StartTicks * (ulong)(1_000_000_000 / ClockTicks.PerSecond) : throw new InvalidOperationException("no /proc/self/stat");

    /// <summary>An hour after this process started: it is older than any window.</summary>
    private static readonly long Later = (long)SelfStartNs + 3_600_000_000_000L;

    private static GuardRounding Counts(ulong down, ulong up, ulong towardZero, ulong startTimeNs = 0)
    {
        var r = new GuardRounding { StartTimeNs = startTimeNs == 0 ? SelfStartNs : startTimeNs };
        r.Switches[0] = down;
        r.Switches[1] = up;
        r.Switches[2] = towardZero;
        return r;
    }

    /// <summary>Samples a second apart while the counts grow by the given rates per second; every alert.</summary>
    private static List<AlertEvent> Run(RoundingFindings findings, int seconds, ulong down, ulong up, ulong towardZero, GuardRounding? from = null, int startSecond = 0)
    {
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        GuardRounding start = from ?? Counts(0, 0, 0);
        var alerts = new List<AlertEvent>();
        for (int s = 0; s <= seconds; s++)
        {
            GuardRounding now = Counts(start.Switches[0] + (ulong)s * down, start.Switches[1] + (ulong)s * up, start.Switches[2] + (ulong)s * towardZero, start.StartTimeNs);
            alerts.AddRange(findings.Sample([(Self, now)], Later + (startSecond + s) * 1_000_000_000L, table));
        }
        return alerts;
    }

    [Fact]
    public void HoldingOneDirectedModeIsNeverFoundHoweverLong()
    {
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        Assert.Empty(Run(findings, seconds: 600, down: 0, up: 5000, towardZero: 0)); // CGAL: FE_UPWARD held
    }

    [Fact]
    public void AlternatingDownAndUpIsNotFoundUnlessThePolicyAsksForTwoModes()
    {
        // Boost's rounded_arith_std: lower bounds rounded down, upper bounds up.
        Assert.Empty(Run(new RoundingFindings(PolicyLoader.BuiltIn), seconds: 60, down: 500, up: 500, towardZero: 0));
        Policy two = Policies.Over("[thresholds]\nrandomx_distinct_modes = 2\n");
        Assert.Single(Run(new RoundingFindings(two), seconds: 60, down: 500, up: 500, towardZero: 0));
    }

    [Fact]
    public void CyclingThroughEveryModeIsFoundOnceWithItsCounts()
    {
        var findings = new RoundingFindings(PolicyLoader.BuiltIn); // 200 switches in 10 s, 25 in each of 3 modes
        List<AlertEvent> alerts = Run(findings, seconds: 30, down: 10, up: 10, towardZero: 10);
        AlertEvent alert = Assert.Single(alerts);
        Assert.Equal(Detectors.Randomx.Name, alert.Rule);
        Assert.Equal(Self, alert.Process!.Pid);
        Assert.Equal("down=70 up=70 toward-zero=70", alert.Evidence.Single(e => e.Key == "rounding_modes").Value);
        Assert.Equal("210", alert.Evidence.Single(e => e.Key == "rounding_switches").Value);
    }

    [Fact]
    public void AModeVisitedForAMomentDoesNotCount()
    {
        // A library probes the modes at start, then the process holds FE_UPWARD.
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        Assert.Empty(Run(findings, seconds: 60, down: 0, up: 1000, towardZero: 0, from: Counts(3, 0, 3)));
    }

    [Fact]
    public void ADecoyThreadHoldingOneModeDoesNotHideTheOthers()
    {
        // Its switches swell the total; the miner's own modes keep their counts.
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        Assert.Single(Run(findings, seconds: 30, down: 5, up: 50_000, towardZero: 5));
    }

    [Fact]
    public void AReusedPidOrARemadeEntryStartsFromZeroNeverFromTheOldCounts()
    {
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        // Another process had the pid and a large count; ours starts lower. The
        // difference must never wrap into a huge count.
        Assert.Empty(Run(findings, seconds: 5, down: 0, up: 1000, towardZero: 0, from: Counts(0, 1_000_000, 0, startTimeNs: SelfStartNs + 1)));
        Assert.Empty(Run(findings, seconds: 5, down: 1, up: 1, towardZero: 1, startSecond: 6));
        // The kernel's entry made again (counts went back): what follows counts from zero.
        Assert.Empty(Run(findings, seconds: 5, down: 1, up: 1, towardZero: 1, startSecond: 12));
    }

    [Fact]
    public void TheModeCountIsCheckedAsAPolicyValue()
    {
        var errors = new List<PolicyError>();
        PolicyParser.Parse("[thresholds]\nrandomx_distinct_modes = 4\n", "p.toml", PolicyLoader.BuiltIn, errors);
        PolicyParser.Parse("[thresholds]\nrandomx_distinct_modes = \"all\"\n", "q.toml", PolicyLoader.BuiltIn, errors);
        Assert.Equal(["p.toml:2:thresholds.randomx_distinct_modes", "q.toml:2:thresholds.randomx_distinct_modes"], errors.Select(e => $"{e.File}:{e.Line}:{e.Key}"));
        Assert.All(errors, e => Assert.Contains("1 to 3", e.Reason, StringComparison.Ordinal));
        Assert.Equal(3, PolicyLoader.BuiltIn.Thresholds.RandomxDistinctModes);
        Assert.Equal(1, Policies.Over("[thresholds]\nrandomx_distinct_modes = 1\n").Thresholds.RandomxDistinctModes);
    }
}
