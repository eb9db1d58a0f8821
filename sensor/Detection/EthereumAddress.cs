namespace Guard.Sensor.Detection;

/// <summary>How far a `0x` + 40 hex digits string proves to be an Ethereum address.</summary>
public enum EthereumChecksum
{
    /// <summary>Not 0x and 40 hex digits.</summary>
    None,

    /// <summary>
    /// All one case, where EIP-55 says nothing, or mixed case that fails it:
    /// only looks like an address (a hash, an id). Pools take addresses in
    /// any case, so a broken checksum is no reason to think it is none.
    /// </summary>
    Unchecked,

    /// <summary>Mixed case that matches EIP-55's checksum: an address someone copied from a wallet.</summary>
    Verified,
}

/// <summary>
/// Ethereum addresses, `0x` and 20 bytes in hex. EIP-55 writes a letter in
/// upper case when the matching hex digit of the Keccak-256 of the lowercase
/// address (without 0x) is 8 or more; only mixed case carries that checksum.
/// </summary>
public static class EthereumAddress
{
    private static readonly System.Buffers.SearchValues<byte> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF"u8);

    /// <summary>How far <paramref name="text"/> (ASCII, 42 bytes for an address) proves to be an address; never throws.</summary>
    public static EthereumChecksum Check(ReadOnlySpan<byte> text)
    {
        if (text.Length != 42 || text[0] != (byte)'0' || text[1] != (byte)'x')
            return EthereumChecksum.None;
        ReadOnlySpan<byte> hex = text[2..];
        if (hex.IndexOfAnyExcept(HexDigits) >= 0)
            return EthereumChecksum.None;
        bool lower = hex.IndexOfAnyInRange((byte)'a', (byte)'f') >= 0;
        bool upper = hex.IndexOfAnyInRange((byte)'A', (byte)'F') >= 0;
        if (!(lower && upper))
            return EthereumChecksum.Unchecked;
        Span<byte> lowered = stackalloc byte[40];
        System.Text.Ascii.ToLower(hex, lowered, out _);
        Span<byte> hash = stackalloc byte[32];
        Keccak256.Hash(lowered, hash);
        for (int i = 0; i < 40; i++)
        {
            if (hex[i] <= (byte)'9')
                continue;
            int nibble = (i % 2 == 0 ? hash[i / 2] >> 4 : hash[i / 2]) & 0xF;
            if ((hex[i] <= (byte)'F') != (nibble >= 8))
                return EthereumChecksum.Unchecked;
        }
        return EthereumChecksum.Verified;
    }
}
