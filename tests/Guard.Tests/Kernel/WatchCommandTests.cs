using System.Diagnostics;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>`guard watch` as a user runs it, in process, with its output read back.</summary>
[Collection(KernelTestGroup.Name)]
public sealed class WatchCommandTests
{
    private static JsonElement[] Parse(TestConsole console) =>
        [.. console.JsonLines().Select(l => JsonDocument.Parse(l).RootElement.Clone())];

    private static string Action(JsonElement e) => e.GetProperty("event").GetProperty("action").GetString()!;

    private static string[] Args(JsonElement e) => RecordedEvent.ArgsOf(e);

    [Fact]
    public void PidAndTypeFiltersShowOnlyTheTreeAndTheTypesAsked()
    {
        KernelRequirements.Check();
        string mine = "mine-" + Guid.NewGuid().ToString("N")[..8];
        string other = "other-" + Guid.NewGuid().ToString("N")[..8];
        // Both trees start before the sensor; their children exec once it runs.
        using Process watched = Run.Start("/bin/sh", "-c", $"sleep 2; /bin/sh -c '/bin/echo {mine}; true'; /bin/echo {mine}-b");
        using Process unwatched = Run.Start("/bin/sh", "-c", $"sleep 2; /bin/echo {other}");
        var console = new TestConsole();

        int rc = GuardCli.Run(["watch", "--duration", "4s", "--output", "json", "--pid", watched.Id.ToString(), "--type", "exec"], console);

        Assert.True(rc == 0, console.ErrorText);
        JsonElement[] events = Parse(console);
        Assert.All(events.Where(e => Action(e) != "heartbeat"), e => Assert.Equal("exec", Action(e)));
        Assert.Contains(events, e => Args(e).SequenceEqual(["/bin/echo", mine]));
        Assert.Contains(events, e => Args(e).SequenceEqual(["/bin/echo", mine + "-b"]));
        Assert.DoesNotContain(events, e => Args(e).Contains(other));
        // Sequence numbers are per run and strictly increasing.
        long[] sequence = [.. events.Select(e => e.GetProperty("event").GetProperty("sequence").GetInt64())];
        Assert.Equal(sequence.Order(), sequence);
        Assert.Equal(sequence.Length, sequence.Distinct().Count());
        watched.WaitForExit();
        unwatched.WaitForExit();
    }

    [Fact]
    public void WatchDetachesItsOwnProgramsAndLeavesOnlyTheHandedOverEnforcementAndTheLineageRecorder()
    {
        KernelRequirements.Check();
        var console = new TestConsole();
        int rc = GuardCli.Run(["watch", "--duration", "1s", "--output", "json", "--gpu-device", "1:7"], console);
        Assert.True(rc == 0, console.ErrorText);
        Assert.Contains("guard watch: detached", console.ErrorText, StringComparison.Ordinal);
        Assert.Contains("enforcement programs stay", console.ErrorText, StringComparison.Ordinal);
        Assert.Contains(BpfProgramNames.Ioctl, console.ErrorText.Split('\n').Single(l => l.Contains("attached", StringComparison.Ordinal)), StringComparison.Ordinal);

        // What stays is the enforcement and the lineage recorder, pinned; removing them leaves nothing.
        Assert.Equal(
            [BpfProgramNames.EnforceCgroupAttach, BpfProgramNames.EnforceConnect4, BpfProgramNames.EnforceConnect6, BpfProgramNames.EnforceEgress, BpfProgramNames.EnforceExec, BpfProgramNames.EnforceExit, BpfProgramNames.EnforceFork,
             BpfProgramNames.LineageExit, BpfProgramNames.LineageFork],
            Pins.Links(Pins.Root).Select(Path.GetFileName));
        static bool Stays(string name) => name.StartsWith(BpfProgramNames.EnforcePrefix, StringComparison.Ordinal) || name.StartsWith(BpfProgramNames.LineagePrefix, StringComparison.Ordinal);
        string[] names = GuardProgramNames();
        for (int i = 0; i < 30 && !names.All(Stays); i++)
        {
            Thread.Sleep(100); // the kernel frees a detached program after an RCU grace period
            names = GuardProgramNames();
        }
        Assert.All(names, n => Assert.True(Stays(n), n));

        EnforcementKernel.Remove();
        LineageKernel.Remove();
        for (int i = 0; i < 30 && (names = GuardProgramNames()).Length > 0; i++)
            Thread.Sleep(100);
        Assert.Empty(names);
        Assert.DoesNotContain(BpfProgramNames.Prefix, Run.Complete("bpftool", "link", "show", "--json"), StringComparison.Ordinal);
        Assert.Empty(Pins.Links(Pins.Root));
    }

    private static string[] GuardProgramNames() =>
        [.. JsonDocument.Parse(Run.Complete("bpftool", "prog", "show", "--json")).RootElement.EnumerateArray()
            .Select(p => p.TryGetProperty("name", out JsonElement n) ? n.GetString()! : "")
            .Where(n => n.StartsWith(BpfProgramNames.Prefix, StringComparison.Ordinal))];

    [Fact]
    public void TextOutputIsOneReadableLinePerEvent()
    {
        KernelRequirements.Check();
        string marker = "text-" + Guid.NewGuid().ToString("N")[..8];
        using Process p = Run.Start("/bin/sh", "-c", $"sleep 1.5; /bin/echo {marker}");
        var console = new TestConsole();
        int rc = GuardCli.Run(["watch", "--duration", "3s", "--output", "text", "--pid", p.Id.ToString()], console);
        Assert.True(rc == 0, console.ErrorText);
        string[] lines = console.JsonLines(); // stdout's lines, text here
        Assert.Contains(lines, l => l.Contains(" exec ", StringComparison.Ordinal) && l.Contains($"/bin/echo {marker}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" exit ", StringComparison.Ordinal) && l.Contains("exit code 0", StringComparison.Ordinal));
        p.WaitForExit();
    }

    [Fact]
    public void QuietKeepsStderrToWarningsAndErrorsWhileEventsGoOn()
    {
        KernelRequirements.Check();
        string marker = "quiet-" + Guid.NewGuid().ToString("N")[..8];
        using Process p = Run.Start("/bin/sh", "-c", $"sleep 1; /bin/echo {marker}");
        var console = new TestConsole();
        int rc = GuardCli.Run(["watch", "--quiet", "--duration", "2500ms", "--output", "json", "--type", "exec", "--pid", p.Id.ToString()], console);
        Assert.True(rc == 0, console.ErrorText);
        Assert.Contains(console.JsonLines(), l => l.Contains(marker, StringComparison.Ordinal));
        // No start lines, no summary: what is left on stderr is a warning (a host without NVML, say) or nothing.
        Assert.All(console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.Contains("warning", l, StringComparison.Ordinal));
        Assert.DoesNotContain("guard watch: detached", console.ErrorText, StringComparison.Ordinal);
        p.WaitForExit();
    }
}
