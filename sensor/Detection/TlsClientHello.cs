using System.Buffers.Binary;
using System.Text;

namespace Guard.Sensor.Detection;

/// <summary>
/// Reads the server name (SNI) from a TLS ClientHello at the start of a
/// stream. A miner speaking TLS names its pool in clear before any
/// encryption. The ClientHello is put together from the handshake records it
/// spans first (TLS lets a client cut it into records of any size, one byte
/// each if it likes), so the name is found wherever it sits in it. Everything
/// is bounds-checked: the bytes come from whoever opened the connection.
/// </summary>
public static class TlsClientHello
{
    /// <summary>A ClientHello longer than this is not read (TLS allows 16 MiB; real ones are under 4 KiB).</summary>
    public const int MaxLength = 64 * 1024;

    private const byte Handshake = 22;
    private const byte ClientHello = 1;
    private const ushort ServerNameExtension = 0;

    /// <summary>
    /// Whether <paramref name="data"/> opens with a ClientHello that is all there:
    /// its handshake records hold every byte the handshake header announces.
    /// </summary>
    public static bool IsWhole(ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[4];
        return Defragment(data, header, out int length) >= 4 && (header[0] == ClientHello) && length >= 4 + Announced(header);
    }

    public static bool TryReadServerName(ReadOnlySpan<byte> data, out string serverName)
    {
        serverName = "";
        if (data.Length < 9 || data[0] != Handshake || data[1] != 3)
            return false;
        // The handshake bytes are no more than the records that carry them: a connection's head (8 KiB) fits the stack.
        int size = Math.Min(data.Length, MaxLength);
        Span<byte> message = size <= 8192 ? stackalloc byte[size] : new byte[size];
        int length = Defragment(data, message, out _);
        return TryReadFromMessage(message[..length], out serverName);
    }

    /// <summary>
    /// Copies the handshake bytes of the TLS records that open <paramref name="data"/>
    /// into <paramref name="into"/> (as many as fit); returns how many were copied, and
    /// in <paramref name="total"/> how many the records hold in all (the last one may be cut).
    /// </summary>
    private static int Defragment(ReadOnlySpan<byte> data, Span<byte> into, out int total)
    {
        int copied = 0;
        total = 0;
        int at = 0;
        while (at + 5 <= data.Length && data[at] == Handshake && data[at + 1] == 3)
        {
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[(at + 3)..]);
            ReadOnlySpan<byte> fragment = data.Slice(at + 5, Math.Min(length, data.Length - at - 5));
            int n = Math.Min(fragment.Length, into.Length - copied);
            fragment[..n].CopyTo(into[copied..]);
            copied += n;
            total += fragment.Length;
            at += 5 + length;
        }
        return copied;
    }

    private static int Announced(ReadOnlySpan<byte> header) => (header[1] << 16) | (header[2] << 8) | header[3];

    /// <summary>The name in a handshake message that is a ClientHello (as far as it goes).</summary>
    private static bool TryReadFromMessage(ReadOnlySpan<byte> data, out string serverName)
    {
        serverName = "";
        // Handshake: type, length (3).
        if (data.Length < 4 || data[0] != ClientHello)
            return false;
        data = data[..Math.Min(data.Length, 4 + Announced(data))];
        int at = 4 + 2 + 32; // client version, random
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
