using System.Buffers;
using System.Text;

namespace Guard.Sensor.Detection;

/// <summary>The kinds of marker a miner's executable carries.</summary>
[Flags]
public enum MinerMarkerKinds
{
    None = 0,

    /// <summary>Its proof-of-work algorithms' names and constants (RandomX's Argon2 salt, CryptoNight, Ethash, KawPow).</summary>
    Algorithm = 1,

    /// <summary>The Stratum methods a pool client sends and answers (mining.subscribe, mining.notify, eth_submitLogin).</summary>
    Stratum = 2,

    /// <summary>A miner's own option table or configuration keys (donate-level, randomx-1gb-pages, no-getwork).</summary>
    Options = 4,
}

/// <summary>What an executable's bytes say: the kinds of miner marker found (with the first of each), and whether it is packed.</summary>
/// <param name="Kinds">Which kinds were found.</param>
/// <param name="Markers">The first marker found of each kind, as text, in kind order.</param>
/// <param name="Packer">The packer whose mark it carries (UPX), or null.</param>
public sealed record ContentVerdict(MinerMarkerKinds Kinds, IReadOnlyList<string> Markers, string? Packer)
{
    /// <summary>Nothing found.</summary>
    public static readonly ContentVerdict Clean = new(MinerMarkerKinds.None, [], null);

    /// <summary>Two kinds or more: a miner, whatever it is called (the miner-content rule).</summary>
    public bool IsMiner => System.Numerics.BitOperations.PopCount((uint)Kinds) >= 2;

    /// <summary>One kind only, or packed: weak evidence.</summary>
    public bool IsWeak => !IsMiner && (Kinds != MinerMarkerKinds.None || Packer is not null);
}

/// <summary>
/// Reads an executable's bytes for what a miner cannot drop without ceasing to
/// be one: the names and constants of its proof-of-work algorithms (a hash
/// computed without RandomX's "RandomX\x03" salt is no Monero share), the
/// Stratum methods it must speak to a pool, and its own option table. Two of
/// those three kinds make a miner; one alone is weak evidence, since a network
/// tool may name Stratum methods and a cryptography library an algorithm. A
/// file packed with UPX (whose strings it hides) carries the packer's mark,
/// weak evidence of its own. Fed in order, a buffer at a time, as the file is
/// read for its hash (<see cref="ExecutableHashes"/>): one read, no seeking,
/// markers split across reads found. Not thread-safe: one per read.
/// </summary>
public sealed class MinerContent
{
    /// <summary>
    /// The markers and their kinds. Sources: RANDOMX_ARGON_SALT in tevador/RandomX
    /// configuration.h (Monero's); the algorithm names xmrig, xmr-stak and
    /// cpuminer-opt register; the Stratum V1, EthereumStratum and XMRig method
    /// names (the default policy's stratum_methods and the notifications a
    /// client must handle); the long options of xmrig's and cpuminer's option
    /// tables (their --help). Each is long and specific enough that ordinary
    /// programs do not carry it by chance; the benign scan of a host's own
    /// executables (MinerContentTests) holds that.
    /// </summary>
    private static readonly (string Text, MinerMarkerKinds Kind)[] Table =
    [
        ("RandomX\u0003", MinerMarkerKinds.Algorithm),
        ("cryptonight", MinerMarkerKinds.Algorithm),
        ("CryptoNight", MinerMarkerKinds.Algorithm),
        ("cryptonight-lite", MinerMarkerKinds.Algorithm),
        ("randomx_calculate_hash", MinerMarkerKinds.Algorithm),
        ("kawpow", MinerMarkerKinds.Algorithm),
        ("ethash_light_new", MinerMarkerKinds.Algorithm),
        ("mining.subscribe", MinerMarkerKinds.Stratum),
        ("mining.authorize", MinerMarkerKinds.Stratum),
        ("mining.notify", MinerMarkerKinds.Stratum),
        ("mining.set_difficulty", MinerMarkerKinds.Stratum),
        ("mining.extranonce.subscribe", MinerMarkerKinds.Stratum),
        ("eth_submitLogin", MinerMarkerKinds.Stratum),
        ("eth_submitWork", MinerMarkerKinds.Stratum),
        ("stratum+tcp://", MinerMarkerKinds.Stratum),
        ("donate-level", MinerMarkerKinds.Options),
        ("donate-over-proxy", MinerMarkerKinds.Options),
        ("randomx-1gb-pages", MinerMarkerKinds.Options),
        ("cpu-max-threads-hint", MinerMarkerKinds.Options),
        ("no-getwork", MinerMarkerKinds.Options),
        ("coinbase-addr", MinerMarkerKinds.Options),
    ];

    /// <summary>UPX's mark: "UPX!" in the packed file's header (its l_info), and the copyright string it leaves.</summary>
    private static readonly string[] Packers = ["UPX!", "$Info: This file is packed with the UPX executable packer"];

    private static readonly SearchValues<string> Search = SearchValues.Create([.. Table.Select(t => t.Text), .. Packers], StringComparison.Ordinal);

    private static readonly int Overlap = Table.Select(t => t.Text.Length).Concat(Packers.Select(p => p.Length)).Max() - 1;

    private readonly string?[] firstOfKind = new string?[3];
    private readonly char[] window;
    private int carried;
    private MinerMarkerKinds kinds;
    private string? packer;

    /// <param name="bufferBytes">The largest buffer <see cref="Add"/> is given.</param>
    public MinerContent(int bufferBytes = 64 * 1024) => window = new char[bufferBytes + Overlap];

    /// <summary>The next bytes of the file, in order.</summary>
    public void Add(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int n = Math.Min(bytes.Length, window.Length - carried);
            // Latin-1: each byte one char, so a byte marker is a string marker, and SearchValues searches many at once.
            Encoding.Latin1.GetChars(bytes[..n], window.AsSpan(carried));
            Scan(window.AsSpan(0, carried + n));
            int keep = Math.Min(Overlap, carried + n);
            window.AsSpan(carried + n - keep, keep).CopyTo(window);
            carried = keep;
            bytes = bytes[n..];
        }
    }

    /// <summary>What was found in every byte added.</summary>
    public ContentVerdict Verdict()
    {
        if (kinds == MinerMarkerKinds.None && packer is null)
            return ContentVerdict.Clean;
        return new ContentVerdict(kinds, [.. firstOfKind.OfType<string>()], packer);
    }

    /// <summary>The verdict on <paramref name="bytes"/>, whole.</summary>
    public static ContentVerdict Of(ReadOnlySpan<byte> bytes)
    {
        var content = new MinerContent();
        content.Add(bytes);
        return content.Verdict();
    }

    private void Scan(ReadOnlySpan<char> text)
    {
        int at = 0;
        while (at < text.Length)
        {
            int hit = text[at..].IndexOfAny(Search);
            if (hit < 0)
                return;
            hit += at;
            ReadOnlySpan<char> rest = text[hit..];
            foreach ((string marker, MinerMarkerKinds kind) in Table)
            {
                if (rest.StartsWith(marker, StringComparison.Ordinal) && (kinds & kind) == 0)
                {
                    kinds |= kind;
                    firstOfKind[System.Numerics.BitOperations.Log2((uint)kind)] = Printable(marker);
                }
            }
            if (packer is null && (rest.StartsWith(Packers[0], StringComparison.Ordinal) || rest.StartsWith(Packers[1], StringComparison.Ordinal)))
                packer = "UPX";
            at = hit + 1;
        }
    }

    private static string Printable(string marker) => marker.Replace("\u0003", "\\x03", StringComparison.Ordinal);
}
