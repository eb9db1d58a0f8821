using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Guard.Sensor.Bpf;
using Guard.Sensor.Output;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Kernel;

/// <summary>
/// `guard watch` as a service, a real process configured by a guard.toml: its
/// file output under an exec storm, rotated every few hundred lines, moved
/// aside and reopened on SIGHUP, stopped by SIGTERM, loses and splits no
/// line; a file on a full disk and a syslog peer that never reads cost only
/// their own lines while stdout, and the ring's drain, go on.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class OutputServiceTests
{
    private const int Sighup = 1;
    private const int Sigterm = 15;

    private static Process StartWatch(string config, string runDir, List<string> stderr)
    {
        KernelRequirements.Check();
        Process watch = Run.StartWith(
            new Dictionary<string, string> { ["GUARD_RUN_DIR"] = runDir, ["GUARD_ACTION_LOG"] = "" },
            Run.GuardExecutable, "watch", "--config", config);
        watch.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (stderr)
                    stderr.Add(line);
            }
        };
        watch.BeginErrorReadLine();
        var started = Stopwatch.StartNew();
        while (!Said(stderr, "guard watch: outputs:"))
        {
            if (watch.HasExited || started.Elapsed > TimeSpan.FromSeconds(30))
                throw new XunitException($"guard watch did not start: {string.Join("\n", Lines(stderr))}");
            Thread.Sleep(20);
        }
        return watch;
    }

    private static string[] Lines(List<string> stderr)
    {
        lock (stderr)
            return [.. stderr];
    }

    private static bool Said(List<string> stderr, string text) => Lines(stderr).Any(l => l.Contains(text, StringComparison.Ordinal));

    private static void Signal(Process watch, int signal)
    {
        using Pidfd pidfd = Pidfd.TryOpen(watch.Id, out int errno) ?? throw new XunitException($"cannot open the watch's pidfd: errno {errno}");
        Assert.Equal(0, pidfd.Signal(signal));
    }

    private static void Stop(Process watch)
    {
        if (!watch.HasExited)
            watch.Kill();
        watch.WaitForExit();
        EnforcementKernel.Remove();
        SensorPins.RemoveDead(static (_, _) => false);
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>GET /metrics from the watch's endpoint: the body of a 200 answer.</summary>
    private static string Scrape(int port)
    {
        using var client = new TcpClient();
        client.ReceiveTimeout = client.SendTimeout = 10_000;
        client.Connect(IPAddress.Loopback, port);
        NetworkStream stream = client.GetStream();
        stream.Write(System.Text.Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nHost: guard\r\n\r\n"));
        using var answer = new MemoryStream();
        stream.CopyTo(answer);
        string text = System.Text.Encoding.UTF8.GetString(answer.ToArray());
        int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0 && text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), $"metrics answered: {text}");
        return text[(split + 4)..];
    }

    /// <summary>The value of the sample <paramref name="name"/>{<paramref name="labels"/>}; fails the test when the scrape lacks it.</summary>
    private static double Metric(string body, string name, string labels = "")
    {
        string prefix = labels.Length == 0 ? name + " " : $"{name}{{{labels}}} ";
        string? line = body.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null
            ? throw new XunitException($"no {prefix.Trim()} in the scrape:\n{body}")
            : double.Parse(line[prefix.Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void AFileRotatedUnderAStormMovedAsideOnSighupAndStoppedBySigtermHoldsEveryLineOnceAndWhole()
    {
        using var dir = new TempDir();
        string events = Path.Combine(dir.Path, "log", "events.jsonl");
        string config = dir.File("guard.toml", $"""
            types = ["exec", "exit"]

            [outputs.stdout]
            format = "none"

            [outputs.file]
            path = "{events}"
            max_size = "96K"
            backups = 1000
            """);
        var stderr = new List<string>();
        using Process watch = StartWatch(config, Path.Combine(dir.Path, "run"), stderr);
        try
        {
            Assert.True(Said(stderr, $"action log {Path.Combine(dir.Path, "run", "actions.jsonl")}"), "the action log is not in GUARD_RUN_DIR: " + string.Join("\n", Lines(stderr)));
            Run.Complete("/bin/sh", "-c", "for i in $(seq 1 1500); do /bin/true; done");
            // logrotate's way: the file moved aside, then SIGHUP; the storm goes on meanwhile.
            File.Move(events, events + ".moved");
            Signal(watch, Sighup);
            Run.Complete("/bin/sh", "-c", "for i in $(seq 1 1500); do /bin/true; done");
            Signal(watch, Sigterm);
            Assert.True(watch.WaitForExit(15_000), "the watch did not stop on SIGTERM");
            watch.WaitForExit();
            Assert.True(watch.ExitCode == 0, string.Join("\n", Lines(stderr)));

            string written = Lines(stderr).Single(l => l.StartsWith("guard watch: outputs: file ", StringComparison.Ordinal) && l.Contains(" written", StringComparison.Ordinal));
            long count = long.Parse(written.Split(' ')[4], System.Globalization.CultureInfo.InvariantCulture);
            Assert.DoesNotContain("dropped", written, StringComparison.Ordinal);
            var sequences = new List<long>();
            string[] files = Directory.GetFiles(Path.GetDirectoryName(events)!);
            foreach (string file in files)
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                IEnumerable<string> lines = file.EndsWith(".gz", StringComparison.Ordinal) ? RotatingFile.ReadBackup(file) : File.ReadLines(file);
                foreach (string line in lines)
                {
                    using JsonDocument doc = JsonDocument.Parse(line); // a split line does not parse
                    sequences.Add(doc.RootElement.GetProperty("event").GetProperty("sequence").GetInt64());
                }
            }
            Assert.True(count > 3000, $"only {count} lines for 3000 execs and their exits: {written}");
            Assert.True(files.Count(f => f.EndsWith(".gz", StringComparison.Ordinal)) > 10, $"few rotations: {string.Join(", ", files.Select(Path.GetFileName))}");
            Assert.Contains(files, f => f.EndsWith(".moved", StringComparison.Ordinal));
            // event.sequence numbers every line written: each once, none missing.
            Assert.Equal(count, sequences.Count);
            Assert.Equal(Enumerable.Range(1, (int)count).Select(i => (long)i), sequences.Order());
        }
        finally
        {
            Stop(watch);
        }
    }

    [Fact]
    public void AFullDiskAndASyslogPeerThatNeverReadsCostOnlyTheirOwnLinesWhileStdoutGetsEveryEventAndTheMetricsCountEachOutputsLoss()
    {
        using var dir = new TempDir();
        string full = Path.Combine(dir.Path, "full");
        Directory.CreateDirectory(full);
        Run.Complete("mount", "-t", "tmpfs", "-o", "size=64k", "guard-test-full", full);
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        Process? watch = null;
        try
        {
            Run.Complete("/bin/sh", "-c", $"dd if=/dev/zero of={full}/filler bs=4k 2>/dev/null; true");
            peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            peer.Listen();
            Task<Socket> accepting = peer.AcceptAsync(); // accepted, never read
            int metricsPort = FreePort();
            string config = dir.File("guard.toml", $"""
                types = ["exec"]

                [outputs]
                queue_size = "256K"

                [outputs.stdout]
                format = "json"

                [outputs.file]
                path = "{full}/events.jsonl"

                [outputs.syslog]
                address = "tcp:127.0.0.1:{((IPEndPoint)peer.LocalEndPoint!).Port}"

                [metrics]
                address = "127.0.0.1:{metricsPort}"
                """);
            var stderr = new List<string>();
            watch = StartWatch(config, Path.Combine(dir.Path, "run"), stderr);
            var stdout = new List<string>();
            var reading = new Thread(() =>
            {
                while (watch.StandardOutput.ReadLine() is { } line)
                {
                    lock (stdout)
                        stdout.Add(line);
                }
            });
            reading.Start();
            string marker = "storm-" + Guid.NewGuid().ToString("N")[..8];
            const int Count = 4000;
            Run.Complete("/bin/sh", "-c", $"for i in $(seq 1 {Count}); do /bin/echo {marker}-$i; done >/dev/null");
            Run.WaitFor(() => { lock (stdout) return stdout.Any(l => l.Contains($"{marker}-{Count}\"", StringComparison.Ordinal)); }, "the storm's last exec on stdout", 20_000);

            // Scraped while the syslog peer still stalls: each output's loss under its own name and reason.
            string scrape = Scrape(metricsPort);
            Assert.True(Metric(scrape, "guard_output_dropped_total", "output=\"syslog\",reason=\"queue_full\"") > 0, scrape);
            Assert.True(Metric(scrape, "guard_output_dropped_total", "output=\"file\",reason=\"write_failed\"") > 0, scrape);
            Assert.Equal(0, Metric(scrape, "guard_output_dropped_total", "output=\"stdout\",reason=\"queue_full\""));
            Assert.Equal(0, Metric(scrape, "guard_output_dropped_total", "output=\"stdout\",reason=\"write_failed\""));
            Assert.True(Metric(scrape, "guard_output_events_total", "output=\"stdout\"") >= Count, scrape);
            Assert.Equal(1, Metric(scrape, "guard_healthy"));
            Signal(watch, Sigterm);
            Assert.True(watch.WaitForExit(15_000), "the watch did not stop on SIGTERM");
            watch.WaitForExit();
            reading.Join(5_000);
            string[] said = Lines(stderr);
            Assert.True(watch.ExitCode == 0, string.Join("\n", said));

            int seen;
            lock (stdout)
                seen = stdout.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, $"echo {marker}-[0-9]+\""));
            string summary = said.Single(l => l.StartsWith("guard watch: outputs: stdout ", StringComparison.Ordinal) && l.Contains(" written", StringComparison.Ordinal));
            string ring = said.Single(l => l.Contains(" records dropped", StringComparison.Ordinal));
            Assert.True(ring.Contains(", 0 records dropped", StringComparison.Ordinal), $"the ring dropped records: the drain did not keep up: {ring}");
            Assert.True(seen == Count, $"stdout had {seen} of {Count} execs: {summary}");
            Assert.Matches(@"stdout \d+ written(,|$)", summary);
            Assert.DoesNotMatch(@"stdout \d+ written, \d+ dropped", summary);
            Assert.Matches(@"file \d+ written, \d+ dropped unwritten .*?, [1-9]\d* failed \(cannot write [^)]*No space left on device", summary);
            Assert.Matches(@"syslog \d+ written, [1-9]\d* dropped unwritten", summary);
            Assert.True(accepting.IsCompleted, "the syslog output never connected");
        }
        finally
        {
            if (watch is not null)
            {
                Stop(watch);
                watch.Dispose();
            }
            Run.Complete("umount", full);
        }
    }
}
