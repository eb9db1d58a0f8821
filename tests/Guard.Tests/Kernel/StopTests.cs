using System.Diagnostics;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Kernel;

/// <summary>
/// `guard watch` as a process, asked to stop with SIGTERM: within a second,
/// whatever it was doing, and with enforcement handed over.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class StopTests
{
    private const int Sigterm = 15;

    /// <summary>A watch with a deny list (so every exec is hashed), its stderr collected; returns once it watches.</summary>
    private static Process StartWatch(TempDir dir, List<string> stderr)
    {
        KernelRequirements.Check();
        string policy = dir.File("policy.toml", $"[indicators]\nminer_hashes = [\"{new string('0', 64)}\"]\n");
        Process watch = Run.Start("dotnet", typeof(GuardCli).Assembly.Location, "watch", "--output", "json", "--policy", policy);
        watch.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (stderr)
                    stderr.Add(line);
            }
        };
        watch.BeginErrorReadLine();
        Stopwatch started = Stopwatch.StartNew();
        while (!Said(stderr, "guard watch: policy"))
        {
            if (watch.HasExited || started.Elapsed > TimeSpan.FromSeconds(30))
                throw new XunitException($"guard watch did not start: {string.Join("\n", stderr)}");
            Thread.Sleep(20);
        }
        return watch;
    }

    private static bool Said(List<string> stderr, string text)
    {
        lock (stderr)
            return stderr.Any(l => l.Contains(text, StringComparison.Ordinal));
    }

    /// <summary>SIGTERM through a pidfd; returns how long the watch took to exit, failing past <paramref name="limitMs"/>.</summary>
    private static TimeSpan Terminate(Process watch, List<string> stderr, int limitMs)
    {
        using Pidfd pidfd = Pidfd.TryOpen(watch.Id, out int errno) ?? throw new XunitException($"cannot open the watch's pidfd: errno {errno}");
        Stopwatch took = Stopwatch.StartNew();
        Assert.Equal(0, pidfd.Signal(Sigterm));
        bool exited = watch.WaitForExit(limitMs);
        took.Stop();
        Assert.True(exited, $"guard watch did not exit within {limitMs} ms of SIGTERM; stderr:\n{string.Join("\n", stderr)}");
        watch.WaitForExit(); // the stderr reader finishes
        return took.Elapsed;
    }

    private static void Stop(Process watch)
    {
        if (!watch.HasExited)
            watch.Kill();
        watch.WaitForExit();
        EnforcementKernel.Remove();
        // A watch killed here leaves its own pins enforcing; it is gone, so they go too.
        SensorPins.RemoveDead(static (_, _) => false);
    }

    [Fact]
    public void AWatchKeepsSeeingAfterDescriptorExecsAndStopsWithinASecondOfSigterm()
    {
        using var dir = new TempDir();
        string quick = Path.Combine(dir.Path, "quick");
        File.Copy("/bin/true", quick);
        var stderr = new List<string>();
        var stdout = new List<string>();
        using Process watch = StartWatch(dir, stderr);
        try
        {
            watch.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (stdout)
                        stdout.Add(line);
                }
            };
            watch.BeginOutputReadLine();
            // Each names a descriptor of the sensor's own once the process is gone.
            Run.Complete(Run.Python, "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.execve(fd, ['quick'], {})\n", quick);
            Run.Complete(Run.Python, "-c", "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.execv(f'/proc/self/fd/{fd}', ['quick'])\n", quick);
            string marker = "after-fd-exec-" + Guid.NewGuid().ToString("N")[..8];
            Run.Complete("/bin/echo", marker);
            Stopwatch waited = Stopwatch.StartNew();
            while (!Said(stdout, marker))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(5), "guard watch went blind: the exec after the descriptor execs never showed");
                Thread.Sleep(20);
            }

            TimeSpan took = Terminate(watch, stderr, 1000);

            Assert.True(watch.ExitCode == 0, $"exit code {watch.ExitCode} after {took.TotalMilliseconds:F0} ms; stderr:\n{string.Join("\n", stderr)}");
            Assert.True(Said(stderr, "guard watch: detached"));
            Assert.True(Said(stderr, "enforcement programs stay"));
        }
        finally
        {
            Stop(watch);
        }
    }

    [Fact]
    public void SigtermEndsAWatchWhoseStdoutNoOneReadsInOrderWithinASecondCountingWhatStdoutLost()
    {
        using var dir = new TempDir();
        var stderr = new List<string>();
        using Process watch = StartWatch(dir, stderr);
        try
        {
            // Nothing reads its stdout: a few hundred execs fill the pipe and the stdout writer blocks.
            Run.Complete("/bin/sh", "-c", "for i in $(seq 1 600); do /bin/true; done");
            string[] waits = [];
            for (int i = 0; i < 100 && !waits.Any(w => w.Contains("pipe", StringComparison.Ordinal)); i++)
            {
                Thread.Sleep(20);
                waits = [.. Directory.GetDirectories($"/proc/{watch.Id}/task").Select(t => File.ReadAllText(Path.Combine(t, "wchan")))];
            }
            Assert.True(waits.Any(w => w.Contains("pipe", StringComparison.Ordinal)), $"the watch never blocked on its stdout (its threads wait in {string.Join(", ", waits.Distinct())}): nothing was tested");
            // Only the stdout writer waits: the ring is still drained.
            Assert.Equal(watch.Id, RunningSensors.List().Single(s => s.Pid == watch.Id).Pid);
            Assert.False(RunningSensors.List().Single(s => s.Pid == watch.Id).Stalled(DateTimeOffset.UtcNow.AddSeconds(25)), "the drain stalled behind a blocked stdout");

            Terminate(watch, stderr, 1000);

            Assert.True(watch.ExitCode == 0, string.Join("\n", stderr));
            Assert.True(Said(stderr, "guard watch: detached"), string.Join("\n", stderr));
            Assert.True(Said(stderr, "enforcement programs stay"), string.Join("\n", stderr));
            Assert.True(stderr.Any(l => l.StartsWith("guard watch: outputs: stdout", StringComparison.Ordinal) && l.Contains(" dropped", StringComparison.Ordinal)), string.Join("\n", stderr));
            Assert.NotEmpty(Pins.Links(EnforcementKernel.PinRoot));
        }
        finally
        {
            Stop(watch);
        }
    }
}
