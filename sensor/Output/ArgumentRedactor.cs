using System.Buffers;

namespace Guard.Sensor.Output;

/// <summary>
/// Hides values that look like secrets before an argument leaves the host:
/// `--password=x`, `--api-key x`, `-p x`, `HF_TOKEN=x`, `?token=x` and the
/// password in `scheme://user:password@host`. A name is secret when one of its
/// parts (split at '-', '_', '.') is one of the configured words,
/// case-insensitive.
/// </summary>
/// <remarks>
/// An argument may be a whole shell command (`bash -c '...'`), so it is read
/// as words and only a secret's value goes: the value ends at the first
/// character a shell or a URL would end it at (whitespace, <c>; &amp; | &lt; &gt; ( ) `</c>,
/// a quote), and every other word stays. Were the rest swallowed, putting
/// `--pass=x;` first would blank any command line in the audit trail. A
/// value with a space or one of those characters in it shows its part after
/// that character: a partial secret is the lesser harm.
/// </remarks>
public sealed class ArgumentRedactor
{
    /// <summary>The words that make a name secret unless --redact adds more.</summary>
    public static readonly IReadOnlyList<string> DefaultWords =
        ["password", "passwd", "pass", "pwd", "secret", "token", "key", "apikey", "credential", "credentials", "auth"];

    /// <summary>What a secret value becomes: "[REDACTED]".</summary>
    public static readonly byte[] Mask = "[REDACTED]"u8.ToArray();

    private readonly byte[][] words;

    /// <summary>A redactor for these words (ASCII, any case), or <see cref="DefaultWords"/>.</summary>
    public ArgumentRedactor(IEnumerable<string>? words = null) =>
        this.words = [.. (words ?? DefaultWords).Select(w => System.Text.Encoding.ASCII.GetBytes(w.ToLowerInvariant()))];

    /// <summary>
    /// Redacts one argument. <paramref name="valueIsSecret"/> says the last
    /// word before it was a secret option awaiting its value (`--password`,
    /// `-p`); on return it says whether this argument's last word is one.
    /// Writes into <paramref name="scratch"/> only when something changes, and
    /// into a new array only when the result does not fit there.
    /// </summary>
    public ReadOnlySpan<byte> Redact(ReadOnlySpan<byte> arg, ref bool valueIsSecret, Span<byte> scratch)
    {
        bool secretNext = valueIsSecret;
        var output = new Rewrite(arg, scratch);
        Scan(arg, ref secretNext, ref output);
        int length = output.Finish();
        if (length < 0)
        {
            valueIsSecret = secretNext;
            return arg;
        }
        if (length > scratch.Length)
        {
            // Many short secrets in one long argument: each mask is longer than what it hides.
            byte[] larger = new byte[length];
            secretNext = valueIsSecret;
            output = new Rewrite(arg, larger);
            Scan(arg, ref secretNext, ref output);
            output.Finish();
            valueIsSecret = secretNext;
            return larger;
        }
        valueIsSecret = secretNext;
        return scratch[..length];
    }

    /// <summary>Whether a part of <paramref name="name"/> (split at '-', '_', '.') is one of the words, ignoring ASCII case.</summary>
    public bool IsSecretName(ReadOnlySpan<byte> name)
    {
        foreach (Range part in name.SplitAny("-_."u8))
        {
            ReadOnlySpan<byte> segment = name[part];
            foreach (byte[] word in words)
            {
                if (System.Text.Ascii.EqualsIgnoreCase(segment, word))
                    return true;
            }
        }
        return false;
    }

    private void Scan(ReadOnlySpan<byte> arg, ref bool secretNext, ref Rewrite output)
    {
        int i = 0;
        while (i < arg.Length)
        {
            byte c = arg[i];
            if (IsSpace(c))
            {
                i++;
                continue;
            }
            if (IsControl(c))
            {
                // `--password; curl ...`: what follows is the next command, not the value.
                secretNext = false;
                i++;
                continue;
            }
            int end = i;
            while (end < arg.Length && !IsSpace(arg[end]) && !IsControl(arg[end]))
                end++;
            Word(arg, i, end, ref secretNext, ref output);
            i = end;
        }
    }

