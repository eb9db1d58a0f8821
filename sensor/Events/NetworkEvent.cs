using Guard.Sensor.Abi;

namespace Guard.Sensor.Events;

/// <summary>Connect outcomes, first payload bytes and DNS queries.</summary>
public sealed class NetworkEvent : SensorEvent
{
    private EventType type;

    public override EventType Type => type;

    internal void Reset(EventType eventType) => type = eventType;

    public ulong Cookie { get; internal set; }

    /// <summary>2 (AF_INET) or 10 (AF_INET6).</summary>
    public int Family { get; internal set; }

    public int Protocol { get; internal set; }

    public byte[] DestinationAddress { get; } = new byte[16];

    public int DestinationPort { get; internal set; }

    public byte[] SourceAddress { get; } = new byte[16];

    public int SourcePort { get; internal set; }

    public ConnectResult Result { get; internal set; }

    /// <summary>Payload bytes, or the DNS query name, valid up to <see cref="DataLength"/>.</summary>
    public byte[] Data { get; } = new byte[PayloadRecord.Capacity];

    public int DataLength { get; internal set; }

    public int Segments { get; internal set; }

    public int DnsQueryType { get; internal set; }

    public int DnsId { get; internal set; }

    public ReadOnlySpan<byte> DataSpan => Data.AsSpan(0, DataLength);
}
