namespace Guard.Sensor.Events;

/// <summary>Reads the question of a DNS query message as the kernel captured it.</summary>
public static class DnsNames
{
    private const int HeaderLength = 12;

    /// <summary>
    /// Writes the dotted query name into <paramref name="name"/>. Labels are
    /// copied as raw bytes (a hostile name stays hostile, and is escaped at
    /// output); compression pointers are not expected in a query and end it.
    /// </summary>
    public static bool TryReadQuestion(ReadOnlySpan<byte> message, Span<byte> name, out int nameLength, out int queryType, out int id)
    {
        nameLength = 0;
        queryType = 0;
        id = 0;
        if (message.Length < HeaderLength + 1)
            return false;
        id = (message[0] << 8) | message[1];
        int questions = (message[4] << 8) | message[5];
        if (questions == 0)
            return false;
        int i = HeaderLength;
        while (i < message.Length)
        {
            int label = message[i++];
            if (label == 0)
                break;
            if ((label & 0xC0) != 0 || i + label > message.Length)
                return nameLength > 0;
            if (nameLength > 0 && nameLength < name.Length)
                name[nameLength++] = (byte)'.';
            int n = Math.Min(label, name.Length - nameLength);
            message.Slice(i, n).CopyTo(name[nameLength..]);
            nameLength += n;
            i += label;
        }
        if (i + 2 <= message.Length)
            queryType = (message[i] << 8) | message[i + 1];
        return nameLength > 0 || i <= message.Length;
    }

    public static ReadOnlySpan<byte> TypeName(int type) => type switch
    {
        1 => "A"u8,
        2 => "NS"u8,
        5 => "CNAME"u8,
        6 => "SOA"u8,
        12 => "PTR"u8,
        15 => "MX"u8,
        16 => "TXT"u8,
        28 => "AAAA"u8,
        33 => "SRV"u8,
        65 => "HTTPS"u8,
        255 => "ANY"u8,
        _ => "OTHER"u8,
    };
}
