namespace Guard.Sensor.Detection;

/// <summary>
/// Monero addresses: a network tag, the public spend and view keys (32 bytes
/// each), for an integrated address an 8-byte payment id, then the first 4
/// bytes of the Keccak-256 of all before as a checksum; written in Monero's
/// base58, which encodes each 8-byte block as 11 characters and the last,
/// shorter block in as few as it needs (src/common/base58.cpp in the Monero
/// source). A standard address or subaddress is 69 bytes, 95 characters; an
/// integrated one 77 bytes, 106 characters.
/// </summary>
public static class MoneroAddress
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    private const int FullBlock = 8;
    private const int FullBlockCharacters = 11;

    /// <summary>Characters that encode a block of n bytes, n = 0..8 (base58.cpp's encoded_block_sizes).</summary>
    private static readonly int[] EncodedBlockSizes = [0, 2, 3, 5, 6, 7, 9, 10, 11];

    /// <summary>
    /// Network tags (one-byte varints) with what they mark and the decoded
    /// length, from src/cryptonote_config.h: CRYPTONOTE_PUBLIC_ADDRESS_BASE58_PREFIX,
    /// ..._INTEGRATED_ADDRESS_... and ..._SUBADDRESS_... of mainnet, testnet and stagenet.
    /// </summary>
    private static readonly Dictionary<byte, (string Kind, int Length)> Tags = new()
    {
        [18] = ("standard address", 69),
        [19] = ("integrated address", 77),
        [42] = ("subaddress", 69),
        [53] = ("testnet standard address", 69),
        [54] = ("testnet integrated address", 77),
        [63] = ("testnet subaddress", 69),
        [24] = ("stagenet standard address", 69),
        [25] = ("stagenet integrated address", 77),
        [36] = ("stagenet subaddress", 69),
    };

    private static readonly sbyte[] Digits = BuildDigits();

    /// <summary>
    /// What <paramref name="text"/> is when it is a Monero address whose
    /// network tag, length and Keccak-256 checksum all hold ("standard
    /// address", "integrated address", "subaddress", or a testnet or stagenet
    /// one); null otherwise.
    /// </summary>
    public static string? Describe(ReadOnlySpan<byte> text)
    {
        if (text.Length is not (95 or 106))
            return null;
        Span<byte> decoded = stackalloc byte[77];
        if (!TryDecode(text, decoded, out int length) || !Tags.TryGetValue(decoded[0], out (string Kind, int Length) tag) || tag.Length != length)
            return null;
        Span<byte> hash = stackalloc byte[32];
        Keccak256.Hash(decoded[..(length - 4)], hash);
        return hash[..4].SequenceEqual(decoded[(length - 4)..length]) ? $"Monero {tag.Kind}" : null;
    }

    /// <summary>Monero base58 to bytes; false on a character outside the alphabet, a block too large for its size, or a bad length.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> text, Span<byte> output, out int length)
    {
        length = 0;
        int lastCharacters = text.Length % FullBlockCharacters;
        int lastBytes = Array.IndexOf(EncodedBlockSizes, lastCharacters);
        if (lastBytes < 0 || (text.Length / FullBlockCharacters * FullBlock) + lastBytes > output.Length)
            return false;
        for (int start = 0; start < text.Length; start += FullBlockCharacters)
        {
            ReadOnlySpan<byte> block = text[start..Math.Min(start + FullBlockCharacters, text.Length)];
            int bytes = block.Length == FullBlockCharacters ? FullBlock : lastBytes;
            UInt128 value = 0;
            foreach (byte c in block)
            {
                int digit = c < 128 ? Digits[c] : -1;
                if (digit < 0)
                    return false;
                value = (value * 58) + (uint)digit;
            }
            if (value >> (8 * bytes) != 0)
                return false;
            for (int i = bytes - 1; i >= 0; i--)
            {
                output[length + i] = (byte)value;
                value >>= 8;
            }
            length += bytes;
        }
        return true;
    }

    private static sbyte[] BuildDigits()
    {
        sbyte[] digits = new sbyte[128];
        Array.Fill(digits, (sbyte)-1);
        for (int i = 0; i < Alphabet.Length; i++)
            digits[Alphabet[i]] = (sbyte)i;
        return digits;
    }
}
