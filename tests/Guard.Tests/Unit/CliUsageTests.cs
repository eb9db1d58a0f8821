using Guard.Cli;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>Bad command lines: one line on stderr, exit 2, nothing loaded.</summary>
public sealed class CliUsageTests
{
    [Theory]
    [InlineData("watch", "--bogus")]
    [InlineData("watch", "--type", "exec,nope")]
    [InlineData("watch", "--output", "xml")]
    [InlineData("watch", "--duration", "soon")]
    [InlineData("watch", "--pid", "abc")]
    [InlineData("watch", "--pid", "-4")]
    [InlineData("watch", "--gpu-device", "nvidia")]
    [InlineData("watch", "--gpu-device", "999999")]
    [InlineData("watch", "--gpu-device", "1:2000000")]
    [InlineData("watch", "--gpu-device", "/etc/hostname")]
    [InlineData("quarantine", "--gpu-device", "999999", "1234")]
    [InlineData("watch", "--ring-size", "3000")]
    [InlineData("watch", "--gpu-interval", "often")]
    [InlineData("watch", "--metrics", "localhost:9464")]
    [InlineData("watch", "--metrics", "70000")]
    [InlineData("watch", "--drop-alert-rate", "0")]
    [InlineData("watch", "--drop-alert-rate", "lots/s")]
    [InlineData("gpu", "--interval", "soon")]
    [InlineData("quarantine", "--timeout", "soon", "1234")]
    [InlineData("quarantine")]
    [InlineData("release")]
    [InlineData("frobnicate")]
    [InlineData("watch", "--pid", "0")]
    [InlineData("detach", "--bogus")]
    [InlineData("kill")]
    public void UsageErrorsExitTwoWithOneLine(params string[] args)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(args, console));
        string[] lines = console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("guard: ", lines[0], StringComparison.Ordinal);
        // The problem on one line, as the README says.
        Assert.True(lines.Length == 1, console.ErrorText);
        Assert.DoesNotContain("   at ", console.ErrorText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("guard: 'wach' is not a guard command; did you mean 'watch'?", "wach")]
    [InlineData("guard: 'stauts' is not a guard command; did you mean 'status'?", "stauts")]
    [InlineData("guard: unknown option '-v' for 'guard'; did you mean '--version'?", "-v")]
    [InlineData("guard: unknown option '--pdi' for 'guard watch'; did you mean '--pid'?", "watch", "--pdi", "3")]
    [InlineData("guard: guard kill always sends SIGKILL (through a pidfd); leave '-9' out", "kill", "-9", "4242")]
    [InlineData("guard: guard kill always sends SIGKILL (through a pidfd); leave '-KILL' out", "kill", "-KILL", "4242")]
    [InlineData("guard: --pid: 'abc' is not a process id (a whole number above 0)", "watch", "--pid", "abc")]
    [InlineData("guard: --gpu-device: '999999' is not MAJOR:MINOR, MAJOR:* (every minor) or a /dev path, each but the path with an optional /uvm", "watch", "--gpu-device", "999999")]
    [InlineData("guard: --gpu-device: '70000:1': major 70000 is out of range (1 to 4095)", "watch", "--gpu-device", "70000:1")]
    [InlineData("guard: no command given to 'guard' (commands: watch, kill, quarantine, release, status, gpu, detach, policy, confine, approvals, approve, deny, version, completion)")]
    // Refused before anything loads: the policy file named does not exist, so a broken check would fail on that instead.
    [InlineData("guard: --job: 'foo' names no job; a job is slurm:N, k8s-pod:UID, container:ID, systemd:UNIT or tree:ENTITY_ID", "watch", "--job", "foo", "--policy", "/nonexistent/policy.toml")]
    public void AMistakeIsNamedWithWhatWasMeant(string said, params string[] args)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(args, console));
        Assert.Equal(said, console.ErrorText.Split('\n')[0]);
    }

    [Fact]
    public void HelpAsACommandIsTheHelpOption()
    {
        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["help", "kill"], console));
        Assert.Contains("--tree", console.Out.ToString(), StringComparison.Ordinal);
        Assert.Equal("", console.ErrorText);
    }

    [Fact]
    public void VersionPrintsTheVersionAndTheRecordAbi()
    {
        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["version"], console));
        Assert.Matches(@"^guard \d+\.\d+\.\d+ \(record ABI \d+", console.Out.ToString());
    }

    /// <summary>
    /// `guard ... > file 2>&1`: stdout and stderr share one open file and its offset. Each line
    /// lands after the other (stdout is written with write(2), not a FileStream's own position).
    /// </summary>
    [Fact]
    public void StdoutAndStderrSentToOneFileKeepEveryLine()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "out");
        using (System.Diagnostics.Process p = Run.Start("/bin/sh", "-c", $"\"$0\" gpu -o json > {file} 2>&1; \"$0\" gpu -o json >> {file} 2>&1", Run.GuardExecutable))
            Assert.True(p.WaitForExit(30_000));
        string[] lines = File.ReadAllLines(file);
        // Each run: its JSON (written before anything else) and, where NVML is missing, the reason on stderr after it.
        Assert.Equal(2, lines.Count(l => l.StartsWith("{\"nvml\":", StringComparison.Ordinal)));
        Assert.All(lines.Where(l => l.StartsWith('{')), l => System.Text.Json.JsonDocument.Parse(l).Dispose());
        Assert.All(lines.Where(l => !l.StartsWith('{')), l => Assert.StartsWith("guard: ", l, StringComparison.Ordinal));
    }
}
