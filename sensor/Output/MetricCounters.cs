using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Guard.Sensor.Output;

/// <summary>
/// Counts by one or two label values, written by the thread that counts
/// (interlocked, no lock) and read by the metrics server's. Label values come
/// from Guard's own code (rule names, action names, outputs), never from a
/// monitored process, and their number is bounded anyway: past
/// <see cref="MaxSeries"/> distinct values a new one is counted under "other",
/// so a scrape stays small whatever happens.
/// </summary>
public sealed class LabeledCounters
{
    /// <summary>At most this many distinct label values (series) are kept; more go under "other".</summary>
    public const int MaxSeries = 64;

    /// <summary>The label value that stands for every value past <see cref="MaxSeries"/>.</summary>
    public const string Other = "other";

    private readonly ConcurrentDictionary<(string, string), StrongBox<long>> counts = new();

    /// <summary>Adds <paramref name="n"/> to the count of <paramref name="value"/>; allocates only the first time a value is seen.</summary>
    public void Add(string value, long n = 1) => Add(value, "", n);

    /// <summary>Adds <paramref name="n"/> to the count of the pair (<paramref name="value"/>, <paramref name="second"/>).</summary>
    public void Add(string value, string second, long n = 1)
    {
        if (!counts.TryGetValue((value, second), out StrongBox<long>? box))
            box = counts.Count < MaxSeries ? counts.GetOrAdd((value, second), _ => new StrongBox<long>()) : counts.GetOrAdd((Other, Other), _ => new StrongBox<long>());
        Interlocked.Add(ref box.Value, n);
    }

    /// <summary>The count of <paramref name="value"/> (with an empty second value); 0 when never counted.</summary>
    public long Get(string value, string second = "") => counts.TryGetValue((value, second), out StrongBox<long>? box) ? Interlocked.Read(ref box.Value) : 0;

    /// <summary>Every series counted so far, ordered by its values: safe from any thread.</summary>
    public IReadOnlyList<(string Value, string Second, long Count)> Snapshot() =>
        [.. counts.Select(kv => (kv.Key.Item1, kv.Key.Item2, Interlocked.Read(ref kv.Value.Value)))
            .OrderBy(s => s.Item1, StringComparer.Ordinal).ThenBy(s => s.Item2, StringComparer.Ordinal)];
}

/// <summary>
/// What the sensor counts for its metrics beyond what its parts count
/// already: findings by rule, actions by kind and outcome, denials by what the
/// kernel refused (the outputs count their own: OutputHealth). One instance a sensor.
/// </summary>
public sealed class MetricCounters
{
    /// <summary>Alerts by rule (a detector's name, or a sensor rule such as ring-drops).</summary>
    public LabeledCounters Findings { get; } = new();

    /// <summary>Actions by what was done (kill, quarantine, policy-reload, ...) and outcome (success, failure).</summary>
    public LabeledCounters Actions { get; } = new();

    /// <summary>
    /// What the kernel refused, by kind: exec (a known miner killed at exec),
    /// stratum (a Stratum connection's bytes dropped), hold (an attempt to let a
    /// held process run, refused), confine-exec and confine-gpu (a confined
    /// job's exec killed, its GPU open refused).
    /// </summary>
    public LabeledCounters Denials { get; } = new();
}
