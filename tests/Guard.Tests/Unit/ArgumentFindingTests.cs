using System.Text;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Strong miner arguments act alone; fragments ordinary tools share, pool
/// hosts without a port and addresses that only look like wallets are weak:
/// one kind is only kept, two kinds on one command line act.
/// </summary>
public sealed class ArgumentFindingTests
{
    private static ProcessEntry Process(params string[] argv) => new(4242, 1, "test-1-4242", ProcessOrigin.Exec)
    {
        Args = Encoding.UTF8.GetBytes(string.Join('\0', argv)),
        Executable = Encoding.UTF8.GetBytes("/opt/job/" + argv[0]),
        Name = Encoding.UTF8.GetBytes(argv[0]),
    };

    private static AlertEvent? Judge(ProcessEntry process) => new ArgumentFindings(PolicyLoader.BuiltIn).OnExec(process, 0);

    private static AlertEvent? Judge(string command) => Judge(Process(command.Split(' ')));

    public static TheoryData<string> MinerCommandLines =>
        [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "miner-arguments.txt"))
            .Where(l => l.Trim().Length > 0 && !l.StartsWith('#'))];

    [Theory]
    [MemberData(nameof(MinerCommandLines))]
    public void MinerCommandLinesAct(string command)
    {
        AlertEvent alert = Assert.IsType<AlertEvent>(Judge(command));
        Assert.Equal("miner-arguments", alert.Rule);
        Assert.Equal(RuleAction.QuarantineJob, alert.RequestedAction);
    }

    [Fact]
    public void AReinforcementLearningCommandLineGivesNoFindingAndIsOnlyRemembered()
    {
        ProcessEntry process = Process("python3", "train.py", "--algo=ppo", "--env", "CartPole-v1");
        Assert.Null(Judge(process));
        KeyValuePair<string, string> kept = Assert.Single(process.WeakEvidence!);
        Assert.Equal("miner-arguments", kept.Key);
        Assert.Contains("--algo=ppo", kept.Value, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("python3 train.py --coin=btc --algo=lstm --epochs 3")] // two shared options are one kind of signal
    [InlineData("python3 backtest.py --algo ppo --data 10.1.2.3:8080")] // a private address on a pool port is none
    [InlineData("curl -s https://api.nicehash.com/main/api/v2/public/stats")] // a pool's web page: one weak signal
    [InlineData("grep -r stratum+tcp:// /var/log")] // a scheme with no host is no pool
    [InlineData("python3 sign.py --to 0xde709f2102306220921060314715629080e2fb77")] // looks like an address, alone
    [InlineData("git checkout c5008e6d3f0f2b8d1ea5b0f3a4c2d1e0f9a8b7c6")]
    [InlineData("sha256sum -c e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("python3 eval.py --dataset f2pool.com.csv --out /data/antpool.company/x")] // names that only contain a pool domain
    public void WeakOrNoEvidenceAloneGivesNoFinding(string command)
    {
        Assert.Null(Judge(command));
    }

    [Theory]
    [InlineData("python3 run.py --algo=rx/0 -o 203.0.113.9:3333", "pool")] // a shared option beside a public pool address
    [InlineData("data-loader -a rx/0 --user 0x27b1fdb04752bbc536007a920d24acb045561c26", "wallet")] // across arguments, beside a lookalike
    [InlineData("data-loader --coin monero https://supportxmr.com", "pool_domain")] // "--coin=" as "--coin VALUE", beside a pool host
    public void TwoKindsOfWeakSignalAct(string command, string evidence)
    {
        AlertEvent alert = Assert.IsType<AlertEvent>(Judge(command));
        Assert.Equal(RuleAction.QuarantineJob, alert.RequestedAction);
        Assert.Contains(alert.Evidence, e => e.Key == evidence);
        Assert.Contains(alert.Evidence, e => e.Key is "matched" or "wallet");
    }

    [Theory]
    [InlineData("data-loader -opool.supportxmr.com:443", "pool_domain", "supportxmr.com")] // glued to its option
    [InlineData("data-loader --url=EU.SupportXMR.com.:3333", "pool_domain", "supportxmr.com")] // case and a trailing dot
    [InlineData("data-loader -o [2001:db8::5]:3333 --donate-leve=0", "matched", "--donate-l")] // getopt's abbreviation
    [InlineData("data-loader STRATUM+TCP://pool:3333", "matched", "stratum+tcp://")]
    [InlineData("data-loader -u BTC:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "wallet_format", "bc segwit v0 address")]
    public void StrongSignalsActInAnySpelling(string command, string key, string value)
    {
        AlertEvent alert = Assert.IsType<AlertEvent>(Judge(command));
        Assert.Equal(value, alert.Evidence.Single(e => e.Key == key).Value);
    }

    [Fact]
    public void TheRuleSetOffGivesNothing()
    {
        Policy off = Support.Policies.Over("[rules]\nminer-arguments = \"off\"\n");
        Assert.Null(new ArgumentFindings(off).OnExec(Process("xmrig", "--donate-level", "1"), 0));
    }

    [Fact]
    public void AWeakArgumentBesideLaterPoolDnsRaisesOneAlertThatDoesNotAct()
    {
        ProcessEntry process = Process("python3", "train.py", "--algo=ppo");
        Assert.Null(Judge(process));
        AlertEvent alert = Assert.IsType<AlertEvent>(new WeakFindings(PolicyLoader.BuiltIn).OnDns(process, "xmr.2miners.com", 1));
        Assert.Equal(RuleAction.Alert, alert.RequestedAction);
        Assert.Contains(alert.Evidence, e => e.Key == "miner-arguments.0");
        Assert.Contains(alert.Evidence, e => e.Key == "pool-dns.1");
    }

    [Fact]
    public void AnyCommandLineIsJudgedWithoutFailing()
    {
        // Arguments are the miner's to choose: no byte sequence may throw in the sensor.
        var findings = new ArgumentFindings(PolicyLoader.BuiltIn);
        byte[] alphabet = "[]:.-=/@ 0123456789abcdefxABCDEF1qp\0\"'\u00ff"u8.ToArray();
        var random = new Random(11);
        for (int n = 0; n < 20_000; n++)
        {
            byte[] args = new byte[random.Next(1, 120)];
            for (int i = 0; i < args.Length; i++)
                args[i] = random.Next(4) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            var process = new ProcessEntry(4242, 1, "test-1-4242", ProcessOrigin.Exec) { Args = args };
            findings.OnExec(process, 0);
        }
        foreach (string edge in new[] { "[", "a [b", "[1.2.3.4", "]:3333", "[::1]:", "x:99999999999", "1.2.3.4:", "stratum+tcp://", "--algo", "0x", "bc1" })
            findings.OnExec(Process("data-loader", edge), 0);
    }
}
