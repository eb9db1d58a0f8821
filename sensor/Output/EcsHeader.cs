namespace Guard.Sensor.Output;

/// <summary>
/// The members every ECS line starts with: @timestamp; ecs.*, agent.* and
/// host.*, the same on every line and so rendered once; and event.*.
/// </summary>
internal sealed class EcsHeader
{
    /// <summary>Length of a timestamp as written: yyyy-MM-ddTHH:mm:ss.ffffffZ.</summary>
    private const int TimestampLength = 27;

    private readonly RunInfo run;
    private readonly Func<long> bootNowNs;
    private readonly byte[] runMembers;

    /// <summary>
    /// A header for this run's lines; renders the run's members now.
    /// <paramref name="bootNowNs"/> reads CLOCK_BOOTTIME (ns) for event.created.
    /// </summary>
    public EcsHeader(RunInfo run, Func<long> bootNowNs)
    {
        this.run = run;
        this.bootNowNs = bootNowNs;
        runMembers = RenderRunMembers(run);
    }

    /// <summary>Starts a line: clears the writer, opens the object, writes @timestamp and the run's members.</summary>
    public void Start(JsonLineWriter w, long bootNs)
    {
        w.Clear();
        w.StartObject();
        Timestamp(w, "@timestamp"u8, bootNs);
        w.RawMembers(runMembers);
    }

    /// <summary>
    /// A CLOCK_BOOTTIME instant in ns as UTC wall-clock time to the microsecond,
    /// yyyy-MM-ddTHH:mm:ss.ffffffZ (ISO 8601), formatted by hand: a format string is parsed on every call.
    /// </summary>
    public void Timestamp(JsonLineWriter w, ReadOnlySpan<byte> name, long bootNs)
    {
        DateTime t = run.WallClock(bootNs);
        Span<byte> text = stackalloc byte[TimestampLength];
        Digits(text[..4], t.Year);
        text[4] = (byte)'-';
        Digits(text.Slice(5, 2), t.Month);
        text[7] = (byte)'-';
        Digits(text.Slice(8, 2), t.Day);
        text[10] = (byte)'T';
        Digits(text.Slice(11, 2), t.Hour);
        text[13] = (byte)':';
        Digits(text.Slice(14, 2), t.Minute);
        text[16] = (byte)':';
        Digits(text.Slice(17, 2), t.Second);
        text[19] = (byte)'.';
        Digits(text.Slice(20, 6), (int)(t.Ticks % TimeSpan.TicksPerSecond / 10));
        text[26] = (byte)'Z';
        w.AsciiString(name, text);
    }

    /// <summary>
    /// event.*, every line's. <paramref name="kind"/> defaults to "event" and
    /// <paramref name="dataset"/> to "guard.sensor"; outcome, a second category,
    /// a reason and a severity (with its risk score) are written only when given.
    /// With <paramref name="created"/>, event.created is now: for a line written
    /// later than what it describes happened (@timestamp).
    /// </summary>
    public void Event(
        JsonLineWriter w, long sequence, ReadOnlySpan<byte> type, ReadOnlySpan<byte> category, ReadOnlySpan<byte> action,
        ReadOnlySpan<byte> outcome = default, ReadOnlySpan<byte> kind = default, ReadOnlySpan<byte> dataset = default,
        ReadOnlySpan<byte> secondCategory = default, string? reason = null, AlertSeverity severity = AlertSeverity.None,
        bool created = false)
    {
        w.StartObject("event"u8);
        w.AsciiString("kind"u8, kind.IsEmpty ? "event"u8 : kind);
        w.StartArray("category"u8);
        w.TextItem(category);
        if (!secondCategory.IsEmpty)
            w.TextItem(secondCategory);
        w.EndArray();
        w.StartArray("type"u8);
        w.TextItem(type);
        w.EndArray();
        w.Text("action"u8, action);
        w.AsciiString("dataset"u8, dataset.IsEmpty ? "guard.sensor"u8 : dataset);
        w.AsciiString("module"u8, "guard"u8);
        w.Number("sequence"u8, sequence);
        if (!outcome.IsEmpty)
            w.AsciiString("outcome"u8, outcome);
        if (reason is not null)
            w.Text("reason"u8, reason);
        if (severity != AlertSeverity.None)
        {
            w.Number("severity"u8, (long)severity);
            w.Number("risk_score"u8, AlertSeverityScale.RiskScore(severity));
        }
        if (created)
            Timestamp(w, "created"u8, bootNowNs());
        w.EndObject();
    }

    private static byte[] RenderRunMembers(RunInfo run)
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.StartObject("ecs"u8);
        w.Text("version"u8, EcsEncoder.EcsVersion);
        w.EndObject();
        w.StartObject("agent"u8);
        w.Text("type"u8, "guard");
        w.Text("name"u8, "guard");
        w.Text("version"u8, run.AgentVersion);
        w.EndObject();
        // host.name is what Elastic Security keys hosts on; host.hostname is what `hostname` says. One name serves both.
        w.StartObject("host"u8);
        w.Text("name"u8, run.HostName);
        w.Text("hostname"u8, run.HostName);
        w.StartObject("boot"u8);
        w.Text("id"u8, run.BootId);
        w.EndObject();
        w.EndObject();
        w.EndObject();
        return w.Written[1..^1].ToArray();
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (int i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
