using System.Diagnostics;
using Guard.Cli;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Unit;

/// <summary>packaging/systemd/guard.service: what systemd makes of it, and what it promises the sensor.</summary>
public sealed class SystemdUnitTests
{
    private static readonly string[] RequiredCapabilities = ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_KILL"];

    private static string UnitPath => Path.Combine(RepoPaths.Root, "packaging", "systemd", "guard.service");

    private static Dictionary<string, string> Settings() =>
        File.ReadLines(UnitPath)
            .Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith('[') && l.Contains('=', StringComparison.Ordinal))
            .Select(l => l.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv[1]);

    [Fact]
    public void SystemdAnalyzeVerifiesTheUnit()
    {
        if (!File.Exists("/usr/bin/systemd-analyze"))
            throw new XunitException("systemd-analyze is missing: packaging/setup.sh installs it (Debian's systemd package)");
        // verify wants ExecStart's file to exist: the same unit, run on the guard this build made.
        string guard = Path.Combine(Path.GetDirectoryName(typeof(GuardCli).Assembly.Location)!, "guard");
        DirectoryInfo dir = Directory.CreateTempSubdirectory("guard-unit-");
        try
        {
            string unit = Path.Combine(dir.FullName, "guard.service");
            File.WriteAllText(unit, File.ReadAllText(UnitPath).Replace("ExecStart=/usr/bin/guard ", $"ExecStart={guard} ", StringComparison.Ordinal));
            using Process verify = Run.Start("/usr/bin/systemd-analyze", "verify", unit);
            string said = verify.StandardError.ReadToEnd() + verify.StandardOutput.ReadToEnd();
            Assert.True(verify.WaitForExit(30_000), "systemd-analyze verify did not finish in 30 s");
            Assert.True(verify.ExitCode == 0 && said.Trim().Length == 0, $"systemd-analyze verify: exit {verify.ExitCode}: {said}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheUnitIsANotifyServiceWithAWatchdogAndTheHardeningOfABpfSensor()
    {
        Dictionary<string, string> s = Settings();
        Assert.Equal("notify", s["Type"]);
        Assert.Equal("/usr/bin/guard watch --output json", s["ExecStart"]);
        Assert.Equal("always", s["Restart"]);
        Assert.True(s.ContainsKey("WatchdogSec"), "no WatchdogSec: a hung sensor would never be restarted");
        Assert.Equal("strict", s["ProtectSystem"]);
        Assert.Equal("yes", s["NoNewPrivileges"]);
        Assert.Equal("yes", s["PrivateTmp"]);
        Assert.Equal("0077", s["UMask"]);
        Assert.True(s.ContainsKey("ProtectHome"));
        // The runtime directory outlives a restart: registrations, locks and the action log are read across it.
        Assert.Equal("guard", s["RuntimeDirectory"]);
        Assert.Equal("yes", s["RuntimeDirectoryPreserve"]);
        // ProtectSystem=strict leaves /var/log read-only: the README's event file (/var/log/guard/events.jsonl) needs its directory opened.
        Assert.Equal("guard", s["LogsDirectory"]);
        string[] caps = s["CapabilityBoundingSet"].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // What Privileges.Require asks for, and the signals the responder sends.
        Assert.All(RequiredCapabilities, c => Assert.Contains(c, caps));
        Assert.DoesNotContain("CAP_NET_RAW", caps);
        Assert.DoesNotContain("CAP_SYS_MODULE", caps);
        Assert.Equal("yes", s["ProtectKernelModules"]);
        // The RandomX sampling threads run at SCHED_FIFO: RestrictRealtime=yes or no CAP_SYS_NICE would leave them at nice -20.
        Assert.Contains("CAP_SYS_NICE", caps);
        Assert.Equal("no", s["RestrictRealtime"]);
    }
}
