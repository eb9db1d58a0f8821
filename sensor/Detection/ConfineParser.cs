using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Guard.Sensor.Processes;
using Tomlyn.Syntax;

namespace Guard.Sensor.Detection;

/// <summary>
/// Reads [[confine]] sections from Tomlyn's syntax tree (for <see cref="PolicyParser"/>):
/// each [[confine]] header opens a section; [confine.egress], [confine.exec] and
/// [confine.gpu] after it, or dotted keys (egress.allow = [...]), fill its parts.
/// Every error is file:line:key.
/// </summary>
internal sealed class ConfineParser(string file, List<PolicyError> errors)
{
    /// <summary>The parts a section may have, as sub-tables or dotted keys.</summary>
    public static readonly string[] Parts = ["egress", "exec", "gpu"];

    private static readonly string[] TopKeys = ["name", "jobs", "launchers", "users", "groups", "mode", "ask_expiry_seconds", "resolvers", "gpu"];
    private static readonly string[] SelectorKeys = ["jobs", "launchers", "users", "groups"];
    private static readonly string[] JobKinds = ["slurm", "k8s-pod", "container", "systemd", JobMembership.TreeKind];

    /// <summary>The class names exec rules take, as the policy writes them.</summary>
    public static readonly IReadOnlyDictionary<string, ExecClass> ClassNames = new Dictionary<string, ExecClass>
    {
        ["shells"] = ExecClass.Shells,
        ["package-managers"] = ExecClass.PackageManagers,
        ["compilers"] = ExecClass.Compilers,
        ["downloaders"] = ExecClass.Downloaders,
        ["interpreters"] = ExecClass.Interpreters,
        ["world-writable"] = ExecClass.WorldWritable,
        ["memfd"] = ExecClass.Memfd,
    };

    private readonly List<SectionBuilder> sections = [];

    /// <summary>Opens the section a [[confine]] header on <paramref name="line"/> starts.</summary>
    public void Open(int line) => sections.Add(new SectionBuilder(line, sections.Count + 1));

    /// <summary>
    /// A key of the open section; <paramref name="part"/> is the sub-table it is under
    /// ([confine.egress]: "egress"), null directly under [[confine]].
    /// </summary>
    public void Key(KeyValueSyntax kv, string? part, int tableLine)
    {
        string key = kv.Key is { } k ? PolicyParser.KeyText(k) : "";
        int line = kv.Span.Start.Line + 1;
        string full = part is null ? key : $"{part}.{key}";
        if (sections.Count == 0)
        {
            Error(tableLine, $"confine.{part}", "comes before any [[confine]] section");
            return;
        }
        SectionBuilder s = sections[^1];
        if (s.Seen.TryGetValue(full, out int first))
        {
            Error(line, "confine." + full, $"set twice (first on line {first})");
            return;
        }
        s.Seen[full] = line;
        if (kv.Value is null)
            return; // a syntax error, reported as such
        string where = "confine." + full;
        switch (full)
        {
            case "name": s.Name = Text(kv, where, line, NotEmpty) ?? s.Name; break;
            case "jobs": s.Jobs = Selector(s, Strings(kv, where, line, JobGlob)) ?? s.Jobs; break;
            case "launchers": s.Launchers = Selector(s, Strings(kv, where, line, Launcher)) ?? s.Launchers; break;
            case "users": s.Users = Selector(s, TomlStrings.Read(kv, where, line, u => Principal(u, "user"), Error, quoteValue: false)) ?? s.Users; break;
            case "groups": s.Groups = Selector(s, TomlStrings.Read(kv, where, line, g => Principal(g, "group"), Error, quoteValue: false)) ?? s.Groups; break;
            case "mode": s.Mode = Mode(kv, where, line) ?? s.Mode; break;
            case "ask_expiry_seconds": s.AskExpirySeconds = AskExpiry(kv, where, line) ?? s.AskExpirySeconds; break;
            case "resolvers": s.Resolvers = Strings(kv, where, line, Resolver)?.Select(IPAddress.Parse).ToList() ?? s.Resolvers; break;
            case "egress.allow": Egress(s, kv, where, line); break;
            case "exec.allow": s.ExecAllow = ExecRules(kv, where, line) ?? s.ExecAllow; break;
            case "exec.deny": s.ExecDeny = ExecRules(kv, where, line) ?? s.ExecDeny; break;
            case "gpu.devices": s.GpuDevices = GpuMinors(kv, where, line) ?? s.GpuDevices; break;
            case "gpu": s.GpuDevices = GpuMinors(kv, where, line) ?? s.GpuDevices; break;
            default:
                string? under = full.Contains('.', StringComparison.Ordinal) ? full[..full.IndexOf('.', StringComparison.Ordinal)] : null;
                string known = under switch
                {
                    null => string.Join(", ", TopKeys) + "; parts: " + string.Join(", ", Parts),
                    "egress" => "allow",
                    "exec" => "allow, deny",
                    "gpu" => "devices",
                    _ => "parts: " + string.Join(", ", Parts),
                };
                Error(line, where, $"unknown key in {(under is null ? "[[confine]]" : $"[confine.{under}]")} (known: {known})");
                break;
        }
    }

