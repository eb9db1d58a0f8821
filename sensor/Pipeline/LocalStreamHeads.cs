using Guard.Sensor.Abi;
using Guard.Sensor.Response;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The first bytes of recent TCP streams to loopback addresses, by socket
/// cookie, as the kernel's payload records gave them: what a local relay's
/// clients sent it, for telling which client a relayed finding came from.
/// Keeps the latest <see cref="Capacity"/> streams, oldest forgotten first,
/// in memory taken once (1 MiB) on the first loopback payload: no
/// allocation per record after that.
/// </summary>
public sealed class LocalStreamHeads
{
    /// <summary>How many streams are kept.</summary>
    public const int Capacity = 4096;

    private readonly Dictionary<ulong, int> slotOf = new(Capacity);
    private readonly ulong[] cookies = new ulong[Capacity];
    private readonly int[] lengths = new int[Capacity];
    private readonly bool[] gapped = new bool[Capacity];
    private byte[]? data;
    private int next;

    /// <summary>Keeps the segment's bytes when its stream goes to a loopback address.</summary>
    public void Add(in PayloadRecord record)
    {
        if (!IsLoopback(record.Family, record.DestinationAddress))
            return;
        data ??= new byte[Capacity * PayloadRecord.Capacity];
        if (!slotOf.TryGetValue(record.Cookie, out int slot))
        {
            slot = next;
            next = (next + 1) % Capacity;
            if (cookies[slot] != 0)
                slotOf.Remove(cookies[slot]);
            cookies[slot] = record.Cookie;
            lengths[slot] = 0;
            gapped[slot] = false;
            slotOf[record.Cookie] = slot;
        }
        int offset = Math.Min((int)record.Offset, PayloadRecord.Capacity);
        int length = Math.Min((int)record.Length, PayloadRecord.Capacity - offset);
        // The kernel follows the sequence: a segment that does not start where the last ended means a record was lost.
        if (offset > lengths[slot])
            gapped[slot] = true;
        ((ReadOnlySpan<byte>)record.Data)[..length].CopyTo(data.AsSpan((slot * PayloadRecord.Capacity) + offset));
        lengths[slot] = Math.Max(lengths[slot], offset + length);
    }

    /// <summary>
    /// The stream's first bytes, valid until the next <see cref="Add"/>; whole
    /// when they are fewer than the capture's limit and none was lost. Null when
    /// the stream sent nothing while Guard watched, or was forgotten.
    /// </summary>
    public CapturedHead? Find(ulong cookie)
    {
        if (data is null || !slotOf.TryGetValue(cookie, out int slot))
            return null;
        int length = lengths[slot];
        return new CapturedHead(data.AsMemory(slot * PayloadRecord.Capacity, length), length < PayloadRecord.Capacity && !gapped[slot]);
    }

    /// <summary>127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104 (family 2: IPv4 in the first four bytes).</summary>
    public static bool IsLoopback(ushort family, ReadOnlySpan<byte> address)
    {
        if (family == 2)
            return address[0] == 127;
        if (address[..15].IndexOfAnyExcept((byte)0) < 0)
            return address[15] == 1;
        return address[..10].IndexOfAnyExcept((byte)0) < 0 && address[10] == 0xFF && address[11] == 0xFF && address[12] == 127;
    }
}
