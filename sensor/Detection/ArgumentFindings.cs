using System.Net;
using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Miner arguments at exec, judged in user space. Strong signals act alone: a
/// fragment only miners use (the policy's miner_arguments: a stratum+tcp://
/// URL, --donate-level), a pool domain with a port, a wallet address whose
/// checksum holds. Weak signals are of three kinds: a fragment ordinary tools
/// share (miner_arguments_weak: --algo=, --coin=), a pool domain without a port
/// or a public address on a pool port, and an address that only looks like a
/// wallet. Two kinds on one command line act; one kind alone is kept on the
/// process as weak evidence (<see cref="WeakFindings"/>), so that
/// `python3 train.py --algo=ppo` is left alone. The whole command line is
/// read, up to the 64 KiB the kernel copies at exec; a longer one is a weak
/// kind of its own, since what lies past that was never read.
/// </summary>
public sealed class ArgumentFindings
{
    private readonly Policy policy;
    private readonly PoolDomains pools;
    private readonly HashSet<int> poolPorts;
    private readonly Fragment[] strongFragments;
    private readonly Fragment[] weakFragments;

    public ArgumentFindings(Policy policy)
    {
        this.policy = policy;
        pools = new PoolDomains(policy.Indicators.PoolDomains);
        poolPorts = [.. policy.Indicators.PoolPorts];
        strongFragments = [.. policy.Indicators.MinerArguments.Select(f => new Fragment(f))];
        weakFragments = [.. policy.Indicators.MinerArgumentsWeak.Select(f => new Fragment(f))];
    }

    /// <summary>An acting alert for strong or two kinds of weak evidence; an alert-only one when a weak kind joins weak evidence kept before; else null.</summary>
    public AlertEvent? OnExec(ProcessEntry process, long timeNs)
    {
        RuleAction action = policy.ActionFor(Detectors.MinerArguments);
        if (action == RuleAction.Off || process.Args.Length == 0)
            return null;
        byte[] args = process.Args;
        // Lower case, arguments joined by spaces: "-a rx/0" matches argv "-a", "rx/0" as it would a shell line.
        Span<byte> line = args.Length <= 4096 ? stackalloc byte[args.Length] : new byte[args.Length];
        for (int i = 0; i < args.Length; i++)
            line[i] = args[i] switch { 0 => (byte)' ', >= (byte)'A' and <= (byte)'Z' => (byte)(args[i] + 32), _ => args[i] };
        var signals = new List<Signal>(3);
        if ((FragmentIn(line, args, strongFragments, strong: true) ?? FragmentIn(line, args, weakFragments, strong: false)) is { } fragment)
            signals.Add(fragment);
        if (WalletAddresses.Find(args) is { } wallet)
            signals.Add(new Signal(wallet.Verified, "a cryptocurrency wallet address on the command line", wallet.Address,
                [new("wallet", wallet.Address), new("wallet_format", wallet.Format)]));
        if (PoolIn(line) is { } pool)
            signals.Add(pool);
        // The kernel reads argv whole at exec up to 64 KiB: what lies past that (or past a lost record) was never read.
        if (process.ArgsTruncated)
        {
            string read = args.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            signals.Add(new Signal(false, "a command line longer than the kernel reads", $"a command line read only to byte {read}",
                [new("args_read_bytes", read)]));
        }
        if (signals.Count == 0)
            return null;
        Signal? strong = signals.Find(s => s.Strong);
        if (strong is null && signals.Count == 1)
            return WeakFindings.OnWeakArguments(process, signals[0].Detail, timeNs);
        return new AlertEvent
        {
            Rule = Detectors.MinerArguments.Name,
            Description = strong?.Description ?? "miner arguments: two independent kinds of signal on the command line",
            RequestedAction = action,
            Evidence = [.. signals.SelectMany(s => s.Evidence), new("executable", process.ExecutableText)],
            Process = process,
            TimeNs = timeNs,
        };
    }

    /// <summary>The first of <paramref name="fragments"/> in the line, with the argument it starts in.</summary>
    private static Signal? FragmentIn(ReadOnlySpan<byte> line, byte[] args, Fragment[] fragments, bool strong)
    {
        foreach (Fragment f in fragments)
        {
            if (f.IndexIn(line) is not (>= 0 and var at))
                continue;
            int start = Array.LastIndexOf(args, (byte)0, Math.Max(at - 1, 0)) + 1;
            int end = Array.IndexOf(args, (byte)0, at);
            string argument = Encoding.UTF8.GetString(args, start, (end < 0 ? args.Length : end) - start);
            return new Signal(strong, "miner arguments on the command line", $"{argument} (matched {f.Text})",
                [new("argument", argument), new("matched", f.Text)]);
        }
        return null;
    }