    /// <summary>A [confine.PART] table whose part is none of <see cref="Parts"/>, on <paramref name="line"/>.</summary>
    public void UnknownPart(string part, int line)
    {
        if (sections.Count == 0)
        {
            Error(line, $"confine.{part}", "comes before any [[confine]] section");
            return;
        }
        Error(line, $"[confine.{part}]", $"unknown part of [[confine]] (known: {string.Join(", ", Parts.Select(p => $"[confine.{p}]"))})");
        // The section was meant to confine something: "confines nothing" would be this mistake again.
        sections[^1].PartRefused = true;
    }

    /// <summary>The sections read, each checked as a whole (a selector, no clashing names).</summary>
    public List<ConfineSection> Build()
    {
        var built = new List<ConfineSection>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (SectionBuilder s in sections)
        {
            string name = s.Name ?? $"confine#{s.Index}";
            if (names.TryGetValue(name, out int first))
                Error(s.Seen.GetValueOrDefault("name", s.Line), "confine.name", $"\"{name}\" names another section too (line {first})");
            names[name] = s.Line;
            // A selector given but refused is reported as itself, not again as none.
            if (s.Jobs.Count + s.Launchers.Count + s.Users.Count + s.Groups.Count == 0 && !s.SelectorRefused)
            {
                if (SelectorKeys.FirstOrDefault(s.Seen.ContainsKey) is { } empty)
                    Error(s.Seen[empty], "confine." + empty, "is empty and no other selector is given: the section selects no job (jobs = [\"*\"] for every job)");
                else
                    Error(s.Line, "confine", "selects no job: give jobs, launchers, users or groups (jobs = [\"*\"] for every job)");
            }
            if (!s.PartRefused && !s.Seen.Keys.Any(k => k == "gpu" || Parts.Any(p => k.StartsWith(p + ".", StringComparison.Ordinal))))
                Error(s.Line, "confine", "confines nothing: give egress.allow, exec.allow or exec.deny, or gpu");
            if (s.ExecDeny is { Count: 0 })
                Error(s.Seen["exec.deny"], "confine.exec.deny", "is empty: it denies nothing (give a class, a path or glob, or sha256:HEX; or leave exec out)");
            else if (s.ExecAllow is not null && s.ExecDeny is null)
                Error(s.Seen["exec.allow"], "confine.exec.allow", "allows out of nothing: exec.allow excepts from exec.deny, which is not given");
            if (s.Seen.TryGetValue("ask_expiry_seconds", out int expiryLine) && s.Mode != ConfineMode.Ask)
                Error(expiryLine, "confine.ask_expiry_seconds", "is only for mode = \"ask\": nothing waits for an answer in this section");
            if (s.Resolvers.Count > 0 && s.Egress is null)
                Error(s.Seen["resolvers"], "confine.resolvers", "has no egress.allow to keep DNS open in");
            if (s.Egress is { Names.Count: > 0 } && s.Resolvers.Count == 0)
                Error(s.Seen["egress.allow"], "confine.egress.allow", "names DNS names but the section has no resolvers to read their answers from");
            built.Add(new ConfineSection(
                name, $"{file}:{s.Line}", new ConfineSelector(s.Jobs, s.Launchers, s.Users, s.Groups), s.Mode, s.Resolvers,
                s.Egress, s.ExecDeny is null ? null : new ConfineExec(s.ExecAllow ?? [], s.ExecDeny),
                s.GpuDevices is null ? null : new ConfineGpu(s.GpuDevices), s.AskExpirySeconds));
        }
        return built;
    }

