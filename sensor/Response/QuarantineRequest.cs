using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>Who asks for a hold, why, and what happens when its time runs out.</summary>
public sealed record QuarantineRequest
{
    /// <summary>Why, for `guard status` and the action event; cut to fit the pinned record (159 UTF-8 bytes, whole characters).</summary>
    public string Reason { get; init; } = "held from the command line";

    /// <summary>"cli" or the rule that asked; cut to fit the pinned record (31 UTF-8 bytes).</summary>
    public string OrderedBy { get; init; } = "cli";

    /// <summary>The person's uid (under sudo, the one who ran sudo).</summary>
    public uint OrderedByUid { get; init; } = Libc.PersonUid();

    /// <summary>How long the hold lasts, from when it is made; null: until a person decides.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>What the timeout does; ignored (None) when there is no <see cref="Timeout"/>.</summary>
    public QuarantineExpiry OnTimeout { get; init; } = QuarantineExpiry.None;

    /// <summary>Device files the held may not open (besides nothing: the caller passes the host's GPUs).</summary>
    public IReadOnlyList<GpuDevice> GpuDevices { get; init; } = [];

    /// <summary>
    /// The record pinned for a new hold (struct guard_quarantine): times are
    /// CLOCK_REALTIME nanoseconds, so any later guard process can read them.
    /// </summary>
    internal GuardQuarantine ToRecord(QuarantineMode mode, ulong cgroupId, int rootPid, long rootStartTicks, string name)
    {
        long now = Libc.NowNs(Libc.ClockRealtime);
        var record = new GuardQuarantine
        {
            SinceNs = (ulong)now,
            DeadlineNs = Timeout is { } t ? (ulong)(now + (long)t.TotalNanoseconds) : 0,
            CgroupId = cgroupId,
            RootPid = (uint)rootPid,
            RootStartTicks = (ulong)rootStartTicks,
            OrderedByUid = OrderedByUid,
            Mode = mode,
            Expiry = Timeout is null ? QuarantineExpiry.None : OnTimeout,
        };
        Fill(record.Job, name);
        Fill(record.OrderedBy, OrderedBy);
        Fill(record.Reason, Reason);
        return record;
    }

    /// <summary>Copies as much of <paramref name="text"/> as fits, whole characters only, NUL-terminated.</summary>
    private static void Fill(Span<byte> field, string text)
    {
        field.Clear();
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        int length = Math.Min(bytes.Length, field.Length - 1);
        while (length > 0 && length < bytes.Length && (bytes[length] & 0xC0) == 0x80)
            length--; // never cut inside a character
        bytes.AsSpan(0, length).CopyTo(field);
    }
}
