using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class TextEncoderTests
{
    [Fact]
    public void AnAlertReadsAsOneLineWithItsEvidenceAndResponse()
    {
        var encoder = new TextEncoder(RunInfo.ForThisHost("test"), new ArgumentRedactor());
        string line = encoder.Encode(new AlertEvent
        {
            Rule = "stratum",
            Description = "a Stratum mining message",
            Evidence = [new("destination", "127.0.0.1:3333"), new("first_bytes", "{\"id\":1}\n\u001b[31m")],
            Response = ["killed 1 process"],
        });
        Assert.Contains("ALERT stratum: a Stratum mining message; destination=127.0.0.1:3333", line, StringComparison.Ordinal);
        Assert.Contains("\\x0a\\x1b[31m", line, StringComparison.Ordinal); // control bytes cannot drive the terminal
        Assert.EndsWith("; killed 1 process", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line);
    }

    [Theory]
    [InlineData(GpuEventKind.Open, "gpu-open ")]
    [InlineData(GpuEventKind.FirstIoctl, "gpu-first-ioctl ")]
    [InlineData(GpuEventKind.Activity, "gpu      ")]
    public void AGpuOpenOrFirstIoctlGoesByItsEcsName(GpuEventKind kind, string column)
    {
        var encoder = new TextEncoder(new RunInfo("host", "boot", "test", 0), new ArgumentRedactor());
        string line = encoder.Encode(new GpuEvent { Kind = kind, Major = 195, Minor = 0, Activity = kind == GpuEventKind.Activity ? new() : null });
        Assert.Equal(column, line[13..(13 + column.Length)]);
        Assert.Contains("device 195:0", line, StringComparison.Ordinal);
    }

    [Fact]
    public void WithColourAnAlertIsBoldRedAnActionYellowAndTheRestPlain()
    {
        var run = new RunInfo("host", "boot", "test", 0);
        var coloured = new TextEncoder(run, new ArgumentRedactor(), colour: true);
        var alert = new AlertEvent { Rule = "known-miner", Description = "a miner", Evidence = [new("name", "\u001b[0mxmrig")], Response = ["killed 1 process"] };
        string line = coloured.Encode(alert);
        Assert.StartsWith(TextEncoder.AlertColour, line, StringComparison.Ordinal);
        Assert.EndsWith(TextEncoder.ResetColour, line, StringComparison.Ordinal);
        // The only sequences are Guard's own: a process's escape stays escaped.
        Assert.Equal(2, line.Split('\u001b').Length - 1);
        Assert.StartsWith(TextEncoder.ActionColour, coloured.Encode(new ActionEvent { Action = "kill", Message = "killed 1 process" }), StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', coloured.Encode(new GpuEvent { Kind = GpuEventKind.Open, Major = 195, Minor = 0 }));
        Assert.DoesNotContain('\u001b', new TextEncoder(run, new ArgumentRedactor()).Encode(alert));
    }
}
