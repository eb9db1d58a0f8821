using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A process that spins with the FPU rounding mode set upward, as RandomX
/// does, silent on the network and under an innocent name, beside an ordinary
/// spinner on the same CPU so both are switched out at every tick.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class RandomxTests
{
    private const string RoundingSpinner = """
        import ctypes, time
        ctypes.CDLL('libm.so.6').fesetround(0x800)  # FE_UPWARD: MXCSR rounding bits 01
        end = time.time() + 20
        x = 0.1
        while time.time() < end:
            x = x * 1.0000001 + 0.1
        """;

    [Fact]
    public void ASpinnerInANonDefaultRoundingModeIsFoundAndKilled()
    {
        Policy policy = Policies.Over("[thresholds]\nrandomx_rounding_switches = 50\nrandomx_window_seconds = 10\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });
        Assert.Contains(sensor.Sensor.Kernel.Attached, a => a.Spec.Name == BpfProgramNames.Fpu);

        using Process ordinary = Run.Start("taskset", "-c", "0", "/bin/sh", "-c", "end=$(($(date +%s)+20)); while [ $(date +%s) -lt $end ]; do :; done");
        using Process spinner = Run.Start("taskset", "-c", "0", Run.Python, "-c", RoundingSpinner);
        try
        {
            RecordedEvent alert = sensor.WaitFor("randomx alert", e => e.Action == "randomx", timeoutMs: 15_000);
            Assert.Equal(spinner.Id, alert.Pid);
            JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
            Assert.True(int.Parse(finding.GetProperty("evidence").GetProperty("rounding_switches").GetString()!, System.Globalization.CultureInfo.InvariantCulture) >= 50);
            Assert.StartsWith("killed", finding.GetProperty("response")[0].GetString(), StringComparison.Ordinal);
            Assert.True(spinner.WaitForExit(5000));
            Assert.Equal(137, spinner.ExitCode);
            Assert.False(ordinary.HasExited, "the ordinary spinner keeps running");
            Assert.DoesNotContain(sensor.Events, e => e.Action == "randomx" && e.Pid != spinner.Id);
        }
        finally
        {
            if (!spinner.HasExited)
                spinner.Kill();
            ordinary.Kill(entireProcessTree: true);
        }
    }
}
