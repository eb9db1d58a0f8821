using System.Text;

namespace Guard.Sensor.Abi;

/// <summary>
/// A miner name as the policy writes it: a whole name ("xmrig"), or a family
/// of release names, a stem and a '*' ("cpuminer-*": cpuminer-sse2,
/// cpuminer-avx2, ...). Both are matched against names as the kernel keeps
/// them (comm, a file's name: 15 bytes), so a stem, like a whole name, counts
/// up to its first 15 bytes. The kernel matches them in one longest-prefix
/// lookup (miner_names, an LPM trie in bpf/verdicts.h): a whole name is its
/// bytes and the NUL after them, a family its stem alone. Names match
/// without regard to ASCII case ("XMRig", "XMRIG" and "xmrig" are one name):
/// the pattern is kept folded, and the kernel folds a name before its lookup.
/// </summary>
public readonly record struct MinerNamePattern(string Stem, bool Family)
{
    /// <summary>A family's stem is at least this long: "x*" would name half the programs on a host.</summary>
    public const int MinStemBytes = 3;

    /// <summary>The pattern <paramref name="text"/> writes; see <see cref="Problem"/> for what is refused.</summary>
    public static MinerNamePattern Parse(string text) =>
        text.EndsWith('*') ? new(Fold(Comm.Of(text[..^1])), true) : new(Fold(Comm.Of(text)), false);

    /// <summary>
    /// <paramref name="name"/> with ASCII capitals made small, as the kernel
    /// folds a name before it looks it up (bytes past ASCII are left as they are).
    /// </summary>
    public static string Fold(string name) =>
        string.Create(name.Length, name, static (span, n) =>
        {
            for (int i = 0; i < n.Length; i++)
                span[i] = n[i] is >= 'A' and <= 'Z' ? (char)(n[i] + ('a' - 'A')) : n[i];
        });

    /// <summary>Why <paramref name="text"/> is no pattern, or null: a '*' only at the end, after a stem of 3 bytes or more.</summary>
    public static string? Problem(string text)
    {
        int star = text.IndexOf('*', StringComparison.Ordinal);
        if (star >= 0 && star != text.Length - 1)
            return "'*' may only end a name (a family of release names: \"cpuminer-*\")";
        if (star > 0 && Encoding.UTF8.GetByteCount(text.AsSpan(0, star)) < MinStemBytes)
            return $"a family needs a stem of {MinStemBytes} bytes or more before its '*'";
        return text.Length == 0 || star == 0 ? "must not be empty" : null;
    }

    /// <summary>The bytes the kernel's key holds: the stem, and for a whole name its NUL too (at most 16).</summary>
    public byte[] KeyBytes()
    {
        byte[] stem = Encoding.UTF8.GetBytes(Stem);
        return Family ? stem : [.. stem, 0];
    }

    /// <summary>Whether <paramref name="name"/> (a name as the kernel keeps it, or a longer one, cut as the kernel would) is this name or of this family.</summary>
    public bool Matches(string name)
    {
        string kept = Fold(Comm.Of(name));
        return Family ? kept.StartsWith(Stem, StringComparison.Ordinal) : kept == Stem;
    }

    /// <summary>The policy's own text for it.</summary>
    public override string ToString() => Family ? Stem + "*" : Stem;
}
