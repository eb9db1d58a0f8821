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
    [InlineData("watch", "--ring-size", "3000")]
    [InlineData("watch", "--gpu-interval", "often")]
    [InlineData("gpu", "--interval", "soon")]
    [InlineData("quarantine", "--timeout", "soon", "1234")]
    [InlineData("quarantine")]
    [InlineData("release")]
    [InlineData("frobnicate")]
    public void UsageErrorsExitTwoWithOneLine(params string[] args)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(args, console));
        string first = console.ErrorText.Split('\n')[0];
        Assert.StartsWith("guard: ", first, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", console.ErrorText, StringComparison.Ordinal);
    }

    [Fact]
    public void VersionPrintsTheVersionAndTheRecordAbi()
    {
        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["version"], console));
        Assert.Matches(@"^guard \d+\.\d+\.\d+ \(record ABI \d+", console.Out.ToString());
    }
}
