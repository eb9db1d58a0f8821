using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Guard.Benchmarks;

/// <summary>The published native `guard`: its resident memory with many live processes, its time to READY and to first event.</summary>
internal static class NativeBinary
{
    public static IEnumerable<string> Measure(string guard, Storms storms, string work, int liveProcesses)
    {
        // Idle processes the table must hold.
        var sleepersInfo = new ProcessStartInfo(Path.Combine(work, "storms")) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        sleepersInfo.ArgumentList.Add("sleepers");
        sleepersInfo.ArgumentList.Add(liveProcesses.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using Process sleepers = Process.Start(sleepersInfo)!;
        if (sleepers.StandardOutput.ReadLine() != "ready")
            throw new InvalidOperationException("sleepers did not start");
        // A steady trickle of execs, so there is always a first event to see.
        using Process trickle = Process.Start("/bin/sh", ["-c", "while :; do /bin/true; sleep 0.005; done"]);
        try
        {
            var info = new ProcessStartInfo(guard) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in new[] { "watch", "--output", "json", "--duration", "4s", "--type", "exec" })
                info.ArgumentList.Add(a);
            var clock = Stopwatch.StartNew();
            using Process watch = Process.Start(info)!;
            string? first = watch.StandardOutput.ReadLine();
            double firstMs = clock.Elapsed.TotalMilliseconds;
            Thread.Sleep(1500);
            string status = File.ReadAllText($"/proc/{watch.Id}/status");
            string rss = status.Split('\n').First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))[6..].Trim();
            string hwm = status.Split('\n').First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))[6..].Trim();
            watch.StandardOutput.ReadToEnd();
            string summary = watch.StandardError.ReadToEnd().Split('\n').FirstOrDefault(l => l.Contains(" events", StringComparison.Ordinal)) ?? "";
            watch.WaitForExit();
            // The watch handed its enforcement over on the way out, and left the lineage recorder: later runs measure a bare host.
            Guard.Sensor.Bpf.EnforcementKernel.Remove();
            Guard.Sensor.Bpf.LineageKernel.Remove();
            int processes = Directory.EnumerateDirectories("/proc").Count(d => char.IsDigit(Path.GetFileName(d)[0]));
            yield return $"native guard watch with {processes} live processes on the host: VmRSS {rss}, peak {hwm} (bar 64 MB)";
            yield return $"native guard watch: first event on stdout {firstMs:F0} ms after start (bar 500 ms){(first is null ? " -- no event seen" : "")}";
            yield return $"native guard watch summary: {summary}";
            yield return StartToReady(guard, work, processes, runs: 5);
        }
        finally
        {
            trickle.Kill(entireProcessTree: true);
            sleepers.StandardInput.Close();
            sleepers.WaitForExit();
        }
    }

    /// <summary>
    /// From exec to systemd's READY=1 (sd_notify on a socket of this benchmark,
    /// as a Type=notify unit sees it), <paramref name="runs"/> times; each run
    /// stopped by SIGTERM once ready, and what it left pinned removed.
    /// </summary>
    private static string StartToReady(string guard, string work, int processes, int runs)
    {
        string path = Path.Combine(work, "notify");
        var times = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            File.Delete(path);
            using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            notify.Bind(new UnixDomainSocketEndPoint(path));
            var info = new ProcessStartInfo(guard) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.Environment["NOTIFY_SOCKET"] = path;
            foreach (string a in new[] { "watch", "--output", "json", "--duration", "30s", "--type", "exec" })
                info.ArgumentList.Add(a);
            var clock = Stopwatch.StartNew();
            using Process watch = Process.Start(info)!;
            _ = watch.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
            Task<string> stderr = watch.StandardError.ReadToEndAsync();
            var buffer = new byte[256];
            double readyMs = double.NaN;
            notify.ReceiveTimeout = 30_000;
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                int n;
                try
                {
                    n = notify.Receive(buffer);
                }
                catch (SocketException)
                {
                    break;
                }
                if (Encoding.ASCII.GetString(buffer, 0, n).Split('\n').Contains("READY=1"))
                {
                    readyMs = clock.Elapsed.TotalMilliseconds;
                    break;
                }
            }
            using (Process term = Process.Start("/bin/kill", ["-TERM", watch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                term.WaitForExit();
            if (!watch.WaitForExit(15_000))
                watch.Kill();
            watch.WaitForExit();
            Guard.Sensor.Bpf.EnforcementKernel.Remove();
            Guard.Sensor.Bpf.LineageKernel.Remove();
            if (double.IsNaN(readyMs))
                return $"native guard watch: no READY=1 within 30 s: {stderr.Result.Trim()}";
            times.Add(readyMs);
        }
        times.Sort();
        return $"native guard watch: start to READY=1 (sd_notify) with {processes} live processes: median {times[times.Count / 2]:F0} ms, max {times[^1]:F0} ms over {runs} runs (bar 500 ms)";
    }
}
