using System.Buffers.Binary;
using System.Text;

namespace Guard.Sensor.Detection;

/// <summary>
/// Reads the server name (SNI) from the start of a TLS ClientHello. A miner
/// speaking TLS names its pool in clear before any encryption. Everything is
/// bounds-checked: the bytes come from whoever opened the connection.
/// </summary>
public static class TlsClientHello
{
    private const byte Handshake = 22;
    private const byte ClientHello = 1;
    private const ushort ServerNameExtension = 0;

    public static bool TryReadServerName(ReadOnlySpan<byte> data, out string serverName)
    {
        serverName = "";
        // Record header: type, version (2), length (2); handshake: type, length (3).
        if (data.Length < 9 || data[0] != Handshake || data[1] != 3 || data[5] != ClientHello)
            return false;
        int at = 9 + 2 + 32; // client version, random
        if (!Skip8(data, ref at) || !Skip16(data, ref at) || !Skip8(data, ref at)) // session id, cipher suites, compression
            return false;
        if (at + 2 > data.Length)
            return false;
        int end = Math.Min(data.Length, at + 2 + BinaryPrimitives.ReadUInt16BigEndian(data[at..]));
        at += 2;
        while (at + 4 <= end)
        {
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(data[at..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(at + 2)..]);
            at += 4;
            if (type == ServerNameExtension)
            {
                // list length (2), name type (1, 0 = host name), name length (2), name
                if (at + 5 > data.Length || data[at + 2] != 0)
                    return false;
                int nameLength = BinaryPrimitives.ReadUInt16BigEndian(data[(at + 3)..]);
                if (at + 5 + nameLength > data.Length)
                    return false; // cut off by the capture
                serverName = Encoding.ASCII.GetString(data.Slice(at + 5, nameLength)).ToLowerInvariant();
                return serverName.Length > 0;
            }
            at += length;
        }
        return false;
    }

    private static bool Skip8(ReadOnlySpan<byte> data, ref int at)
    {
        if (at >= data.Length)
            return false;
        at += 1 + data[at];
        return at <= data.Length;
    }

    private static bool Skip16(ReadOnlySpan<byte> data, ref int at)
    {
        if (at + 2 > data.Length)
            return false;
        at += 2 + BinaryPrimitives.ReadUInt16BigEndian(data[at..]);
        return at <= data.Length;
    }
}
