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

    [Fact]
    public void TheSamplingRateIsCheckedAsAPolicyValue()
    {
        var errors = new List<PolicyError>();
        PolicyParser.Parse("[thresholds]\nrandomx_sampling_hz = 1001\n", "p.toml", PolicyLoader.BuiltIn, errors);
        PolicyParser.Parse("[thresholds]\nrandomx_sampling_hz = -1\n", "q.toml", PolicyLoader.BuiltIn, errors);
        PolicyParser.Parse("[thresholds]\nrandomx_sampling_hz = \"fast\"\n", "r.toml", PolicyLoader.BuiltIn, errors);
        Assert.Equal(["p.toml:2:thresholds.randomx_sampling_hz", "q.toml:2:thresholds.randomx_sampling_hz", "r.toml:2:thresholds.randomx_sampling_hz"], errors.Select(e => $"{e.File}:{e.Line}:{e.Key}"));
        Assert.All(errors, e => Assert.Contains("0 to 1000", e.Reason, StringComparison.Ordinal));
        Assert.Equal(100, PolicyLoader.BuiltIn.Thresholds.RandomxSamplingHz);
        Assert.Equal(0, Policies.Over("[thresholds]\nrandomx_sampling_hz = 0\n").Thresholds.RandomxSamplingHz);
        Assert.Contains("randomx_sampling_hz = 100", PolicyWriter.Write(PolicyLoader.BuiltIn), StringComparison.Ordinal);
    }

    /// <summary>
    /// A line of short processes: each runs <paramref name="secondsEach"/> samplings, gaining
    /// <paramref name="perSecond"/> switches in each of the three directed modes a second, then
    /// exits; process i execs <paramref name="executables"/>[i % n] and is started by the shell
    /// (<paramref name="chained"/>: false) or by the process before it. Pids 7x0099 all start at
    /// 100 s (Records.StartOf), so every process is younger than the window and counts from its start.
    /// </summary>
    private static List<AlertEvent> RunLine(RoundingFindings findings, string[] executables, bool chained, int processes, int secondsEach, ulong perSecond, uint childUid = 0)
    {
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        const int Shell = 700_001;
        table.OnFork(Records.Fork(Shell, 0));
        table.OnExec(Records.Exec(Shell, 0, "/bin/sh -c loop"));
        var alerts = new List<AlertEvent>();
        long now = 100_000_000_000L;
        int parent = Shell;
        for (int i = 0; i < processes; i++)
        {
            int pid = 700_099 + (i * 100);
            table.OnFork(Records.Fork(pid, parent));
            ExecRecord exec = Records.Exec(pid, parent, $"{executables[i % executables.Length]} --steps 10");
            exec.Uid = childUid;
            table.OnExec(exec);
            for (int s = 1; s <= secondsEach; s++)
            {
                ulong n = (ulong)s * perSecond;
                var r = new GuardRounding { StartTimeNs = Records.StartOf(pid) };
                r.Switches[0] = n;
                r.Switches[1] = n;
                r.Switches[2] = n;
                now += 1_000_000_000L;
                alerts.AddRange(findings.Sample([(pid, r)], now, table));
            }
            if (chained)
                parent = pid;
        }
        return alerts;
    }

    [Theory]
    [InlineData(false)] // a shell loop: a; b; a; b; ...
    [InlineData(true)]  // each hop starts the next under the other executable, then exits
    public void ALineThatAlternatesBetweenTwoExecutablesIsFoundAsItsLauncher(bool chained)
    {
        // Each process is switched out 60 times (under 200), each its own program: only their launcher sums them.
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        List<AlertEvent> alerts = RunLine(findings, ["/bin/true", "/bin/false"], chained, processes: 8, secondsEach: 2, perSecond: 10);
        AlertEvent alert = Assert.Single(alerts);
        Assert.Equal(RoundingFindings.LauncherScope, alert.Evidence.Single(e => e.Key == "rounding_scope").Value);
        Assert.True(int.Parse(alert.Evidence.Single(e => e.Key == "rounding_processes").Value, System.Globalization.CultureInfo.InvariantCulture) >= 3);
        // The 4th brings the sum to 210; the shell that runs the line (as the same user) is named, so its loop ends with its tree.
        Assert.Equal(700_001, alert.Process!.Pid);
        Assert.Equal("700399", alert.Evidence.Single(e => e.Key == "rounding_switching_pid").Value);
    }

    [Fact]
    public void ALauncherRunningAsAnotherUserStaysArmedAndEachOfItsHashersIsNamed()
    {
        // The shell runs as another user than its children (a broker such as a root daemon): it is not killed;
        // each child that switches again while the window holds the count is named.
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        List<AlertEvent> alerts = RunLine(findings, ["/bin/true", "/bin/false"], chained: false, processes: 8, secondsEach: 2, perSecond: 10, childUid: 1000);
        Assert.True(alerts.Count >= 3, $"{alerts.Count} alerts");
        Assert.All(alerts, a => Assert.Equal(RoundingFindings.LauncherScope, a.Evidence.Single(e => e.Key == "rounding_scope").Value));
        Assert.All(alerts, a => Assert.NotEqual(700_001, a.Process!.Pid));
        Assert.Equal(alerts.Count, alerts.Select(a => (a.Process!.Pid, a.TimeNs)).Distinct().Count());
    }

    [Fact]
    public void ALineOfOneExecutableIsNamedAsAProgramNotAlsoAsItsLauncher()
    {
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        List<AlertEvent> alerts = RunLine(findings, ["/bin/true"], chained: true, processes: 8, secondsEach: 2, perSecond: 10);
        AlertEvent alert = Assert.Single(alerts);
        Assert.Equal(RoundingFindings.ProgramScope, alert.Evidence.Single(e => e.Key == "rounding_scope").Value);
    }

    [Fact]
    public void SiblingsThatEachHoldOneDirectedModeAreNotOneRandomx()
    {
        // A test runner starting interval-arithmetic workers in turn: upward ones and downward ones, never toward zero.
        var findings = new RoundingFindings(PolicyLoader.BuiltIn);
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        table.OnFork(Records.Fork(700_001, 0));
        table.OnExec(Records.Exec(700_001, 0, "/bin/sh -c make-check"));
        long now = 100_000_000_000L;
        var alerts = new List<AlertEvent>();
        for (int i = 0; i < 8; i++)
        {
            int pid = 700_099 + (i * 100);
            table.OnFork(Records.Fork(pid, 700_001));
            table.OnExec(Records.Exec(pid, 700_001, i % 2 == 0 ? "/bin/true" : "/bin/false"));
            var r = new GuardRounding { StartTimeNs = Records.StartOf(pid) };
            r.Switches[i % 2] = 500;
            now += 1_000_000_000L;
            alerts.AddRange(findings.Sample([(pid, r)], now, table));
        }
        Assert.Empty(alerts);
    }
}
