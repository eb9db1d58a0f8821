using System.Diagnostics;

namespace Guard.Benchmarks;

/// <summary>The published native `guard`: its resident memory with many live processes, and its time to first event.</summary>
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
        }
        finally
        {
            trickle.Kill(entireProcessTree: true);
            sleepers.StandardInput.Close();
            sleepers.WaitForExit();
        }
    }
}