    /// <summary>
    /// A pool in the line: a pool domain with a port is strong; a pool domain
    /// without one (a pool's web page), or a public address on a pool port,
    /// is weak. Host names are found wherever they stand: `-opool.example:3333`,
    /// `--url=`, `user@host`, a URL.
    /// </summary>
    private Signal? PoolIn(ReadOnlySpan<byte> line)
    {
        Signal? weakest = null;
        int i = 0;
        while (i < line.Length)
        {
            int end = i;
            ReadOnlySpan<byte> host;
            if (line[i] == (byte)'[')
            {
                // An IPv6 address, [ADDRESS]:PORT; a '[' with no ']' after it is none.
                int close = line[i..].IndexOf((byte)']');
                end = close < 0 ? i + 1 : i + close + 1;
                host = close < 0 ? [] : line[(i + 1)..(i + close)];
            }
            else
            {
                while (end < line.Length && IsHostChar(line[end]))
                    end++;
                host = line[i..end].TrimStart("-."u8).TrimEnd((byte)'.');
            }
            if (end == i || host.IndexOf((byte)'.') < 0 && host.IndexOf((byte)':') < 0)
            {
                i = Math.Max(end, i + 1);
                continue;
            }
            int port = PortAfter(line, end);
            string name = Encoding.ASCII.GetString(host);
            if (pools.Match(name) is { } domain)
            {
                string where = port > 0 ? $"{name}:{port}" : name;
                var pool = new Signal(port > 0, "a mining pool's address on the command line", $"{where} (pool {domain}{(port > 0 ? "" : ", no port")})",
                    [new("pool", where), new("pool_domain", domain)]);
                if (pool.Strong)
                    return pool;
                weakest ??= pool;
            }
            else if (port > 0 && poolPorts.Contains(port) && IsAddress(host, out IPAddress? address) && WeakFindings.IsPublic(address))
            {
                string where = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? $"{name}:{port}" : $"[{name}]:{port}";
                weakest ??= new Signal(false, "a mining pool's address on the command line", $"{where} (a public address on a pool port)",
                    [new("pool", where), new("pool_port", port.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
            }
            i = end;
        }
        return weakest;
    }

    private static readonly System.Buffers.SearchValues<byte> DottedQuadCharacters = System.Buffers.SearchValues.Create("0123456789."u8);

    /// <summary>An IPv4 address in dotted quads (not "1.2", which parsers take for 1.0.0.2) or an IPv6 address.</summary>
    private static bool IsAddress(ReadOnlySpan<byte> host, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        bool dottedQuad = host.Count((byte)'.') == 3 && host.IndexOfAnyExcept(DottedQuadCharacters) < 0;
        return (dottedQuad || host.IndexOf((byte)':') >= 0) && IPAddress.TryParse(host, out address);
    }

    /// <summary>The port in ":PORT" at <paramref name="at"/>, or -1.</summary>
    private static int PortAfter(ReadOnlySpan<byte> line, int at)
    {
        if (at >= line.Length || line[at] != (byte)':')
            return -1;
        int port = 0;
        int i = at + 1;
        for (; i < line.Length && char.IsAsciiDigit((char)line[i]) && i - at <= 5; i++)
            port = (port * 10) + (line[i] - '0');
        return i > at + 1 && (i == line.Length || !char.IsAsciiDigit((char)line[i])) && port is >= 1 and <= 65535 ? port : -1;
    }

    private static bool IsHostChar(byte c) => char.IsAsciiLetterOrDigit((char)c) || c is (byte)'.' or (byte)'-';

    /// <summary>One signal: strong or weak, how the alert describes it, how weak evidence records it, and its evidence.</summary>
    private sealed record Signal(bool Strong, string Description, string Detail, KeyValuePair<string, string>[] Evidence);

    /// <summary>
    /// A policy fragment, matched in lower case. One ending in '=' matches the
    /// option with its value in the next argument too; a URL scheme ("...://")
    /// only with a host after it, so a search for the scheme is no miner.
    /// </summary>
    private sealed class Fragment(string text)
    {
        private readonly byte[] lower = Encoding.UTF8.GetBytes(text.ToLowerInvariant());

        public string Text { get; } = text;

        public int IndexIn(ReadOnlySpan<byte> line)
        {
            ReadOnlySpan<byte> f = lower;
            bool optionValue = f.EndsWith("="u8);
            bool scheme = f.EndsWith("://"u8);
            for (int from = 0; from < line.Length;)
            {
                int found = line[from..].IndexOf(optionValue ? f[..^1] : f);
                if (found < 0)
                    return -1;
                int at = from + found;
                int after = at + (optionValue ? f.Length - 1 : f.Length);
                bool whole = optionValue ? after < line.Length && line[after] is (byte)'=' or (byte)' '
                    : !scheme || (after < line.Length && (IsHostChar(line[after]) || line[after] == (byte)'['));
                if (whole)
                    return at;
                from = at + 1;
            }
            return -1;
        }
    }
}
