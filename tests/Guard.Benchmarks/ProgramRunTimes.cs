using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Guard.Benchmarks;

/// <summary>
/// The kernel's own count of each loaded BPF program's runs and run time
/// (kernel.bpf_stats_enabled, read with `bpftool -j prog show`), summed over
/// the spans given to <see cref="Measure"/>, for the programs whose names
/// start with a prefix (Guard's: guard_). The statistics add two clock reads
/// to every run of every program, so they are on only inside those spans.
/// </summary>
/// <param name="prefix">Whose programs are counted: their names' start.</param>
internal sealed class ProgramRunTimes(string prefix = "guard_")
{
    private const string StatsSwitch = "/proc/sys/kernel/bpf_stats_enabled";
    private readonly Dictionary<string, (long Runs, long Nanoseconds)> totals = [];

    /// <summary>Turns the statistics on until the result is disposed, and adds what the programs did meanwhile.</summary>
    public IDisposable Measure()
    {
        File.WriteAllText(StatsSwitch, "1");
        return new Span(this, Snapshot());
    }

    /// <summary>Each program's runs and nanoseconds per operation, most costly first, and their sum.</summary>
    public string PerOperation(long operations)
    {
        var parts = totals.OrderByDescending(p => p.Value.Nanoseconds)
            .Where(p => p.Value.Runs > 0)
            .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {(double)p.Value.Nanoseconds / operations:F0} ns ({(double)p.Value.Runs / operations:F1} runs)"));
        double sum = totals.Values.Sum(v => v.Nanoseconds) / (double)operations;
        return string.Create(CultureInfo.InvariantCulture, $"{string.Join(", ", parts)}; in all {sum:F0} ns");
    }

    private Dictionary<int, (string Name, long Runs, long Nanoseconds)> Snapshot()
    {
        var info = new ProcessStartInfo("bpftool", ["-j", "prog", "show"]) { RedirectStandardOutput = true, UseShellExecute = false };
        using Process bpftool = Process.Start(info)!;
        string json = bpftool.StandardOutput.ReadToEnd();
        bpftool.WaitForExit();
        var programs = new Dictionary<int, (string, long, long)>();
        using JsonDocument doc = JsonDocument.Parse(json);
        foreach (JsonElement p in doc.RootElement.EnumerateArray())
        {
            if (!p.TryGetProperty("name", out JsonElement name) || name.GetString() is not { } n || !n.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            long runs = p.TryGetProperty("run_cnt", out JsonElement c) ? c.GetInt64() : 0;
            long ns = p.TryGetProperty("run_time_ns", out JsonElement t) ? t.GetInt64() : 0;
            programs[p.GetProperty("id").GetInt32()] = (n, runs, ns);
        }
        return programs;
    }

    private sealed class Span(ProgramRunTimes owner, Dictionary<int, (string Name, long Runs, long Nanoseconds)> before) : IDisposable
    {
        public void Dispose()
        {
            var after = owner.Snapshot();
            File.WriteAllText(StatsSwitch, "0");
            foreach ((int id, (string name, long runs, long ns)) in after)
            {
                (string _, long runs0, long ns0) = before.GetValueOrDefault(id, (name, 0, 0));
                (long r, long t) = owner.totals.GetValueOrDefault(name);
                owner.totals[name] = (r + runs - runs0, t + ns - ns0);
            }
        }
    }
}
