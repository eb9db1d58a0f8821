using System.Text;
using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>What an output is given of each event.</summary>
public enum OutputFormat
{
    /// <summary>The ECS JSON line.</summary>
    Json,

    /// <summary>The readable line (<see cref="TextEncoder"/>).</summary>
    Text,

    /// <summary>An RFC 5424 header, then the ECS JSON line (<see cref="SyslogHeader"/>).</summary>
    Syslog,

    /// <summary>No events: lines are added by their own producer (the action log).</summary>
    None,
}

/// <summary>
/// The sink `guard watch` writes to: every event encoded once per format on
/// the thread that drains the ring, copied into the queue of each output
/// (<see cref="QueuedOutput"/>), each written by its own thread. A full queue
/// drops that output's line and nothing else. What outputs lose is counted
/// (<see cref="Health"/>, in the heartbeat) and said on stderr at most once a minute.
/// </summary>
public sealed class OutputSet : IEventSink
{
    /// <summary>How often lost lines are said, at most.</summary>
    public static readonly TimeSpan ReportInterval = TimeSpan.FromMinutes(1);

    private readonly List<(QueuedOutput Output, OutputFormat Format)> outputs = [];
    private readonly EcsEncoder ecs;
    private readonly TextEncoder? text;
    private readonly SyslogHeader? syslog;
    private readonly JsonLineWriter json = new();
    private readonly byte[] header = new byte[512];
    private readonly Action<string>? say;
    private readonly Dictionary<string, long> reported = [];
    private readonly Timer? reporter;
    private DateTime lastReport = DateTime.MinValue;
    private int completed;

    /// <summary>
    /// An empty set: <see cref="Add"/> the outputs. <paramref name="text"/> and
    /// <paramref name="syslog"/> are needed by text and syslog outputs.
    /// <paramref name="say"/> is told, from a timer's thread, a line when outputs lost lines.
    /// </summary>
    public OutputSet(EcsEncoder ecs, TextEncoder? text = null, SyslogHeader? syslog = null, Action<string>? say = null)
    {
        this.ecs = ecs;
        this.text = text;
        this.syslog = syslog;
        this.say = say;
        if (say is not null)
            reporter = new Timer(_ => ReportLosses(DateTime.UtcNow), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
    }

    /// <summary>The outputs, in the order added.</summary>
    public IReadOnlyList<QueuedOutput> Outputs => [.. outputs.Select(o => o.Output)];

    /// <summary>Adds an output that takes <paramref name="format"/>; the set stops and disposes it.</summary>
    /// <exception cref="ArgumentException">A text or syslog output without its encoder.</exception>
    public QueuedOutput Add(QueuedOutput output, OutputFormat format)
    {
        if (format == OutputFormat.Text && text is null || format == OutputFormat.Syslog && syslog is null)
            throw new ArgumentException($"a {format} output needs its encoder", nameof(format));
        outputs.Add((output, format));
        return output;
    }

    /// <inheritdoc/>
    public IReadOnlyList<OutputHealth> Health => [.. outputs.Select(o => o.Output.Health)];

    /// <inheritdoc/>
    public void Write(SensorEvent e)
    {
        bool encoded = false;
        foreach ((QueuedOutput output, OutputFormat format) in outputs)
        {
            switch (format)
            {
                case OutputFormat.Json:
                    Encode(e, ref encoded);
                    output.Queue.TryAdd(json.Written);
                    break;
                case OutputFormat.Syslog:
                    Encode(e, ref encoded);
                    output.Queue.TryAdd(header.AsSpan(0, syslog!.Write(e, header)), json.Written);
                    break;
                case OutputFormat.Text:
                    output.Queue.TryAdd(Encoding.UTF8.GetBytes(text!.Encode(e) + "\n"));
                    break;
            }
        }
    }

    private void Encode(SensorEvent e, ref bool encoded)
    {
        if (encoded)
            return;
        ecs.Encode(e, json);
        encoded = true;
    }

    /// <summary>Wakes each output's writer that has lines of the batch just added (an idle one, the action log mostly, sleeps on).</summary>
    public void Flush()
    {
        foreach ((QueuedOutput output, _) in outputs)
        {
            if (output.Queue.Pending > 0)
                output.Queue.Wake();
        }
    }

    /// <summary>Each output reopens its file before its next write (SIGHUP); safe from a signal handler's thread.</summary>
    public void Reopen()
    {
        foreach ((QueuedOutput output, _) in outputs)
            output.RequestReopen();
    }

    /// <summary>
    /// Writes what every output has queued and stops them, all at once, within
    /// <paramref name="wait"/>; what an output could not write by then is
    /// counted as dropped. Once: later calls return at once.
    /// </summary>
    public void Complete(TimeSpan wait)
    {
        if (Interlocked.Exchange(ref completed, 1) != 0)
            return;
        reporter?.Dispose();
        DateTime until = DateTime.UtcNow + wait;
        foreach ((QueuedOutput output, _) in outputs)
            output.BeginComplete();
        foreach ((QueuedOutput output, _) in outputs)
            output.EndComplete(until);
    }

    /// <summary>
    /// Says, through the callback, what each output lost since the last time it
    /// was said, at most once per <see cref="ReportInterval"/>; returns the line, or null.
    /// </summary>
    public string? ReportLosses(DateTime utcNow)
    {
        lock (reported)
        {
            if (utcNow - lastReport < ReportInterval)
                return null;
            var parts = new List<string>();
            foreach (OutputHealth h in Health)
            {
                long before = reported.GetValueOrDefault(h.Name);
                if (h.Lost <= before)
                    continue;
                reported[h.Name] = h.Lost;
                parts.Add($"{h.Name} lost {h.Lost - before} lines ({h.Dropped} dropped with its queue full, {h.Failed} failed since start{(h.LastError is { } error ? $"; {error}" : "")})");
            }
            if (parts.Count == 0)
                return null;
            lastReport = utcNow;
            string line = $"guard watch: warning: outputs behind: {string.Join("; ", parts)}";
            say?.Invoke(line);
            return line;
        }
    }

    /// <summary>Stops every output as <see cref="Complete"/> does within 250 ms, then disposes them.</summary>
    public void Dispose()
    {
        Complete(TimeSpan.FromMilliseconds(250));
        foreach ((QueuedOutput output, _) in outputs)
            output.Dispose();
    }
}
