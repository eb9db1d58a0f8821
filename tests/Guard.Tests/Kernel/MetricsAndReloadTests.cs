using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Kernel;

/// <summary>
/// A real `guard watch --metrics` as a service runs it: scraped during an
/// exec storm, stalled, flooded with hostile connections, and given new
/// policies on SIGHUP and by `guard policy reload` while it enforces.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class MetricsAndReloadTests
{
    [Fact]
    public void ScrapedDuringAnExecStormTheCountersMatchTheEventsWritten()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        string go = Path.Combine(dir.Path, "go");
        const int Execs = 2000;
        // The storm's parent waits for the watch, so --pid can name its tree from the start.
        using Process storm = Run.Start("/bin/sh", "-c",
            $"while [ ! -e {go} ]; do sleep 0.05; done; i=0; while [ $i -lt {Execs} ]; do /bin/true; i=$((i+1)); done");
        using var watch = WatchProcess.Start("--type", "exec", "--pid", storm.Id.ToString(CultureInfo.InvariantCulture));

        File.WriteAllText(go, "");
        int scrapes = 0;
        while (!storm.HasExited)
        {
            (int status, string body) = watch.Get("/metrics");
            Assert.True(status == 200, body);
            Assert.True(Metric(body, "guard_healthy") == 1, body);
            scrapes++;
            Thread.Sleep(50);
        }
        Assert.True(scrapes >= 3, $"only {scrapes} scrapes during the storm");

        // Every exec written is counted, no more: compared once the last lines are out.
        DateTime deadline = DateTime.UtcNow.AddSeconds(15);
        double counted;
        int written;
        string last;
        do
        {
            Thread.Sleep(300);
            last = watch.Get("/metrics").Body;
            counted = Metric(last, "guard_events_total", "type=\"exec\"");
            written = watch.Lines(l => l.Contains("\"action\":\"exec\"", StringComparison.Ordinal));
        }
        while ((counted != written || written < Execs) && DateTime.UtcNow < deadline);
        double drops = Metric(last, "guard_ring_drops_total", "kind=\"exec\"");
        Assert.True(counted == written, $"guard_events_total{{type=\"exec\"}} {counted}, exec lines written {written}");
        Assert.True(written >= Execs || drops > 0, $"{written} exec lines of {Execs} execs, and no drops counted");
        Assert.Equal(0, Metric(last, "guard_decode_failures_total"));
        Assert.True(Metric(last, "guard_programs_attached") >= 5, last);
        Assert.Equal(1, Metric(last, "guard_enforcement", "by=\"this_sensor\""));
        Assert.True(Metric(last, "guard_processes") > 10, last);
        Assert.Contains("# TYPE guard_events_total counter", last, StringComparison.Ordinal);
        Assert.Matches("guard_policy_info\\{sha256=\"[0-9a-f]{64}\",mode=\"enforce\"\\} 1", last);
        Assert.DoesNotContain("pid=", last, StringComparison.Ordinal);
    }

    [Fact]
    public void HealthzSays200WhileTheRingIsDrainedAnd503WithTheReasonWhileItIsStalled()
    {
        KernelRequirements.Check();
        using var watch = WatchProcess.Start("--type", "exec", "--stall-limit", "1s");
        Assert.Equal((200, "ok\n"), watch.Get("/healthz"));

        // The draining thread (the main one: its tid is the pid) stops alone, as in a hung call; the
        // server's thread goes on. (A stdout nobody reads no longer stalls it: stdout has its own queue.)
        using Process holder = Run.PythonScript(DrainWatchdogTests.StopOneThread, watch.Process.Id.ToString(CultureInfo.InvariantCulture));
        Assert.Equal("stopped", holder.StandardOutput.ReadLine());
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        (int Status, string Body) health;
        while ((health = GetOrSayWhy(watch, "/healthz")).Status == 200)
        {
            Assert.True(DateTime.UtcNow < deadline, "/healthz never said 503 although the draining thread was stopped");
            Thread.Sleep(100);
        }
        Assert.Equal(503, health.Status);
        Assert.StartsWith("drain stalled: the ring has not been drained for ", health.Body, StringComparison.Ordinal);
        Assert.Equal(1, health.Body.Count(c => c == '\n'));
        Assert.Equal(0, Metric(watch.Get("/metrics").Body, "guard_healthy"));

        // Let go: healthy again.
        holder.StandardInput.WriteLine("go");
        holder.StandardInput.Flush();
        Assert.Equal("resumed", holder.StandardOutput.ReadLine());
        Run.WaitFor(() => watch.Get("/healthz").Status == 200, "/healthz 200 once the drain went on", 10_000);
    }

    /// <summary><see cref="WatchProcess.Get"/>, failing with the watch's threads' states when the server does not answer.</summary>
    private static (int Status, string Body) GetOrSayWhy(WatchProcess watch, string target)
    {
        try
        {
            return watch.Get(target);
        }
        catch (IOException e)
        {
            throw new XunitException($"GET {target}: {e.Message}; the watch's threads: {DrainWatchdogTests.ThreadStates(watch.Process.Id)}");
        }
    }

    [Fact]
    public void AHostileScraperDoesNotStopEvents()
    {
        KernelRequirements.Check();
        using var watch = WatchProcess.Start("--type", "exec");
        var hostile = new List<Socket>();
        try
        {
            // Hundreds of connections that send nothing, a megabyte request line, and askers that never read.
            for (int i = 0; i < 400; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 1024 };
                hostile.Add(s);
                try
                {
                    s.Connect(watch.Metrics);
                    if (i % 4 == 1)
                        s.Send(Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\n\r\n"));
                    if (i == 2)
                        _ = s.SendAsync(Encoding.ASCII.GetBytes("GET /" + new string('a', 1 << 20)));
                }
                catch (SocketException)
                {
                    // Refused or reset: over the server's limit.
                }
            }
            string tag = "hostile-" + Guid.NewGuid().ToString("N")[..8];
            for (int i = 0; i < 50; i++)
                Run.Complete("/bin/echo", $"{tag}-{i}");
            Run.WaitFor(() => watch.Lines(l => l.Contains(tag, StringComparison.Ordinal)) == 50, "all 50 execs written while the scraper held connections", 10_000);

            // Once the stuck connections time out, a scraper gets its answer.
            string body = "";
            Run.WaitFor(() => watch.TryGet("/metrics", out body), "a scrape after the hostile connections timed out", 15_000);
            Assert.True(Metric(body, "guard_metrics_rejected_total", "reason=\"busy\"") > 0, body);
        }
        finally
        {
            foreach (Socket s in hostile)
                s.Dispose();
        }
    }

    [Fact]
    public void ABadPolicyOnSighupIsRefusedWithFileLineKeyAndTheOldOneGoesOnKilling()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        string policy = dir.File("policy.toml", "[indicators]\nminer_names = [\"xmrig\", \"guardoldminer\"]\n");
        string miner = dir.ShellCopy("guardoldminer");
        using var watch = WatchProcess.Start("--type", "exec", "--policy", policy);
        string before = watch.PolicySha256();
        Assert.Equal(Sha256Of(policy), before);
        KilledAtExec(miner, dir);

        File.WriteAllText(policy, "mode = \"sideways\"\n[indicators]\nminer_names = [\"xmrig\"]\n");
        Assert.True(OwnProcesses.Signal(watch.Process.Id, watch.StartTicks, 1), "could not send SIGHUP");
        JsonElement refused = watch.WaitForLine("the refused reload's line", e => Action(e) == "policy-reload");
        Assert.Equal("failure", refused.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(["configuration"], refused.GetProperty("event").GetProperty("category").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(["change"], refused.GetProperty("event").GetProperty("type").EnumerateArray().Select(c => c.GetString()));
        Assert.Contains($"{policy}:1:mode:", refused.GetProperty("event").GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(before, refused.GetProperty("guard").GetProperty("policy").GetProperty("sha256").GetString());
        Run.WaitFor(() => watch.Stderr.Contains($"{policy}:1:mode:", StringComparison.Ordinal), "the refusal on stderr");

        // The CLI says the same, with the exit code of a bad policy.
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(["policy", "reload"], console));
        Assert.Contains($"pid {watch.Process.Id}: {policy}:1:mode:", console.ErrorText, StringComparison.Ordinal);

        // Still enforcing the old policy, in the kernel and in user space.
        KilledAtExec(miner, dir);
        Assert.Equal(before, watch.PolicySha256());
        Assert.Equal(2, Metric(watch.Get("/metrics").Body, "guard_policy_reloads_total", "outcome=\"refused\"")); // the SIGHUP's and the CLI's
    }

    [Fact]
    public void AWatchStartedUnderNohupStillReloadsOnSighup()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        string policy = dir.File("policy.toml", "[indicators]\nminer_names = [\"xmrig\"]\n");
        using var watch = WatchProcess.Start(true, ["--type", "exec", "--policy", policy], underNohup: true);
        File.WriteAllText(policy, "[indicators]\nminer_names = [\"xmrig\", \"guardnohupminer\"]\n");
        Assert.True(OwnProcesses.Signal(watch.Process.Id, watch.StartTicks, 1), "could not send SIGHUP");
        JsonElement applied = watch.WaitForLine("the reload's line", e => Action(e) == "policy-reload");
        Assert.Equal("success", applied.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(Sha256Of(policy), applied.GetProperty("guard").GetProperty("policy").GetProperty("sha256").GetString());
    }

    [Fact]
    public void AGoodReloadAddsAMinerNameThatIsThenKilledAtExecWithoutARestart()
    {
        KernelRequirements.Check();
        using var dir = new TempDir();
        string policy = dir.File("policy.toml", "[indicators]\nminer_names = [\"xmrig\"]\n");
        string miner = dir.ShellCopy("guardnewminer");
        using var watch = WatchProcess.Start("--type", "exec", "--policy", policy);
        int pid = watch.Process.Id;

        string marker = Path.Combine(dir.Path, "ran");
        using (Process p = Run.Start("unshare", "--net", miner, "-c", $"echo ran > {marker}"))
        {
            Assert.True(p.WaitForExit(10_000));
            Assert.Equal(0, p.ExitCode);
        }
        Assert.True(File.Exists(marker), "the stand-in did not run before it was named");

        File.WriteAllText(policy, "[indicators]\nminer_names = [\"xmrig\", \"guardnewminer\"]\n");
        var console = new TestConsole();
        Assert.True(GuardCli.Run(["policy", "reload"], console) == 0, console.ErrorText);
        Assert.Contains($"pid {pid}: reloaded: policy built-in + {policy} in force, mode enforce, sha256 {Sha256Of(policy)}", console.Out.ToString(), StringComparison.Ordinal);
        JsonElement applied = watch.WaitForLine("the reload's line", e => Action(e) == "policy-reload");
        Assert.Equal("success", applied.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(Sha256Of(policy), applied.GetProperty("guard").GetProperty("policy").GetProperty("sha256").GetString());

        KilledAtExec(miner, dir);
        watch.WaitForLine("the known-miner alert", e => Action(e) == "known-miner");
        Assert.False(watch.Process.HasExited);
        Assert.Equal(pid, watch.Process.Id);
        string metrics = watch.Get("/metrics").Body;
        Assert.Contains($"guard_policy_info{{sha256=\"{Sha256Of(policy)}\",mode=\"enforce\"}} 1", metrics, StringComparison.Ordinal);
        Assert.Equal(1, Metric(metrics, "guard_policy_reloads_total", "outcome=\"applied\""));
        Assert.True(Metric(metrics, "guard_denials_total", "kind=\"exec\"") >= 1, metrics);
        Assert.True(Metric(metrics, "guard_findings_total", "rule=\"known-miner\"") >= 1, metrics);

        // With no sensor running, the CLI refuses in one line.
        watch.Dispose();
        console = new TestConsole();
        Assert.Equal((int)ExitCode.Failure, GuardCli.Run(["policy", "reload"], console));
        Assert.StartsWith("guard policy reload: no guard watch is running", console.ErrorText, StringComparison.Ordinal);
        Assert.Single(console.ErrorText.Trim().Split('\n'));
    }

    /// <summary>Runs the stand-in in a network namespace of its own: the kernel kills it at exec, before it writes its marker.</summary>
    private static void KilledAtExec(string miner, TempDir dir)
    {
        string marker = Path.Combine(dir.Path, "marker-" + Guid.NewGuid().ToString("N")[..6]);
        using Process p = Run.Start("unshare", "--net", miner, "-c", $"echo ran > {marker}");
        Assert.True(p.WaitForExit(10_000), "the stand-in did not end");
        Assert.False(File.Exists(marker), $"{Path.GetFileName(miner)} ran: the kernel did not kill it at exec");
        Assert.Equal(128 + 9, p.ExitCode);
    }

    private static string Sha256Of(string file) => Sha256.HexOf(new MemoryStream(File.ReadAllBytes(file)));

    private static string Action(JsonElement e) => e.GetProperty("event").GetProperty("action").GetString()!;

    /// <summary>The value of a sample in a scrape: the metric with exactly these labels (none when empty); fails when absent.</summary>
    private static double Metric(string body, string name, string labels = "")
    {
        string prefix = labels.Length == 0 ? name + " " : $"{name}{{{labels}}} ";
        string? line = body.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line is null
            ? throw new XunitException($"no {prefix.Trim()} in the scrape:\n{body}")
            : double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }

    /// <summary>A `guard watch --output json --metrics 127.0.0.1:PORT` child process, its lines kept; stopped with SIGTERM.</summary>
    private sealed class WatchProcess : IDisposable
    {
        private readonly List<string> lines = [];
        private readonly StringBuilder stderr = new();
        private bool disposed;
        private int reading;

        private WatchProcess(Process process, IPEndPoint metrics)
        {
            Process = process;
            Metrics = metrics;
        }

        public Process Process { get; }

        public IPEndPoint Metrics { get; }

        public long StartTicks { get; private set; }

        public string Stderr
        {
            get
            {
                lock (stderr)
                    return stderr.ToString();
            }
        }

        public static WatchProcess Start(params string[] args) => Start(true, args);

        /// <summary>Starts guard watch with <paramref name="args"/>; under nohup (SIGHUP ignored from the start) when <paramref name="underNohup"/>.</summary>
        public static WatchProcess Start(bool readStdout, string[] args, bool underNohup = false)
        {
            var metrics = new IPEndPoint(IPAddress.Loopback, FreePort());
            string[] watch0 = ["watch", "--output", "json", "--metrics", metrics.ToString(), "--duration", "300s", .. args];
            Process process = underNohup ? Run.Start("nohup", [Run.GuardExecutable, .. watch0]) : Run.Start(Run.GuardExecutable, watch0);
            var watch = new WatchProcess(process, metrics);
            process.ErrorDataReceived += (_, e) =>
            {
                lock (watch.stderr)
                    watch.stderr.AppendLine(e.Data);
            };
            process.BeginErrorReadLine();
            if (readStdout)
                watch.ReadStdout();
            try
            {
                Run.WaitFor(() => watch.Stderr.Contains("guard watch: metrics on", StringComparison.Ordinal) || process.HasExited, "guard watch to serve metrics", 60_000);
                if (process.HasExited)
                    throw new XunitException($"guard watch exited with {process.ExitCode}: {watch.Stderr}");
                Assert.True(ProcfsReader.TryReadStat(process.Id, out ProcfsStat stat));
                watch.StartTicks = stat.StartTicks;
            }
            catch
            {
                watch.Dispose();
                throw;
            }
            return watch;
        }

        /// <summary>Starts reading stdout into the kept lines (once).</summary>
        public void ReadStdout()
        {
            if (Interlocked.Exchange(ref reading, 1) == 1)
                return;
            Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } line)
                {
                    lock (lines)
                        lines.Add(line);
                }
            };
            Process.BeginOutputReadLine();
        }

        public int Lines(Func<string, bool> which)
        {
            lock (lines)
                return lines.Count(which);
        }

        public JsonElement WaitForLine(string what, Func<JsonElement, bool> match)
        {
            JsonElement found = default;
            Run.WaitFor(
                () =>
                {
                    lock (lines)
                    {
                        foreach (string line in lines)
                        {
                            JsonElement e = JsonDocument.Parse(line).RootElement;
                            if (match(e))
                            {
                                found = e.Clone();
                                return true;
                            }
                        }
                    }
                    return false;
                },
                what, 15_000);
            return found;
        }

        /// <summary>The SHA-256 the metrics say is in force.</summary>
        public string PolicySha256()
        {
            string body = Get("/metrics").Body;
            string line = body.Split('\n').Single(l => l.StartsWith("guard_policy_info{", StringComparison.Ordinal));
            int at = line.IndexOf("sha256=\"", StringComparison.Ordinal) + 8;
            return line[at..line.IndexOf('"', at)];
        }

        public (int Status, string Body) Get(string target)
        {
            using var client = new TcpClient();
            client.ReceiveTimeout = client.SendTimeout = 10_000;
            client.Connect(Metrics);
            NetworkStream stream = client.GetStream();
            stream.Write(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: guard\r\n\r\n"));
            using var answer = new MemoryStream();
            stream.CopyTo(answer);
            string text = Encoding.UTF8.GetString(answer.ToArray());
            int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (split < 0)
                throw new XunitException($"no HTTP answer: '{text}'");
            return (int.Parse(text.AsSpan(9, 3), CultureInfo.InvariantCulture), text[(split + 4)..]);
        }

        public bool TryGet(string target, out string body)
        {
            body = "";
            try
            {
                (int status, body) = Get(target);
                return status == 200;
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            if (disposed)
                return;
            disposed = true;
            if (!Process.HasExited && StartTicks > 0)
                OwnProcesses.Signal(Process.Id, StartTicks, 15);
            if (!Process.WaitForExit(15_000))
                Process.Kill();
            Process.WaitForExit();
            Process.Dispose();
            EnforcementKernel.Remove(); // what the watch handed over on its way out
        }

        private static int FreePort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }
    }
}
