namespace Guard.Sensor.Detection;

/// <summary>
/// Segregated-witness addresses of the coins miners are paid in (Bitcoin
/// `bc1...`, its testnet `tb1...`, Litecoin `ltc1...`): bech32 (BIP-173) for
/// witness version 0, bech32m (BIP-350) for versions 1 to 16, each with its
/// BCH checksum over the human-readable part and the data.
/// </summary>
public static class SegwitAddress
{
    private const string Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

    /// <summary>The checksum constants: bech32 (BIP-173) and bech32m (BIP-350).</summary>
    private const uint Bech32Constant = 1;
    private const uint Bech32mConstant = 0x2bc830a3;

    /// <summary>Human-readable parts of wallets: Bitcoin mainnet and testnet (BIP-173), Litecoin (SLIP-173).</summary>
    private static readonly byte[][] WalletPrefixes = ["bc"u8.ToArray(), "tb"u8.ToArray(), "ltc"u8.ToArray()];

    private static readonly uint[] Generator = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

    /// <summary>
    /// What <paramref name="text"/> is when it is a segwit address of one of
    /// those coins whose checksum, witness version and program length hold
    /// ("bc segwit v0 address"); null otherwise.
    /// </summary>
    public static string? Describe(ReadOnlySpan<byte> text)
    {
        // BIP-173: at most 90 characters, one case, a separator with a prefix before it and a 6-character checksum after.
        if (text.Length is < 8 or > 90 || (text.IndexOfAnyInRange((byte)'a', (byte)'z') >= 0 && text.IndexOfAnyInRange((byte)'A', (byte)'Z') >= 0))
            return null;
        int separator = text.LastIndexOf((byte)'1');
        if (separator < 1 || text.Length - separator - 1 < 7)
            return null;
        Span<byte> lower = stackalloc byte[text.Length];
        System.Text.Ascii.ToLower(text, lower, out _);
        ReadOnlySpan<byte> prefix = lower[..separator];
        if (!IsWalletPrefix(prefix))
            return null;
        Span<byte> data = stackalloc byte[text.Length - separator - 1];
        for (int i = 0; i < data.Length; i++)
        {
            int value = Charset.IndexOf((char)lower[separator + 1 + i], StringComparison.Ordinal);
            if (value < 0)
                return null;
            data[i] = (byte)value;
        }
        uint check = Checksum(prefix, data);
        int version = data[0];
        if (version > 16 || check != (version == 0 ? Bech32Constant : Bech32mConstant))
            return null;
        Span<byte> program = stackalloc byte[64];
        if (!RegroupBits(data[1..^6], program, out int length) || length is < 2 or > 40 || (version == 0 && length is not (20 or 32)))
            return null;
        return $"{System.Text.Encoding.ASCII.GetString(prefix)} segwit v{version} address";
    }

    private static bool IsWalletPrefix(ReadOnlySpan<byte> prefix)
    {
        foreach (byte[] known in WalletPrefixes)
        {
            if (prefix.SequenceEqual(known))
                return true;
        }
        return false;
    }

    /// <summary>BIP-173's polymod over the expanded human-readable part and the data, checksum included.</summary>
    private static uint Checksum(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> data)
    {
        uint check = 1;
        foreach (byte c in prefix)
            check = Step(check, (uint)(c >> 5));
        check = Step(check, 0);
        foreach (byte c in prefix)
            check = Step(check, (uint)(c & 31));
        foreach (byte d in data)
            check = Step(check, d);
        return check;
    }

    private static uint Step(uint check, uint value)
    {
        uint top = check >> 25;
        check = ((check & 0x1ffffff) << 5) ^ value;
        for (int i = 0; i < 5; i++)
            check ^= ((top >> i) & 1) != 0 ? Generator[i] : 0;
        return check;
    }

    /// <summary>5-bit groups to bytes; the leftover must be under 5 bits and zero (BIP-173's convertbits without padding).</summary>
    private static bool RegroupBits(ReadOnlySpan<byte> groups, Span<byte> output, out int length)
    {
        length = 0;
        int accumulator = 0;
        int bits = 0;
        foreach (byte g in groups)
        {
            accumulator = (accumulator << 5) | g;
            bits += 5;
            if (bits < 8)
                continue;
            bits -= 8;
            if (length == output.Length)
                return false;
            output[length++] = (byte)(accumulator >> bits);
            accumulator &= (1 << bits) - 1;
        }
        return bits < 5 && accumulator == 0;
    }
}
