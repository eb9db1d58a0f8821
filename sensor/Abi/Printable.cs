using System.Buffers;
using System.Globalization;
using System.Text;

namespace Guard.Sensor.Abi;

/// <summary>
/// Names, paths and other text a monitored process chose, made safe to print
/// for a person: control characters (C0, DEL, C1: an ESC sequence could drive
/// the terminal, a newline forge a line), bidirectional controls (they reorder
/// what is shown, as in "Trojan Source", CVE-2021-42574) and bytes that are not
/// UTF-8 are shown as \xNN escapes of their UTF-8 bytes. Everything else,
/// including non-ASCII letters, is kept. JSON fields keep the raw bytes: the JSON
/// writer escapes for JSON; this is for text a person reads.
/// </summary>
public static class Printable
{
    /// <summary>The bytes as printable text; invalid UTF-8 and the characters above escaped.</summary>
    public static string Of(ReadOnlySpan<byte> bytes)
    {
        if (!NeedsEscape(bytes))
            return Encoding.UTF8.GetString(bytes);
        var text = new StringBuilder(bytes.Length + 16);
        int i = 0;
        while (i < bytes.Length)
        {
            OperationStatus status = Rune.DecodeFromUtf8(bytes[i..], out Rune rune, out int consumed);
            consumed = Math.Max(consumed, 1);
            if (status == OperationStatus.Done && !Hides(rune))
            {
                text.Append(rune.ToString());
            }
            else
            {
                for (int k = 0; k < consumed; k++)
                    text.Append(CultureInfo.InvariantCulture, $"\\x{bytes[i + k]:x2}");
            }
            i += consumed;
        }
        return text.ToString();
    }

    /// <summary>The text with the characters above escaped (as \xNN of their UTF-8 bytes).</summary>
    public static string Of(string text)
    {
        foreach (char c in text)
        {
            if (c < 0x20 || c is >= '\u007f' and <= '\u009f' || IsBidiControl(c) || char.IsSurrogate(c))
                return Of(Encoding.UTF8.GetBytes(text));
        }
        return text;
    }

    private static bool NeedsEscape(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            // Anything beyond ASCII printables is decoded and judged rune by rune.
            if (b < 0x20 || b >= 0x7f)
                return true;
        }
        return false;
    }

    private static bool Hides(Rune rune) => Rune.IsControl(rune) || (rune.IsBmp && IsBidiControl((char)rune.Value));

    // ALM, LRM, RLM, LRE..RLO, LRI..PDI: Unicode's explicit bidirectional formatting characters (UAX #9).
    private static bool IsBidiControl(char c) => c is '\u061c' or '\u200e' or '\u200f' or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069');
}
