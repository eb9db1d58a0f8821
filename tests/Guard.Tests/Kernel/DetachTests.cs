using System.Diagnostics;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// `guard detach --all` on a `guard watch` this test starts. It signals every
/// Guard sensor on the host, so it runs only when the test's own is the only
/// one, and fails saying so otherwise.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class DetachTests
{
    [Fact]
    public void DetachAllStopsEverySensorAndLeavesNothingBehind()
    {
        KernelRequirements.Check();
        string cli = typeof(GuardCli).Assembly.Location;
        using Process watch = Run.Start("dotnet", cli, "watch", "--duration", "60s", "--output", "json");
        using Process held = Run.Start("/bin/sleep", "60");
        try
        {
            Assert.Equal(0, GuardCli.Run(["quarantine", held.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], new TestConsole()));
            IReadOnlyList<int> holders = [];
            for (int i = 0; i < 100 && !holders.Contains(watch.Id); i++)
            {
                Thread.Sleep(100);
                holders = EmergencyDetach.Holders();
            }
            Assert.True(holders.SequenceEqual([watch.Id]), $"another Guard sensor runs on this host ({string.Join(", ", holders)}): not signalling what this test did not start");

            var console = new TestConsole();
            Assert.Equal(0, GuardCli.Run(["detach", "--all", "--output", "json"], console));

            Assert.True(watch.WaitForExit(10_000));
            Assert.Equal(0, watch.ExitCode); // SIGTERM: a clean detach and a summary
            Assert.Contains("guard watch: detached", watch.StandardError.ReadToEnd(), StringComparison.Ordinal);
            Assert.Empty(GuardProgramsLoaded.List());
            Assert.False(Directory.Exists(Pins.Root), "pins are left");
            Assert.Contains("State:\tS", File.ReadAllText($"/proc/{held.Id}/status"), StringComparison.Ordinal); // released, not left stopped
            JsonElement audit = JsonDocument.Parse(console.JsonLines().Single()).RootElement;
            Assert.Equal("detach-all", audit.GetProperty("event").GetProperty("action").GetString());
            Assert.Equal("success", audit.GetProperty("event").GetProperty("outcome").GetString());
            Assert.Equal([watch.Id], audit.GetProperty("guard").GetProperty("action").GetProperty("pids").EnumerateArray().Select(p => p.GetInt32()));
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            GuardCli.Run(["release", "--all"], new TestConsole());
            held.Kill();
        }
    }

    [Fact]
    public void DetachWithoutAllIsAUsageError()
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(["detach"], console));
        Assert.Contains("--all", console.ErrorText, StringComparison.Ordinal);
    }
}