    private void Egress(SectionBuilder s, KeyValueSyntax kv, string where, int line)
    {
        var addresses = new List<EgressAddress>();
        var names = new List<EgressName>();
        List<string>? entries = Strings(kv, where, line, text =>
        {
            string? problem = ParseEgress(text, out EgressAddress? address, out EgressName? name);
            if (address is not null)
                addresses.Add(address);
            if (name is not null)
                names.Add(name);
            return problem;
        });
        if (entries is not null)
            s.Egress = new ConfineEgress(addresses, names);
    }

    /// <summary>
    /// One egress entry: [tcp://|udp://]HOST[:PORT[-PORT]], HOST an IPv4 address
    /// (four decimal numbers) with an optional /PREFIX, an IPv6 one in brackets
    /// ([2001:db8::/32]; bare when no port follows and its last group could not be
    /// one), a DNS name, or *.SUFFIX. Null when it reads, else why not.
    /// </summary>
    internal static string? ParseEgress(string text, out EgressAddress? address, out EgressName? name)
    {
        address = null;
        name = null;
        string rest = text;
        ConfineProtocol protocol = ConfineProtocol.Any;
        int scheme = rest.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            protocol = rest[..scheme] switch { "tcp" => ConfineProtocol.Tcp, "udp" => ConfineProtocol.Udp, _ => (ConfineProtocol)(-1) };
            if ((int)protocol < 0)
                return $"\"{rest[..scheme]}\" is not a protocol (tcp://, udp://, or none for both)";
            rest = rest[(scheme + 3)..];
        }
        string host = rest;
        PortRange ports = PortRange.All;
        if (rest.StartsWith('['))
        {
            int close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
                return "has a '[' with no ']'";
            host = rest[1..close];
            string after = rest[(close + 1)..];
            if (after.Length > 0 && (after[0] != ':' || Ports(after[1..]) is not { } bracketed))
                return "must be [IPV6[/PREFIX]]:PORT or :LOW-HIGH after the brackets";
            else if (after.Length > 0)
                ports = Ports(after[1..])!.Value;
            if (!IPAddress.TryParse(host.Split('/')[0], out IPAddress? v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
                return "has brackets around something that is not an IPv6 address";
        }
        else if (rest.Count(c => c == ':') == 1)
        {
            int colon = rest.IndexOf(':', StringComparison.Ordinal);
            host = rest[..colon];
            if (Ports(rest[(colon + 1)..]) is not { } p)
                return "has a port that is not 1-65535, or a range LOW-HIGH with LOW <= HIGH";
            ports = p;
        }
        else if (rest.Contains(':', StringComparison.Ordinal) && UnbracketedIpv6Port(rest) is { } problem)
            return problem;
        if (host.Length == 0)
            return "names no address or host";
        string[] cidr = host.Split('/');
        if (cidr[0].Contains('%', StringComparison.Ordinal))
            return "has a zone (%...): give the address alone, the kernel matches no zone";
        if (cidr[0].Count(c => c == '.') == 3 && !cidr[0].Contains(':', StringComparison.Ordinal) && IPAddress.TryParse(cidr[0], out _) && Ipv4Problem(cidr[0]) is { } v4)
            return v4;
        if (IPAddress.TryParse(cidr[0], out IPAddress? ip) && (cidr[0].Contains(':', StringComparison.Ordinal) || cidr[0].Count(c => c == '.') == 3))
        {
            int max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
            int prefix = max;
            if (cidr.Length > 2 || (cidr.Length == 2 && (!int.TryParse(cidr[1], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)))
                return $"has a prefix that is not 0-{max}";
            if (ip.IsIPv4MappedToIPv6)
                return "is an IPv4-mapped IPv6 address: write it as IPv4";
            address = new EgressAddress(Masked(ip, prefix), prefix, ports, protocol, text);
            return null;
        }
        if (cidr.Length > 1)
            return "has a prefix on something that is not an address";
        bool suffix = host.StartsWith("*.", StringComparison.Ordinal);
        string dns = (suffix ? host[2..] : host).TrimEnd('.').ToLowerInvariant();
        if (DnsName(dns) is { } notName)
            return notName;
        // No top-level domain is all digits (RFC 3696 2): "443" or "10.0.0" is a port or an address mistyped, never a name.
        if (dns.Split('.')[^1].All(c => char.IsAsciiDigit(c) || c == '-'))
        {
            return !dns.Contains('.', StringComparison.Ordinal) && Ports(dns) is not null
                ? $"is a port alone, which names no host: write 0.0.0.0/0:{dns} and [::/0]:{dns} for every address"
                : "is neither an address (IPv4 is four numbers: 10.0.0.1) nor a DNS name (none ends in a number)";
        }
        // Wire form: a length byte per label instead of each dot, and one more (GUARD_CONFINE_NAME_MAX in bpf/guard.h).
        if (dns.Length + 1 > 128)
            return "is a DNS name longer than 127 characters: the kernel matches names of up to 128 bytes in wire form";
        name = new EgressName(dns, suffix, ports, protocol, text);
        return null;
    }

    /// <summary>
    /// Why an unbracketed IPv6 entry (more than one ':') cannot be read as written, or null:
    /// a port after a prefix, a port range after an address, or a last group that could be a
    /// port (2001:db8::1:443 is an address, but reads as 2001:db8::1 port 443 as well).
    /// </summary>
    internal static string? UnbracketedIpv6Port(string text)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        int last = text.LastIndexOf(':');
        string head = text[..last], tail = text[(last + 1)..];
        if (slash >= 0 && slash < last)
            return $"has a port after an IPv6 prefix: write [{head}]:{tail}";
        if (slash >= 0 || Ports(tail) is null || !IPAddress.TryParse(head, out IPAddress? address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            return null;
        if (tail.Contains('-', StringComparison.Ordinal))
            return $"has ports after an IPv6 address without brackets: write [{head}]:{tail}";
        return $"is the IPv6 address {text}, or {head} port {tail}: write [{head}]:{tail} for the port, or [{text}] (or {text}/128) for the address";
    }

    /// <summary>
    /// Why <paramref name="text"/> (three dots) is no IPv4 address as a person reads one, or null:
    /// four decimal numbers 0-255 without leading zeros, since .NET (as inet_aton) reads 010 as octal 8 and 0x0a as 10.
    /// </summary>
    internal static string? Ipv4Problem(string text) =>
        text.Split('.').All(n => n.Length is > 0 and <= 3 && n.All(char.IsAsciiDigit) && (n.Length == 1 || n[0] != '0') && int.Parse(n, CultureInfo.InvariantCulture) <= 255)
            ? null
            : "is not an IPv4 address as written: four decimal numbers 0-255 without leading zeros (010 reads as octal 8)";

    /// <summary>The network address: <paramref name="ip"/> with the bits after <paramref name="prefix"/> cleared.</summary>
    private static IPAddress Masked(IPAddress ip, int prefix)
    {
        byte[] bytes = ip.GetAddressBytes();
        for (int bit = prefix; bit < bytes.Length * 8; bit++)
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return new IPAddress(bytes);
    }

    private static PortRange? Ports(string text)
    {
        string[] ends = text.Split('-');
        if (ends.Length > 2 || ends.Any(e => !ushort.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out ushort p) || p == 0))
            return null;
        ushort low = ushort.Parse(ends[0], CultureInfo.InvariantCulture), high = ushort.Parse(ends[^1], CultureInfo.InvariantCulture);
        return low <= high ? new PortRange(low, high) : null;
    }

    /// <summary>Why <paramref name="name"/> is no DNS name (labels of letters, digits and '-', 1-63 bytes each, 253 in all), or null.</summary>
    private static string? DnsName(string name)
    {
        if (name.Length is 0 or > 253)
            return "must be an address, a DNS name or *.SUFFIX";
        foreach (string label in name.Split('.'))
        {
            if (label.Length is 0 or > 63 || label.StartsWith('-') || label.EndsWith('-') || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
                return "must be an address, a DNS name (letters, digits, '-', labels of 1-63) or *.SUFFIX";
        }
        return null;
    }

    private List<ExecRule>? ExecRules(KeyValueSyntax kv, string where, int line)
    {
        var rules = new List<ExecRule>();
        List<string>? entries = Strings(kv, where, line, text =>
        {
            if (text.StartsWith('/'))
                rules.Add(new ExecRule(text, null, null, text));
            else if (text.StartsWith("sha256:", StringComparison.Ordinal))
            {
                string hex = text[7..];
                if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
                    return "must be sha256: and 64 hex digits";
                rules.Add(new ExecRule(null, hex.ToLowerInvariant(), null, text));
            }
            else if (ClassNames.TryGetValue(text, out ExecClass c))
                rules.Add(new ExecRule(null, null, c, text));
            else
                return $"must be an absolute path or glob, sha256:HEX, or a class ({string.Join(", ", ClassNames.Keys)})";
            return null;
        });
        return entries is null ? null : rules;
    }

    /// <summary>
    /// gpu = [0, 2] or ["0", "2"] (NVIDIA minors, /dev/nvidiaN), "none" (or ["none"], []):
    /// the GPUs a job may open. gpu.devices reads the same. A bare number is refused:
    /// gpu = 2 could mean /dev/nvidia2 or two GPUs.
    /// </summary>
    private List<int>? GpuMinors(KeyValueSyntax kv, string where, int line)
    {
        if (kv.Value is StringValueSyntax { Value: "none" })
            return [];
        if (kv.Value is not ArraySyntax array)
        {
            Error(line, where, "expected a list of GPU minors ([0, 2]: /dev/nvidia0 and /dev/nvidia2), or \"none\"");
            return null;
        }
        var minors = new List<int>();
        bool none = false, ok = true;
        foreach (ArrayItemSyntax item in array.Items)
        {
            int itemLine = item.Span.Start.Line + 1;
            switch (item.Value)
            {
                case IntegerValueSyntax { Value: >= 0 and <= MaxGpuMinor } n:
                    minors.Add((int)n.Value);
                    break;
                case StringValueSyntax { Value: "none" }:
                    none = true;
                    break;
                case StringValueSyntax { Value: { } text } when int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int minor) && minor <= MaxGpuMinor:
                    minors.Add(minor);
                    break;
                case IntegerValueSyntax n:
                    Error(itemLine, where, $"{n.Value}: must be a GPU's minor number (0-{MaxGpuMinor}: /dev/nvidia0 is 0) or \"none\"");
                    ok = false;
                    break;
                case StringValueSyntax { Value: { } text }:
                    Error(itemLine, where, $"\"{text}\": must be a GPU's minor number (0-{MaxGpuMinor}: /dev/nvidia0 is 0) or \"none\"");
                    ok = false;
                    break;
                default:
                    Error(itemLine, where, $"expected GPU minors (0-{MaxGpuMinor}: /dev/nvidia0 is 0) or \"none\"");
                    ok = false;
                    break;
            }
        }
        if (ok && none && minors.Count > 0)
        {
            Error(line, where, "\"none\" with GPUs beside it: give one or the other");
            return null;
        }
        return ok ? minors : null;
    }

    /// <summary>The highest NVIDIA minor a GPU has: 254 and 255 are /dev/nvidia-modeset and /dev/nvidiactl.</summary>
    private const int MaxGpuMinor = 253;

    private ConfineMode? Mode(KeyValueSyntax kv, string where, int line)
    {
        string? value = Text(kv, where, line, NotEmpty);
        ConfineMode? mode = value switch { "enforce" => ConfineMode.Enforce, "audit" => ConfineMode.Audit, "ask" => ConfineMode.Ask, _ => null };
        if (value is not null && mode is null)
            Error(line, where, $"\"{value}\" is not a mode (enforce, audit, ask)");
        return mode;
    }

    /// <summary>ask_expiry_seconds: a whole number of seconds, 1 to <see cref="ConfineSection.MaxAskExpirySeconds"/>.</summary>
    private int? AskExpiry(KeyValueSyntax kv, string where, int line)
    {
        if (kv.Value is IntegerValueSyntax { Value: >= 1 and <= ConfineSection.MaxAskExpirySeconds } n)
            return (int)n.Value;
        Error(line, where, $"expected whole seconds from 1 to {ConfineSection.MaxAskExpirySeconds} (900: 15 minutes)");
        return null;
    }

    private static string? NotEmpty(string s) => s.Length == 0 ? "must not be empty" : null;

    /// <summary>"*", or KIND:GLOB with a job kind Guard names ('*' any run of characters, '?' one).</summary>
    private static string? JobGlob(string s)
    {
        if (s == "*")
            return null;
        int colon = s.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0 || !JobKinds.Contains(s[..colon]))
            return $"must be \"*\" or KIND:ID with a glob for the id, KIND one of {string.Join(", ", JobKinds)} (slurm:*, k8s-pod:*)";
        return colon == s.Length - 1 ? "has no id after the kind (slurm:* for every Slurm job)" : null;
    }

    private static string? Launcher(string s) =>
        s.Length == 0 ? "must not be empty"
        : s.StartsWith('/') ? null
        : s.Contains('/', StringComparison.Ordinal) ? "must be a program's name or its absolute path"
        : System.Text.Encoding.UTF8.GetByteCount(s) > 15 ? "a program's name is at most 15 bytes as the kernel keeps it (comm): give its absolute path"
        : null;

    /// <summary>
    /// A user or group name, or a number; the reason when it is neither. A name this host's
    /// files lack is not an error here (a sensor must start whatever accounts a node has):
    /// `guard policy check` warns of it, as it selects no job on this host.
    /// </summary>
    private static string? Principal(string s, string kind) =>
        s.Length == 0 || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '$') ? $"\"{s}\": must be a {kind} name, or a number" : null;