    /// <summary>One word, arg[start..end]: no whitespace and no control character in it.</summary>
    private void Word(ReadOnlySpan<byte> arg, int start, int end, ref bool secretNext, ref Rewrite output)
    {
        ReadOnlySpan<byte> word = arg[start..end];
        if (secretNext)
        {
            secretNext = false;
            if (!NoSecret(word))
            {
                MaskValue(arg, start, end, ref output);
                return;
            }
        }
        // `--password=x`, `HF_TOKEN=x`, `?api_key=x`: the first '=' after a secret name starts the value.
        int valueAt = -1;
        for (int eq = word.IndexOf((byte)'='); eq >= 0; eq = NextIndex(word, eq + 1, (byte)'='))
        {
            int nameStart = eq;
            while (nameStart > 0 && IsNameChar(word[nameStart - 1]))
                nameStart--;
            if (IsSecretName(word[nameStart..eq]))
            {
                valueAt = start + eq + 1;
                break;
            }
        }
        UrlPasswords(arg, start, valueAt < 0 ? end : valueAt, ref output);
        if (valueAt >= 0)
        {
            MaskValue(arg, valueAt, end, ref output);
            return;
        }
        // `--password` or `-p` alone: the next word is the value.
        ReadOnlySpan<byte> option = word.TrimStart("'\""u8).TrimEnd("'\""u8);
        if (option.Length > 1 && option[0] == (byte)'-')
        {
            ReadOnlySpan<byte> name = option.TrimStart((byte)'-');
            secretNext = option.SequenceEqual("-p"u8) || (name.Length > 0 && name.IndexOfAnyExcept(NameChars) < 0 && IsSecretName(name));
        }
    }

    /// <summary>The password of each `scheme://user:password@host` in arg[start..end].</summary>
    private static void UrlPasswords(ReadOnlySpan<byte> arg, int start, int end, ref Rewrite output)
    {
        int from = start;
        while (from < end)
        {
            int scheme = arg[from..end].IndexOf("://"u8);
            if (scheme < 0)
                return;
            int authority = from + scheme + 3;
            int authorityEnd = authority;
            while (authorityEnd < end && arg[authorityEnd] is not ((byte)'/' or (byte)'?' or (byte)'#') && !IsQuote(arg[authorityEnd]))
                authorityEnd++;
            int at = arg[authority..authorityEnd].LastIndexOf((byte)'@');
            int colon = at < 0 ? -1 : arg[authority..(authority + at)].IndexOf((byte)':');
            if (colon >= 0 && colon + 1 < at)
                output.Replace(authority + colon + 1, authority + at);
            from = authorityEnd;
        }
    }

    /// <summary>Masks the value at arg[start..]: past an opening quote, up to a quote or the word's end.</summary>
    private static void MaskValue(ReadOnlySpan<byte> arg, int start, int end, ref Rewrite output)
    {
        if (start < end && IsQuote(arg[start]))
            start++;
        int valueEnd = start;
        while (valueEnd < end && !IsQuote(arg[valueEnd]))
            valueEnd++;
        if (valueEnd > start)
            output.Replace(start, valueEnd);
    }

    /// <summary>
    /// A word after a secret option that cannot be its secret: another option,
    /// a path, or a number or port mapping (`-p` is a port to ssh and docker,
    /// `mkdir -p /x` takes a path). Shown, so that they stay in the record.
    /// </summary>
    private static bool NoSecret(ReadOnlySpan<byte> word) =>
        word[0] == (byte)'-' || word[0] == (byte)'/' || word.StartsWith("./"u8) || word.StartsWith("../"u8) || word.StartsWith("~/"u8)
        || (word.IndexOfAnyInRange((byte)'0', (byte)'9') >= 0 && word.IndexOfAnyExcept(PortChars) < 0);

    private static int NextIndex(ReadOnlySpan<byte> span, int from, byte value)
    {
        int i = span[from..].IndexOf(value);
        return i < 0 ? -1 : from + i;
    }

    /// <summary>What an option's or a variable's name is made of.</summary>
    private static readonly SearchValues<byte> NameChars = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"u8);

    private static readonly SearchValues<byte> PortChars = SearchValues.Create("0123456789:./"u8);

    private static bool IsNameChar(byte c) => NameChars.Contains(c);

    private static bool IsSpace(byte c) => c is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\v' or (byte)'\f';

    /// <summary>Where a shell ends a command or a word, or a URL query a parameter.</summary>
    private static bool IsControl(byte c) => c is (byte)';' or (byte)'&' or (byte)'|' or (byte)'<' or (byte)'>' or (byte)'(' or (byte)')' or (byte)'`';

    private static bool IsQuote(byte c) => c is (byte)'\'' or (byte)'"';

    /// <summary>
    /// The argument with masks laid in, written as it is scanned (ranges come
    /// in order); nothing is copied until the first mask, and past the end of
    /// the target only the length is counted.
    /// </summary>
    private ref struct Rewrite(ReadOnlySpan<byte> source, Span<byte> target)
    {
        private readonly ReadOnlySpan<byte> source = source;
        private readonly Span<byte> target = target;
        private int copied;
        private int written;
        private bool changed;

        public void Replace(int start, int end)
        {
            if (start < copied)
                return; // inside a range masked already
            changed = true;
            Write(source[copied..start]);
            Write(Mask);
            copied = end;
        }

        /// <summary>Writes the rest; returns the output's length, or -1 when nothing changed.</summary>
        public int Finish()
        {
            if (!changed)
                return -1;
            Write(source[copied..]);
            copied = source.Length;
            return written;
        }

        private void Write(ReadOnlySpan<byte> bytes)
        {
            if (written + bytes.Length <= target.Length)
                bytes.CopyTo(target[written..]);
            written += bytes.Length;
        }
    }
}
