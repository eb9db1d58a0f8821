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
/// One output's counts (stdout, a file, syslog): what it wrote and what it
/// had to drop (its queue full, its destination failing). Counted by the
/// output's own thread, read by the metrics server's.
/// </summary>
public sealed class OutputCounter
{
    private long written;
    private long dropped;

    internal OutputCounter(string name) => Name = name;

    /// <summary>The output's name as the metrics label it: "stdout", "file", "syslog".</summary>
    public string Name { get; }

    /// <summary>Events written so far.</summary>
    public long Written => Interlocked.Read(ref written);

    /// <summary>Events dropped so far.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Counts <paramref name="n"/> events written.</summary>
    public void CountWritten(long n = 1) => Interlocked.Add(ref written, n);

    /// <summary>Counts <paramref name="n"/> events dropped.</summary>
    public void CountDropped(long n = 1) => Interlocked.Add(ref dropped, n);
}

/// <summary>
/// The outputs' counters, by output name: an output asks for its counter once
/// (<see cref="For"/>) and counts into it; the metrics endpoint lists them all
/// as <c>guard_output_events_total</c> and <c>guard_output_dropped_total</c>.
/// At most <see cref="LabeledCounters.MaxSeries"/> outputs.
/// </summary>
public sealed class OutputCounters
{
    private readonly ConcurrentDictionary<string, OutputCounter> outputs = new(StringComparer.Ordinal);

    /// <summary>The counter of the output named <paramref name="name"/>, made the first time; the same one after.</summary>
    /// <exception cref="InvalidOperationException">More than <see cref="LabeledCounters.MaxSeries"/> outputs were named.</exception>
    public OutputCounter For(string name)
    {
        if (outputs.TryGetValue(name, out OutputCounter? counter))
            return counter;
        if (outputs.Count >= LabeledCounters.MaxSeries)
            throw new InvalidOperationException($"at most {LabeledCounters.MaxSeries} outputs are counted");
        return outputs.GetOrAdd(name, n => new OutputCounter(n));
    }

    /// <summary>Every output's counter, by name.</summary>
    public IReadOnlyList<OutputCounter> All => [.. outputs.Values.OrderBy(o => o.Name, StringComparer.Ordinal)];
}

/// <summary>
/// What the sensor counts for its metrics beyond what its parts count
/// already: findings by rule, actions by kind and outcome, denials by what the
/// kernel refused, and the outputs' counters. One instance a sensor.
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

    /// <summary>Each output's written and dropped events.</summary>
    public OutputCounters Outputs { get; } = new();
}
