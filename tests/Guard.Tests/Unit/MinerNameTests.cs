using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Miner names whole and by family ("cpuminer-*"), matched as the kernel's
/// longest-prefix lookup matches them, and a program run through the dynamic
/// loader judged by the name of the program the loader runs.
/// </summary>
public sealed class MinerNameTests
{
    private static readonly KnownMinerFindings BuiltIn = new(PolicyLoader.BuiltIn);

    [Theory]
    [InlineData("cpuminer-sse2")]
    [InlineData("cpuminer-avx2")]
    [InlineData("cpuminer-aes-sse42")]
    [InlineData("cpuminer-avx512-sha-vaes")] // past 15 bytes: the kernel keeps "cpuminer-avx512"
    [InlineData("cpuminer-zen3")]
    [InlineData("xmrig-6.21.0")]
    [InlineData("xmr-stak-rx")]
    [InlineData("ccminer-x64")]
    [InlineData("lolMiner_v1.88")]
    [InlineData("SRBMiner-MULTI")]
    [InlineData("srbminer-multi")] // ASCII case does not count
    [InlineData("XMRIG")]
    [InlineData("XMRig")]
    [InlineData("xmrig6")]
    [InlineData("xmrigDaemon")]
    [InlineData("XMR-STAK-RX")]
    public void ReleaseNamesOfAFamilyAreKnownMinersAnywhere(string name)
    {
        Assert.Equal(Detectors.KnownMiner, BuiltIn.RuleFor(name, inJob: false));
    }

    [Theory]
    [InlineData("minerd", true, "miner-in-job")]
    [InlineData("minerd", false, null)]
    [InlineData("minerd-2.5.1", true, "miner-in-job")]
    [InlineData("cpuminer", false, null)] // the whole name is shared with real programs
    [InlineData("cpuminer", true, "miner-in-job")]
    [InlineData("ethminerd", false, null)] // a whole name matches whole
    [InlineData("MINERD", true, "miner-in-job")]
    [InlineData("xm", false, null)]
    [InlineData("python3", true, null)]
    [InlineData("ccminerx", false, null)]
    public void WholeNamesMatchWholeAndTheLongestMatchDecides(string name, bool inJob, string? rule)
    {
        Assert.Equal(rule, BuiltIn.RuleFor(name, inJob)?.Name);
    }

    [Fact]
    public void TheLongestOfAFamilyAndAWholeNameDecidesAsInTheKernel()
    {
        // "tool-*" acts anywhere; the whole name "tool-x" only in jobs: outside a job tool-x is nothing.
        Policy policy = Policies.Over("[indicators]\nminer_names = [\"tool-*\"]\nminer_names_in_jobs = [\"tool-x\"]\n");
        var findings = new KnownMinerFindings(policy);
        Assert.Null(findings.RuleFor("tool-x", inJob: false));
        Assert.Equal(Detectors.MinerInJob, findings.RuleFor("tool-x", inJob: true));
        Assert.Equal(Detectors.KnownMiner, findings.RuleFor("tool-y", inJob: false));
    }

    [Theory]
    [InlineData("x*", "stem")]
    [InlineData("*", "empty")]
    [InlineData("cpu*miner", "end")]
    [InlineData("", "empty")]
    public void AFamilyNeedsAStemAndAStarOnlyAtTheEnd(string name, string why)
    {
        Assert.Contains(why, MinerNamePattern.Problem(name), StringComparison.Ordinal);
        var errors = new List<PolicyError>();
        PolicyParser.Parse($"[indicators]\nminer_names = [\"{name}\"]\n", "p.toml", PolicyLoader.BuiltIn, errors);
        Assert.Equal("2:indicators.miner_names", Assert.Single(errors) is { } e ? $"{e.Line}:{e.Key}" : "");
    }

    [Theory]
    [InlineData("/lib64/ld-linux-x86-64.so.2\0./cpuminer-avx2\0-a\0sha256d", "./cpuminer-avx2")]
    [InlineData("/lib64/ld-linux-x86-64.so.2\0--library-path\0/opt/lib\0--argv0\0kworker\0/tmp/xmrig\0-o\0x", "/tmp/xmrig")]
    [InlineData("/lib/ld-musl-x86_64.so.1\0--\0/tmp/xmrig", "/tmp/xmrig")]
    [InlineData("/lib64/ld-linux-x86-64.so.2\0--list\0/bin/ls", "/bin/ls")]
    [InlineData("/usr/bin/python3\0/tmp/xmrig", null)]
    [InlineData("/lib64/ld-linux-x86-64.so.2\0--preload", null)]
    public void TheProgramALoaderRunsIsItsFirstArgumentPastItsOptions(string argv, string? program)
    {
        var table = new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames());
        string path = argv.Split('\0')[0];
        table.OnFork(Records.Fork(740_000, 0));
        ExecRecord exec = Records.Exec(740_000, 0, path);
        ((Span<byte>)exec.Args).Clear();
        System.Text.Encoding.UTF8.GetBytes(argv).CopyTo(exec.Args);
        exec.ArgsLength = (ushort)System.Text.Encoding.UTF8.GetByteCount(argv);
        ProcessEntry entry = table.OnExec(exec);
        Assert.Equal(program, KnownMinerFindings.LoadedProgram(entry));
    }

    [Fact]
    public void AMinerRunThroughTheLoaderIsAFindingOnTheProgramsName()
    {
        var table = new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames());
        table.OnFork(Records.Fork(740_001, 0));
        ProcessEntry entry = table.OnExec(Records.Exec(740_001, 0, "/lib64/ld-linux-x86-64.so.2 ./cpuminer-avx2 -a sha256d"));
        AlertEvent alert = BuiltIn.OnLoaderExec(entry, 10)!;
        Assert.Equal("known-miner", alert.Rule);
        Assert.Equal(PolicyLoader.BuiltIn.ActionFor(Detectors.KnownMiner), alert.RequestedAction);
        Assert.Contains(new KeyValuePair<string, string>("program", "./cpuminer-avx2"), alert.Evidence);
        Assert.Null(BuiltIn.OnLoaderExec(table.OnExec(Records.Exec(740_001, 0, "/lib64/ld-linux-x86-64.so.2 /usr/bin/python3 train.py")), 11));
    }
}