    /// <summary>A selector's list as read; null (and the section marked) when it was refused.</summary>
    private static List<string>? Selector(SectionBuilder s, List<string>? read)
    {
        if (read is null)
            s.SelectorRefused = true;
        return read;
    }

    private static string? Resolver(string s) => IPAddress.TryParse(s, out IPAddress? ip) && !s.Contains('/', StringComparison.Ordinal) && !s.Contains('%', StringComparison.Ordinal) && (s.Contains(':', StringComparison.Ordinal) || s.Count(c => c == '.') == 3)
        ? (ip.IsIPv4MappedToIPv6 ? "is an IPv4-mapped IPv6 address: write it as IPv4" : !s.Contains(':', StringComparison.Ordinal) ? Ipv4Problem(s) : null)
        : "must be a resolver's IPv4 or IPv6 address";

    /// <summary>Whether job id <paramref name="id"/> matches glob <paramref name="glob"/> ('*' any run, '?' one character).</summary>
    public static bool GlobMatches(string glob, string id) => Glob(glob.AsSpan(), id.AsSpan());

    private static bool Glob(ReadOnlySpan<char> glob, ReadOnlySpan<char> text)
    {
        // Iterative with one backtrack point: linear enough for ids and paths a policy names.
        int g = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (g < glob.Length && (glob[g] == '?' || glob[g] == text[t]))
            {
                g++;
                t++;
            }
            else if (g < glob.Length && glob[g] == '*')
            {
                star = g++;
                mark = t;
            }
            else if (star >= 0)
            {
                g = star + 1;
                t = ++mark;
            }
            else
                return false;
        }
        while (g < glob.Length && glob[g] == '*')
            g++;
        return g == glob.Length;
    }

    private string? Text(KeyValueSyntax kv, string where, int line, Func<string, string?> check)
    {
        if (kv.Value is not StringValueSyntax { Value: { } text })
        {
            Error(line, where, "expected a string");
            return null;
        }
        if (check(text) is { } problem)
        {
            Error(line, where, $"\"{text}\": {problem}");
            return null;
        }
        return text;
    }

    private List<string>? Strings(KeyValueSyntax kv, string where, int line, Func<string, string?> check) => TomlStrings.Read(kv, where, line, check, Error);

    private void Error(int line, string key, string reason) => errors.Add(new PolicyError(file, line, key, reason));

    private sealed class SectionBuilder(int line, int index)
    {
        public int Line { get; } = line;

        public int Index { get; } = index;

        public Dictionary<string, int> Seen { get; } = [];

        public string? Name { get; set; }

        public List<string> Jobs { get; set; } = [];

        public List<string> Launchers { get; set; } = [];

        public List<string> Users { get; set; } = [];

        public List<string> Groups { get; set; } = [];

        public ConfineMode Mode { get; set; } = ConfineMode.Enforce;

        public int AskExpirySeconds { get; set; } = ConfineSection.DefaultAskExpirySeconds;

        public List<IPAddress> Resolvers { get; set; } = [];

        public ConfineEgress? Egress { get; set; }

        public List<ExecRule>? ExecAllow { get; set; }

        public List<ExecRule>? ExecDeny { get; set; }

        public List<int>? GpuDevices { get; set; }

        /// <summary>Whether a selector (jobs, launchers, users, groups) was given and refused: reported as itself, not again as "selects no job".</summary>
        public bool SelectorRefused { get; set; }

        /// <summary>Whether a [confine.PART] of no known part was given: the section meant to confine something.</summary>
        public bool PartRefused { get; set; }
    }
}
