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
}
