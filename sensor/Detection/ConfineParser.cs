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
            case "jobs": s.Jobs = Strings(kv, where, line, JobGlob) ?? s.Jobs; break;
            case "launchers": s.Launchers = Strings(kv, where, line, Launcher) ?? s.Launchers; break;
            case "users": s.Users = Strings(kv, where, line, Principal) ?? s.Users; break;
            case "groups": s.Groups = Strings(kv, where, line, Principal) ?? s.Groups; break;
            case "mode": s.Mode = Mode(kv, where, line) ?? s.Mode; break;
            case "ask_expiry_seconds": s.AskExpirySeconds = AskExpiry(kv, where, line) ?? s.AskExpirySeconds; break;
            case "resolvers": s.Resolvers = Strings(kv, where, line, Resolver)?.Select(IPAddress.Parse).ToList() ?? s.Resolvers; break;
            case "egress.allow": Egress(s, kv, where, line); break;
            case "exec.allow": s.ExecAllow = ExecRules(kv, where, line) ?? s.ExecAllow; break;
            case "exec.deny": s.ExecDeny = ExecRules(kv, where, line) ?? s.ExecDeny; break;
            case "gpu.devices": s.GpuDevices = Devices(kv, where, line) ?? s.GpuDevices; break;
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
                Error(line, where, $"unknown key in [[confine]] (known: {known})");
                break;
        }
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
            if (s.Jobs.Count + s.Launchers.Count + s.Users.Count + s.Groups.Count == 0 && !SelectorKeys.Any(s.Seen.ContainsKey))
                Error(s.Line, "confine", "selects no job: give jobs, launchers, users or groups (jobs = [\"*\"] for every job)");
            if (!s.Seen.Keys.Any(k => k == "gpu" || Parts.Any(p => k.StartsWith(p + ".", StringComparison.Ordinal))))
                Error(s.Line, "confine", "confines nothing: give egress.allow, exec.allow or exec.deny, or gpu");
            if (s.ExecAllow is not null && s.ExecDeny is null)
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
    /// with an optional /PREFIX, an IPv6 one in brackets ([2001:db8::/32]; bare
    /// when no port follows), a DNS name, or *.SUFFIX. Null when it reads, else why not.
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
        if (host.Length == 0)
            return "names no address or host";
        string[] cidr = host.Split('/');
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
        if (DnsName(dns) is { } problem)
            return problem;
        // Wire form: a length byte per label instead of each dot, and one more (GUARD_CONFINE_NAME_MAX in bpf/guard.h).
        if (dns.Length + 1 > 128)
            return "is a DNS name longer than 127 characters: the kernel matches names of up to 128 bytes in wire form";
        name = new EgressName(dns, suffix, ports, protocol, text);
        return null;
    }

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

    private List<int>? Devices(KeyValueSyntax kv, string where, int line)
    {
        if (kv.Value is not ArraySyntax array)
        {
            Error(line, where, "expected a list of GPU indices (0, 1, ...; [] for none)");
            return null;
        }
        var devices = new List<int>();
        bool ok = true;
        foreach (ArrayItemSyntax item in array.Items)
        {
            if (item.Value is IntegerValueSyntax { Value: >= 0 and < 254 } n)
            {
                devices.Add((int)n.Value);
                continue;
            }
            Error(item.Span.Start.Line + 1, where, "expected GPU indices from 0 to 253 (/dev/nvidiaN)");
            ok = false;
        }
        return ok ? devices : null;
    }

    /// <summary>gpu = ["0", "2"] (NVIDIA minors, /dev/nvidiaN) or "none" (or ["none"], []): the GPUs a job may open.</summary>
    private List<int>? GpuMinors(KeyValueSyntax kv, string where, int line)
    {
        if (kv.Value is StringValueSyntax { Value: "none" })
            return [];
        var minors = new List<int>();
        bool none = false;
        List<string>? entries = Strings(kv, where, line, text =>
        {
            if (text == "none")
            {
                none = true;
                return null;
            }
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int minor) || minor > 253)
                return "must be a GPU's minor number (0-253: /dev/nvidia0 is \"0\") or \"none\"";
            minors.Add(minor);
            return null;
        });
        if (entries is null)
            return null;
        if (none && minors.Count > 0)
        {
            Error(line, where, "\"none\" with GPUs beside it: give one or the other");
            return null;
        }
        return minors;
    }

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

    private static string? Principal(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '$') ? null : "must be a user or group name, or a number";

    private static string? Resolver(string s) => IPAddress.TryParse(s, out IPAddress? ip) && !s.Contains('/', StringComparison.Ordinal) && (s.Contains(':', StringComparison.Ordinal) || s.Count(c => c == '.') == 3)
        ? (ip.IsIPv4MappedToIPv6 ? "is an IPv4-mapped IPv6 address: write it as IPv4" : null)
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
    }
}
