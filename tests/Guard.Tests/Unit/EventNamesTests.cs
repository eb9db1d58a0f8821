using Guard.Cli;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>The one table of event names, and the places that read it.</summary>
public sealed class EventNamesTests
{
    [Fact]
    public void TypeSelectsWhatItAlwaysDid()
    {
        Assert.Equal(["exec", "fork", "exit", "connect", "payload", "dns", "gpu", "alert", "confine"], EventNames.SelectableTypes.Select(EventNames.Of));
        foreach (EventType t in EventNames.SelectableTypes)
        {
            Assert.True(EventNames.TryParseSelectable(EventNames.Of(t), out EventType parsed));
            Assert.Equal(t, parsed);
        }
    }

    [Theory]
    [InlineData("heartbeat")]
    [InlineData("action")]
    [InlineData("EXEC")]
    [InlineData("gpu-open")]
    [InlineData("")]
    public void TypeRefusesWhatItAlwaysRefused(string name) => Assert.False(EventNames.TryParseSelectable(name, out _));

    [Fact]
    public void EveryActionHasItsOwnNameInBothEncodings()
    {
        string[] names = [.. Enum.GetValues<EventAction>().Select(EventNames.Action)];
        Assert.Equal(names.Length, names.Distinct().Count());
        foreach (EventAction a in Enum.GetValues<EventAction>())
            Assert.Equal(EventNames.Action(a), System.Text.Encoding.UTF8.GetString(EventNames.Utf8(a)));
        Assert.Equal("gpu-first-ioctl", EventNames.Action(EventNames.ActionOf(GpuEventKind.FirstIoctl)));
    }

    [Fact]
    public void RecordKindsKeepTheirNamesAndAnUnknownOneIsUnknown()
    {
        Assert.Equal(
            ["unknown", "exec", "fork", "exit", "connect", "payload", "dns", "gpu_open", "gpu_ioctl", "stream", "exec_args", "unknown", "unknown"],
            Enumerable.Range(0, (int)RecordKind.Count + 2).Select(k => System.Text.Encoding.UTF8.GetString(EventNames.Utf8((RecordKind)k))));
        Assert.Equal("gpu_ioctl", EventNames.Of(RecordKind.GpuIoctl));
    }

    [Fact]
    public void WatchNamesTheTypesItAcceptsWhenGivenAnotherOne()
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(["watch", "--type", "exec,heartbeat"], console));
        Assert.StartsWith(
            "guard: --type: 'heartbeat' is not an event type (exec, fork, exit, connect, payload, dns, gpu, alert, confine)",
            console.ErrorText, StringComparison.Ordinal);
    }
}
