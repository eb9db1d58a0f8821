using System.Text;

namespace Guard.Sensor.Detection;

/// <summary>A wallet address found in text: what format, and whether its checksum proves it one.</summary>
/// <param name="Address">The address as written.</param>
/// <param name="Format">In words: "Monero standard address", "bc segwit v0 address", "Ethereum address (EIP-55)".</param>
/// <param name="Verified">Its checksum holds; false for what only looks like an address (Ethereum hex in one case).</param>
public sealed record WalletMatch(string Address, string Format, bool Verified);

/// <summary>
/// Finds wallet addresses where miners put them: alone, as `WALLET.WORKER`,
/// `COIN:WALLET`, `WALLET+DIFFICULTY` or a URL's user. Every run of letters
/// and digits is a candidate, recognised by format and checksum only, so a
/// test vector, a hash or a random identifier of the right length is none.
/// </summary>
public static class WalletAddresses
{
    /// <summary>The first verified address in <paramref name="text"/>, else the first that only looks like one, else null.</summary>
    public static WalletMatch? Find(ReadOnlySpan<byte> text)
    {
        WalletMatch? lookalike = null;
        int i = 0;
        while (i < text.Length)
        {
            if (!char.IsAsciiLetterOrDigit((char)text[i]))
            {
                i++;
                continue;
            }
            int end = i;
            while (end < text.Length && char.IsAsciiLetterOrDigit((char)text[end]))
                end++;
            if (Classify(text[i..end]) is { } match)
            {
                if (match.Verified)
                    return match;
                lookalike ??= match;
            }
            i = end;
        }
        return lookalike;
    }

    /// <summary>What one run of letters and digits is as a wallet address, or null.</summary>
    public static WalletMatch? Classify(ReadOnlySpan<byte> token)
    {
        if ((MoneroAddress.Describe(token) ?? SegwitAddress.Describe(token)) is { } format)
            return new WalletMatch(Encoding.ASCII.GetString(token), format, true);
        return EthereumAddress.Check(token) switch
        {
            EthereumChecksum.Verified => new WalletMatch(Encoding.ASCII.GetString(token), "Ethereum address (EIP-55 checksum)", true),
            EthereumChecksum.Unchecked => new WalletMatch(Encoding.ASCII.GetString(token), "looks like an Ethereum address (no EIP-55 checksum)", false),
            _ => null,
        };
    }
}
