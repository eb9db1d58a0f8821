using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class PolicyTests
{
    private static string[] Corpus(string name) =>
        [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", name))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];

    private static Policy Parse(string text, List<PolicyError> errors) => PolicyParser.Parse(text, "p.toml", PolicyLoader.BuiltIn, errors);

    [Fact]
    public void TheBuiltInPolicyIsValidAndCarriesEveryCorpusIndicator()
    {
        Policy p = PolicyLoader.BuiltIn;
        Assert.Equal(PolicyMode.Enforce, p.Mode);
        Assert.All(Corpus("miner-binaries.txt"), name => Assert.Contains(name, p.Indicators.MinerNames.Concat(p.Indicators.MinerNamesInJobs)));
        // Whole miner command lines are judged in ArgumentFindingTests; here, which fragments are strong and which weak.
        Assert.Contains("stratum+tcp://", p.Indicators.MinerArguments);
        Assert.Contains("--algo=", p.Indicators.MinerArgumentsWeak);
        Assert.DoesNotContain("--algo=", p.Indicators.MinerArguments);
        Assert.All(Corpus("pool-ports.txt"), port => Assert.Contains(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture), p.Indicators.PoolPorts));
        Assert.All(Corpus("pool-domains.txt"), domain => Assert.Contains(domain, p.Indicators.PoolDomains));
        foreach (string line in Corpus("stratum-first-lines.txt"))
        {
            string method = JsonDocument.Parse(line).RootElement.GetProperty("method").GetString()!;
            Assert.Contains(method, p.Indicators.StratumMethods);
        }
        // Names that are real programs elsewhere are acted on inside jobs only.
        Assert.Contains("rigel", p.Indicators.MinerNamesInJobs);
        Assert.DoesNotContain("rigel", p.Indicators.MinerNames);
        // Weak evidence never acts by default; every detector has a rule.
        Assert.All(Detectors.All, d => Assert.True(p.Rules.ContainsKey(d.Name), d.Name));
        Assert.All(Detectors.All.Where(d => !d.Strong), d => Assert.Equal(RuleAction.Alert, p.Rules[d.Name]));
    }

    [Fact]
    public void EveryErrorIsReportedWithFileLineAndKey()
    {
        const string text = """
            mode = "enforcing"
            [rules]
            pool-port = "kill"
            stratum = "nuke"
            bogus = "alert"
            [indicators]
            pool_ports = [3333, 70000]
            miner_hashes = ["abc"]
            [thresholds]
            randomx_window_seconds = "ten"
            [allow]
            destinations = ["10.0.0.0/8", "1.2.3.4:99999", "[::1]:443", "fe80::/129"]
            executables = ["relative/path"]
            [foo]
            x = 1
            [rules]
            """;
        var errors = new List<PolicyError>();
        Parse(text, errors);
        string[] reported = [.. errors.Select(e => $"{e.Line}:{e.Key}")];
        Assert.Equal(
            ["1:mode", "3:rules.pool-port", "4:rules.stratum", "5:rules.bogus", "7:indicators.pool_ports", "8:indicators.miner_hashes",
             "10:thresholds.randomx_window_seconds", "12:allow.destinations", "12:allow.destinations", "13:allow.executables", "14:[foo]"],
            reported.Where(r => !r.StartsWith("16:", StringComparison.Ordinal)));
        Assert.All(errors, e => Assert.Equal("p.toml", e.File));
        Assert.Contains(errors, e => e.Reason.Contains("weak evidence", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("443", "must be ADDRESS[/PREFIX][:PORT], IPv4 as four numbers (10.0.0.1)")]
    [InlineData("10.0.0:443", "must be ADDRESS[/PREFIX][:PORT], IPv4 as four numbers (10.0.0.1)")]
    [InlineData("010.0.0.1", "is not an IPv4 address as written: four decimal numbers 0-255 without leading zeros (010 reads as octal 8)")]
    [InlineData("2001:db8::1:443", "is the IPv6 address 2001:db8::1:443, or 2001:db8::1 port 443: write [2001:db8::1]:443 for the port, or [2001:db8::1:443] (or 2001:db8::1:443/128) for the address")]
    public void AnAllowedDestinationThatReadsTwoWaysIsRefused(string destination, string reason)
    {
        var errors = new List<PolicyError>();
        Parse($"[allow]\ndestinations = [\"10.0.0.0/8\", \"[::1]:443\", \"::1\", \"{destination}\"]\n", errors);
        Assert.Equal($"p.toml:2:allow.destinations: \"{destination}\": {reason}", Assert.Single(errors).ToString());
    }

    [Fact]
    public void SyntaxErrorsNameTheirLine()
    {
        var errors = new List<PolicyError>();
        Parse("mode = \"audit\"\n[rules]\nstratum = \n", errors);
        PolicyError error = Assert.Single(errors);
        Assert.Equal(3, error.Line);
        Assert.Equal("rules.stratum", error.Key);
    }

    [Fact]
    public void AKeySetTwiceIsAnError()
    {
        var errors = new List<PolicyError>();
        Parse("[rules]\nstratum = \"kill\"\nstratum = \"alert\"\n", errors);
        Assert.Contains(errors, e => e.Line == 3 && e.Reason.Contains("set twice (first on line 2)", StringComparison.Ordinal));
    }

    [Fact]
    public void AFileReplacesOnlyTheKeysItGives()
    {
        var errors = new List<PolicyError>();
        Policy p = Parse("mode = \"audit\"\n[indicators]\npool_ports = [1234]\n[rules]\nstratum = \"kill\"\n", errors);
        Assert.Empty(errors);
        Assert.Equal(PolicyMode.Audit, p.Mode);
        Assert.Equal([1234], p.Indicators.PoolPorts);
        Assert.Equal(PolicyLoader.BuiltIn.Indicators.MinerNames, p.Indicators.MinerNames);
        Assert.Equal(RuleAction.Kill, p.Rules["stratum"]);
        Assert.Equal(RuleAction.Alert, p.ActionFor(Detectors.Stratum)); // audit mode: rules only alert
        Assert.Equal(["built-in", "p.toml"], p.Sources);
    }

    [Fact]
    public void ShownPolicyReadsBackToTheSamePolicy()
    {
        Policy original = PolicyLoader.BuiltIn with { Allow = PolicyLoader.BuiltIn.Allow with { Users = ["a \"quoted\" name", "back\\slash"] } };
        var errors = new List<PolicyError>();
        Policy again = PolicyParser.Parse(PolicyWriter.Write(original), "shown", null, errors);
        Assert.Empty(errors);
        Assert.Equal(original.Allow.Users, again.Allow.Users);
        Assert.Equal(original.Indicators.MinerNames, again.Indicators.MinerNames);
        Assert.Equal(original.Indicators.MinerArguments, again.Indicators.MinerArguments);
        Assert.Equal(original.Indicators.MinerArgumentsWeak, again.Indicators.MinerArgumentsWeak);
        Assert.Equal(original.Indicators.PoolPorts, again.Indicators.PoolPorts);
        Assert.Equal(original.Rules.OrderBy(r => r.Key), again.Rules.OrderBy(r => r.Key));
        Assert.Equal(original.Thresholds, again.Thresholds);
    }

    [Fact]
    public void PolicyCheckExitsTwoWithOneLinePerError()
    {
        using var dir = new TempDir();
        string bad = dir.File("bad.toml", "mode = \"x\"\n[rules]\nstratum = \"nuke\"\n");
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(["policy", "check", bad], console));
        Assert.Equal([$"{bad}:1:mode: \"x\" is not a mode (enforce, audit)", $"{bad}:3:rules.stratum: \"nuke\" is not an action (alert, kill, kill-job, quarantine-job, off)"],
            console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(["policy", "check", Path.Combine(dir.Path, "missing.toml")], console));
        Assert.Contains("missing.toml:0:-: cannot read the policy: no such file or directory", console.ErrorText, StringComparison.Ordinal);

        string good = dir.File("good.toml", "mode = \"audit\"\n");
        console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["policy", "check", good], console));
        Assert.Contains("ok (mode audit", console.Out.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void StratumMethodsAreWhatTheScanCanCompare()
    {
        var errors = new List<PolicyError>();
        Policy policy = Parse("[indicators]\nstratum_methods = [\"Mining.Subscribe\", \"eth_getWork\"]\n", errors);
        Assert.Empty(errors);
        Assert.Equal([StratumVerdict.Drop, StratumVerdict.Drop], [.. StratumScanner.ForPolicy(policy.Indicators.StratumMethods, drop: true).Values]);
        Assert.Equal(["mining.subscribe", "eth_getwork"], [.. StratumScanner.ForPolicy(policy.Indicators.StratumMethods, drop: true).Keys]);

        // A method is compared up to its first character other than a letter, digit, '.' or '_': one with such a character never matches.
        Parse("[indicators]\nstratum_methods = [\"textDocument/didOpen\", \"mining subscribe\", \"" + new string('m', 32) + "\"]\n", errors);
        Assert.Equal(3, errors.Count);
        Assert.Contains("must be letters, digits", errors[0].ToString(), StringComparison.Ordinal);
        Assert.Contains("must be letters, digits", errors[1].ToString(), StringComparison.Ordinal);
        Assert.Contains("at most 31 characters", errors[2].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void UnitsAreJobsOnlyWhereThePolicyNamesThem()
    {
        Assert.Empty(PolicyLoader.BuiltIn.Jobs.Units);
        var errors = new List<PolicyError>();
        Policy policy = Parse("[jobs]\nunits = [\"trainer.service\", \"batch.slice\"]\n", errors);
        Assert.Empty(errors);
        Assert.Equal(["trainer.service", "batch.slice"], policy.Jobs.Units);
        Assert.Equal(["trainer.service", "batch.slice"], KernelRules.From(policy).JobUnits);
        Assert.Equal(policy.Jobs.Units, PolicyParser.Parse(PolicyWriter.Write(policy), "shown.toml", null, errors).Jobs.Units);

        Parse("[jobs]\nunits = [\"trainer\", \"/system.slice/x.service\", \"" + new string('a', 120) + ".service\"]\n", errors);
        Assert.Equal(3, errors.Count);
        Assert.Contains("must be a systemd unit", errors[0].ToString(), StringComparison.Ordinal);
        Assert.Contains("not a path", errors[1].ToString(), StringComparison.Ordinal);
        Assert.Contains("at most 126 bytes", errors[2].ToString(), StringComparison.Ordinal);

        // A GPU service is never a job, whichever list names it first.
        errors.Clear();
        Parse("[jobs]\nunits = [\"nvidia-persistenced.service\"]\n", errors);
        Assert.Equal("p.toml:2:jobs.units: \"nvidia-persistenced.service\" is a GPU service (jobs.services): never a job", Assert.Single(errors).ToString());
    }

    [Fact]
    public void GpuThresholdsAreCheckedAndApplied()
    {
        var errors = new List<PolicyError>();
        Parse("[thresholds]\ngpu_busy_percent = 150\n", errors);
        Assert.Equal("p.toml:2:thresholds.gpu_busy_percent: expected a percentage, 1 to 100", Assert.Single(errors).ToString());
        errors.Clear();
        Policy policy = Parse("[thresholds]\ngpu_busy_percent = 80\ngpu_busy_seconds = 60\n", errors);
        Assert.Empty(errors);
        Assert.Equal((80, 60), (policy.Thresholds.GpuBusyPercent, policy.Thresholds.GpuBusySeconds));
    }
}
