using Guard.Sensor.Abi;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// Puts a connection's first bytes together from the kernel's payload records
/// (each segment lands at its stream offset), until the kernel says they are
/// final or no more came for <see cref="QuietNs"/>. A connection's bytes go
/// out once: its cookie is remembered for <see cref="EmittedRetentionNs"/>
/// after, so a late segment makes no second event. Pooled: a payload costs
/// no allocation once the pool is warm.
/// </summary>
public sealed class PayloadAssembly
{
    /// <summary>A connection's first bytes are out once no more came for this long (ns).</summary>
    public const long QuietNs = 250_000_000;

    /// <summary>How long a connection whose bytes are out is remembered (ns).</summary>
    public const long EmittedRetentionNs = 60_000_000_000;

    // Pending first bytes, oldest update first, so expiry visits only what is due.
    private readonly Dictionary<ulong, AssembledPayload> pending = [];
    private readonly LinkedList<AssembledPayload> pendingByAge = new();
    private readonly Stack<AssembledPayload> pool = new();
    // Connections whose first bytes are out, forgotten in the order they went.
    private readonly HashSet<ulong> emitted = [];
    private readonly Queue<(long DueNs, ulong Cookie)> emittedByAge = new();

    /// <summary>Adds a segment; null when this connection's bytes are already out.</summary>
    public AssembledPayload? Add(in PayloadRecord record)
    {
        if (emitted.Contains(record.Cookie))
            return null;
        if (!pending.TryGetValue(record.Cookie, out AssembledPayload? payload))
        {
            payload = pool.Count > 0 ? pool.Pop() : new AssembledPayload();
            payload.Cookie = record.Cookie;
            payload.Length = 0;
            payload.KernelDecided = false;
            pending[record.Cookie] = payload;
        }
        else
        {
            pendingByAge.Remove(payload.Age);
        }
        pendingByAge.AddLast(payload.Age);
        payload.Header = record.Header;
        payload.Family = record.Family;
        payload.DestinationPort = record.DestinationPort;
        ((ReadOnlySpan<byte>)record.DestinationAddress).CopyTo(payload.DestinationAddress);
        // Segments arrive in stream order (the kernel follows the sequence); each lands at its offset.
        int offset = Math.Min((int)record.Offset, PayloadRecord.TlsHeadCapacity);
        int length = Math.Min(Math.Min((int)record.Length, PayloadRecord.Capacity), PayloadRecord.TlsHeadCapacity - offset);
        payload.EnsureCapacity(offset + length);
        ((ReadOnlySpan<byte>)record.Data)[..length].CopyTo(payload.Data.AsSpan(offset));
        payload.Length = Math.Max(payload.Length, offset + length);
        payload.Segments = record.Segments;
        payload.LastNs = (long)record.Header.TimeNs;
        return payload;
    }

    /// <summary>The connection's first bytes while they are still being gathered; null once out (or never seen).</summary>
    public AssembledPayload? Pending(ulong cookie) => pending.GetValueOrDefault(cookie);

    /// <summary>The oldest pending payload that has been quiet for <see cref="QuietNs"/> at <paramref name="nowNs"/>, or null.</summary>
    public AssembledPayload? NextQuiet(long nowNs) =>
        pendingByAge.First is { } oldest && nowNs - oldest.Value.LastNs >= QuietNs ? oldest.Value : null;

    /// <summary>The payload is out: remembered as emitted, and back to the pool. Its contents are invalid after.</summary>
    public void Close(AssembledPayload payload)
    {
        pending.Remove(payload.Cookie);
        pendingByAge.Remove(payload.Age);
        emitted.Add(payload.Cookie);
        emittedByAge.Enqueue((payload.LastNs + EmittedRetentionNs, payload.Cookie));
        pool.Push(payload);
    }

    /// <summary>Forgets connections whose bytes went out more than <see cref="EmittedRetentionNs"/> before <paramref name="nowNs"/>.</summary>
    public void ForgetEmitted(long nowNs)
    {
        while (emittedByAge.TryPeek(out (long DueNs, ulong Cookie) next) && next.DueNs <= nowNs)
        {
            emittedByAge.Dequeue();
            emitted.Remove(next.Cookie);
        }
    }
}

/// <summary>A connection's first bytes as gathered so far (up to <see cref="PayloadRecord.Capacity"/> bytes; a TLS stream's up to <see cref="PayloadRecord.TlsHeadCapacity"/>).</summary>
public sealed class AssembledPayload
{
    internal AssembledPayload() => Age = new LinkedListNode<AssembledPayload>(this);

    /// <summary>Its place in the age list: moved, never reallocated.</summary>
    internal LinkedListNode<AssembledPayload> Age { get; }

    /// <summary>The socket cookie that names the connection.</summary>
    public ulong Cookie { get; internal set; }

    /// <summary>The header of the latest segment's record (its time and owner).</summary>
    public RecordHeader Header { get; internal set; }

    /// <summary>2 (AF_INET) or 10 (AF_INET6).</summary>
    public ushort Family { get; internal set; }

    public ushort DestinationPort { get; internal set; }

    /// <summary>16 bytes; an IPv4 address fills the first 4.</summary>
    public byte[] DestinationAddress { get; } = new byte[16];

    /// <summary>
    /// The bytes, valid up to <see cref="Length"/>: <see cref="PayloadRecord.Capacity"/>
    /// at first, grown (and kept, pooled) for a TLS stream's head up to
    /// <see cref="PayloadRecord.TlsHeadCapacity"/>.
    /// </summary>
    public byte[] Data { get; private set; } = new byte[PayloadRecord.Capacity];

    /// <summary>Grows <see cref="Data"/> to hold <paramref name="bytes"/>, keeping what it holds.</summary>
    internal void EnsureCapacity(int bytes)
    {
        if (bytes <= Data.Length)
            return;
        byte[] grown = new byte[Math.Min(PayloadRecord.TlsHeadCapacity, Math.Max(bytes, Data.Length * 2))];
        Data.AsSpan(0, Length).CopyTo(grown);
        Data = grown;
    }

    public int Length { get; internal set; }

    /// <summary>How many segments carried them.</summary>
    public int Segments { get; internal set; }

    /// <summary>
    /// The kernel's stream record of a Stratum verdict on this connection
    /// came: user space need not read the bytes for one itself. A head
    /// segment's flag alone is not enough: its stream record, which the
    /// finding is made from, may have been lost to a full ring.
    /// </summary>
    public bool KernelDecided { get; internal set; }

    /// <summary>When the latest segment came, CLOCK_BOOTTIME ns.</summary>
    public long LastNs { get; internal set; }

    public ReadOnlySpan<byte> Bytes => Data.AsSpan(0, Length);
}
