namespace Guard.Sensor.Output;

/// <summary>
/// Hides values that look like secrets before an argument leaves the host:
/// `--password=x`, `--api-key x`, `HF_TOKEN=x`, and the password in
/// `scheme://user:password@host`. A name is secret when one of its parts
/// (split at '-', '_', '.') is one of the configured words, case-insensitive.
/// </summary>
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
    /// Redacts one argument. <paramref name="valueIsSecret"/> says the previous
    /// argument was a secret option awaiting its value; on return it says
    /// whether this one is. Writes into <paramref name="scratch"/> only when
    /// something changes.
    /// </summary>
    public ReadOnlySpan<byte> Redact(ReadOnlySpan<byte> arg, ref bool valueIsSecret, Span<byte> scratch)
    {
        if (valueIsSecret)
        {
            valueIsSecret = false;
            return Mask;
        }
        if (arg.Length > 1 && arg[0] == (byte)'-')
        {
            ReadOnlySpan<byte> option = arg.TrimStart((byte)'-');
            int eq = option.IndexOf((byte)'=');
            ReadOnlySpan<byte> name = eq < 0 ? option : option[..eq];
            if (!IsSecretName(name))
                return RedactUrlPassword(arg, scratch);
            if (eq < 0)
            {
                valueIsSecret = true;
                return arg;
            }
            return Replace(arg, arg.Length - option.Length + eq + 1, scratch);
        }
        int assign = arg.IndexOf((byte)'=');
        if (assign > 0 && IsSecretName(arg[..assign]))
            return Replace(arg, assign + 1, scratch);
        return RedactUrlPassword(arg, scratch);
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

    private static ReadOnlySpan<byte> RedactUrlPassword(ReadOnlySpan<byte> arg, Span<byte> scratch)
    {
        int scheme = arg.IndexOf("://"u8);
        if (scheme < 0)
            return arg;
        int start = scheme + 3;
        ReadOnlySpan<byte> rest = arg[start..];
        int slash = rest.IndexOf((byte)'/');
        ReadOnlySpan<byte> authority = slash < 0 ? rest : rest[..slash];
        int at = authority.LastIndexOf((byte)'@');
        if (at < 0)
            return arg;
        int colon = authority[..at].IndexOf((byte)':');
        if (colon < 0)
            return arg;
        int passwordStart = start + colon + 1;
        int passwordEnd = start + at;
        int length = passwordStart + Mask.Length + (arg.Length - passwordEnd);
        if (length > scratch.Length)
            return Mask;
        arg[..passwordStart].CopyTo(scratch);
        Mask.CopyTo(scratch[passwordStart..]);
        arg[passwordEnd..].CopyTo(scratch[(passwordStart + Mask.Length)..]);
        return scratch[..length];
    }

    private static ReadOnlySpan<byte> Replace(ReadOnlySpan<byte> arg, int valueStart, Span<byte> scratch)
    {
        if (valueStart + Mask.Length > scratch.Length)
            return Mask;
        arg[..valueStart].CopyTo(scratch);
        Mask.CopyTo(scratch[valueStart..]);
        return scratch[..(valueStart + Mask.Length)];
    }
}
