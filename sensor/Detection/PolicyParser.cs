using System.Globalization;
using System.Net;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Guard.Sensor.Detection;

/// <summary>
/// Reads a policy file from Tomlyn's syntax tree rather than by reflection:
/// AOT-safe, and every value keeps its line, so each error is reported as
/// file:line:key with the reason, all of them at once.
/// </summary>
public static class PolicyParser
{
    private static readonly string[] Sections = ["jobs", "allow", "indicators", "thresholds", "quarantine", "rules"];

    /// <summary>The one array of tables a policy has: [[confine]], read by <see cref="ConfineParser"/>.</summary>
    private const string ConfineSection = "confine";

    /// <summary>
    /// Lays <paramref name="text"/> over <paramref name="basis"/>; errors are added to <paramref name="errors"/>,
    /// each once, in the order of the file (a syntax error alone).
    /// </summary>
    public static Policy Parse(string text, string file, Policy? basis, List<PolicyError> errors)
    {
        DocumentSyntax doc = SyntaxParser.Parse(text, file, true);
        int first = errors.Count;
        var builder = new Builder(file, basis, errors);
        // A document that did not parse is reported by its syntax error alone: what
        // was read of it is half a policy, whose other "errors" are only its echo.
        if (TomlSyntaxError.First(doc, file) is { } syntax)
        {
            errors.Add(syntax);
            return builder.Build() with { Confine = basis?.Confine ?? [] };
        }
        var confine = new ConfineParser(file, errors);
        // Tables opened so far, by name (TOML allows each once); a [[confine]] starts its parts afresh.
        var opened = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (KeyValueSyntax kv in doc.KeyValues)
            builder.Top(kv);
        foreach (TableSyntaxBase table in doc.Tables)
        {
            string name = table.Name is { } n ? KeyText(n) : "";
            int line = table.Span.Start.Line + 1;
            if (table is TableArraySyntax && name == ConfineSection)
            {
                confine.Open(line);
                foreach (string part in opened.Keys.Where(k => k.StartsWith(ConfineSection + ".", StringComparison.Ordinal)).ToList())
                    opened.Remove(part);
                foreach (KeyValueSyntax kv in table.Items)
                    confine.Key(kv, null, line);
                continue;
            }
            if (table is TableArraySyntax)
            {
                errors.Add(new PolicyError(file, line, $"[[{name}]]", $"arrays of tables are not part of a policy, but for [[{ConfineSection}]]"));
                continue;
            }
            if (opened.TryGetValue(name, out int firstLine))
            {
                // Its keys are not read: each would be "set twice" for this one mistake.
                errors.Add(new PolicyError(file, line, $"[{name}]", $"opened twice (first on line {firstLine}): give its keys under one [{name}]"));
                continue;
            }
            opened[name] = line;
            if (name.StartsWith(ConfineSection + ".", StringComparison.Ordinal))
            {
                string part = name[(ConfineSection.Length + 1)..];
                if (ConfineParser.Parts.Contains(part))
                {
                    foreach (KeyValueSyntax kv in table.Items)
                        confine.Key(kv, part, line);
                }
                else
                    confine.UnknownPart(part, line);
                continue;
            }
            if (name == ConfineSection)
            {
                errors.Add(new PolicyError(file, line, $"[{name}]", $"write [[{ConfineSection}]]: a policy may have many"));
                continue;
            }
            if (!Sections.Contains(name))
            {
                errors.Add(new PolicyError(file, line, $"[{name}]", $"unknown section (known: {string.Join(", ", Sections)})"));
                continue;
            }
            foreach (KeyValueSyntax kv in table.Items)
                builder.InSection(name, kv);
        }
        List<ConfineSection> sections = confine.Build();
        // Each error once, in the order of the file.
        List<PolicyError> found = [.. errors.Skip(first).Distinct().OrderBy(e => e.Line)];
        errors.RemoveRange(first, errors.Count - first);
        errors.AddRange(found);
        Policy policy = builder.Build();
        return policy with { Confine = [.. basis?.Confine ?? [], .. sections] };
    }

    internal static string KeyText(KeySyntax key)
    {
        var parts = new List<string> { Part(key.Key) };
        foreach (DottedKeyItemSyntax dotted in key.DotKeys)
            parts.Add(Part(dotted.Key));
        return string.Join('.', parts);
    }

    private static string Part(BareKeyOrStringValueSyntax? part) => part switch
    {
        BareKeySyntax bare => bare.Key?.Text ?? "",
        StringValueSyntax quoted => quoted.Value ?? "",
        _ => "",
    };

    private sealed class Builder(string file, Policy? basis, List<PolicyError> errors)
    {
        private readonly Dictionary<string, int> seen = [];
        private PolicyMode mode = basis?.Mode ?? PolicyMode.Enforce;
        private IReadOnlyList<string> roots = basis?.Jobs.Roots ?? [];
        private IReadOnlyList<string> services = basis?.Jobs.Services ?? [];
        private IReadOnlyList<string> units = basis?.Jobs.Units ?? [];
        private IReadOnlyList<string> executables = basis?.Allow.Executables ?? [];
        private IReadOnlyList<string> hashes = basis?.Allow.Hashes ?? [];
        private IReadOnlyList<string> users = basis?.Allow.Users ?? [];
        private IReadOnlyList<string> jobs = basis?.Allow.Jobs ?? [];
        private IReadOnlyList<string> destinations = basis?.Allow.Destinations ?? [];
        private IReadOnlyList<string> minerNames = basis?.Indicators.MinerNames ?? [];
        private IReadOnlyList<string> minerNamesInJobs = basis?.Indicators.MinerNamesInJobs ?? [];
        private IReadOnlyList<string> minerArguments = basis?.Indicators.MinerArguments ?? [];
        private IReadOnlyList<string> minerArgumentsWeak = basis?.Indicators.MinerArgumentsWeak ?? [];
        private IReadOnlyList<string> minerHashes = basis?.Indicators.MinerHashes ?? [];
        private IReadOnlyList<int> poolPorts = basis?.Indicators.PoolPorts ?? [];
        private IReadOnlyList<string> poolDomains = basis?.Indicators.PoolDomains ?? [];
        private IReadOnlyList<string> stratumMethods = basis?.Indicators.StratumMethods ?? [];
        private int randomxSwitches = basis?.Thresholds.RandomxRoundingSwitches ?? 200;
        private int randomxWindow = basis?.Thresholds.RandomxWindowSeconds ?? 10;
        private int randomxModes = basis?.Thresholds.RandomxDistinctModes ?? GuardRounding.Modes;
        private int randomxSamplingHz = basis?.Thresholds.RandomxSamplingHz ?? Thresholds.DefaultRandomxSamplingHz;
        private int gpuBusyPercent = basis?.Thresholds.GpuBusyPercent ?? 50;
        private int gpuBusySeconds = basis?.Thresholds.GpuBusySeconds ?? 30;
        private int quarantineMinutes = basis?.Quarantine.TimeoutMinutes ?? 0;
        private bool killOnTimeout = basis?.Quarantine.KillOnTimeout ?? false;
        private readonly Dictionary<string, RuleAction> rules = basis is null ? [] : new(basis.Rules);

        public Policy Build()
        {
            // Checked once both lists are known: either may come first, or from the basis.
            foreach (string unit in units)
            {
                if (services.Contains(UnitStem(unit)))
                    Error(seen.GetValueOrDefault("jobs.units", seen.GetValueOrDefault("jobs.services")), "jobs.units", $"\"{unit}\" is a GPU service (jobs.services): never a job");
            }
            return new Policy(
                mode,
                new JobPolicy(roots, services) { Units = units },
                new AllowList(executables, hashes, users, jobs, destinations),
                new Indicators(minerNames, minerNamesInJobs, minerArguments, minerArgumentsWeak, minerHashes, poolPorts, poolDomains, stratumMethods),
                new Thresholds(randomxSwitches, randomxWindow) { RandomxDistinctModes = randomxModes, RandomxSamplingHz = randomxSamplingHz, GpuBusyPercent = gpuBusyPercent, GpuBusySeconds = gpuBusySeconds },
                rules,
                [.. basis?.Sources ?? [], file])
            {
                Quarantine = new QuarantinePolicy(quarantineMinutes, killOnTimeout),
            };
        }

        public void Top(KeyValueSyntax kv)
        {
            (string key, int line) = Where(kv, null);
            // A missing value is a syntax error, reported as such.
            if (!FirstTime(key, line) || kv.Value is null)
                return;
            if (key != "mode")
            {
                Error(line, key, "unknown key (known at the top: mode; sections: " + string.Join(", ", Sections) + ")");
                return;
            }
            if (Text(kv, key, line) is not { } value)
                return;
            if (value is "enforce" or "audit")
                mode = value == "enforce" ? PolicyMode.Enforce : PolicyMode.Audit;
            else
                Error(line, key, $"\"{value}\" is not a mode (enforce, audit)");
        }

        public void InSection(string section, KeyValueSyntax kv)
        {
            (string key, int line) = Where(kv, section);
            if (!FirstTime(key, line) || kv.Value is null)
                return;
            string name = key[(section.Length + 1)..];
            switch (section, name)
            {
                case ("jobs", "roots"): roots = Strings(kv, key, line, NotEmpty) ?? roots; break;
                case ("jobs", "services"): services = Strings(kv, key, line, NotEmpty) ?? services; break;
                case ("jobs", "units"): units = Strings(kv, key, line, Unit) ?? units; break;
                case ("allow", "executables"): executables = Strings(kv, key, line, AbsolutePath) ?? executables; break;
                case ("allow", "hashes"): hashes = Strings(kv, key, line, Sha256) ?? hashes; break;
                case ("allow", "users"): users = Strings(kv, key, line, NotEmpty) ?? users; break;
                case ("allow", "jobs"): jobs = Strings(kv, key, line, NotEmpty) ?? jobs; break;
                case ("allow", "destinations"): destinations = Strings(kv, key, line, Destination) ?? destinations; break;
                case ("indicators", "miner_names"): minerNames = Strings(kv, key, line, MinerNamePattern.Problem) ?? minerNames; break;
                case ("indicators", "miner_names_in_jobs"): minerNamesInJobs = Strings(kv, key, line, MinerNamePattern.Problem) ?? minerNamesInJobs; break;
                case ("indicators", "miner_arguments"): minerArguments = Strings(kv, key, line, NotEmpty) ?? minerArguments; break;
                case ("indicators", "miner_arguments_weak"): minerArgumentsWeak = Strings(kv, key, line, NotEmpty) ?? minerArgumentsWeak; break;
                case ("indicators", "miner_hashes"): minerHashes = Strings(kv, key, line, Sha256) ?? minerHashes; break;
                case ("indicators", "pool_ports"): poolPorts = Ports(kv, key, line) ?? poolPorts; break;
                case ("indicators", "pool_domains"): poolDomains = Strings(kv, key, line, Domain) ?? poolDomains; break;
                case ("indicators", "stratum_methods"): stratumMethods = Strings(kv, key, line, StratumMethod) ?? stratumMethods; break;
                case ("thresholds", "randomx_rounding_switches"): randomxSwitches = Positive(kv, key, line) ?? randomxSwitches; break;
                case ("thresholds", "randomx_window_seconds"): randomxWindow = Positive(kv, key, line) ?? randomxWindow; break;
                case ("thresholds", "randomx_distinct_modes"): randomxModes = RoundingModeCount(kv, key, line) ?? randomxModes; break;
                case ("thresholds", "randomx_sampling_hz"): randomxSamplingHz = SamplingHz(kv, key, line) ?? randomxSamplingHz; break;
                case ("thresholds", "gpu_busy_percent"): gpuBusyPercent = Positive(kv, key, line) is int percent and <= 100 ? percent : Percent(line, key, gpuBusyPercent); break;
                case ("thresholds", "gpu_busy_seconds"): gpuBusySeconds = Positive(kv, key, line) ?? gpuBusySeconds; break;
                case ("quarantine", "timeout_minutes"): quarantineMinutes = NonNegative(kv, key, line) ?? quarantineMinutes; break;
                case ("quarantine", "on_timeout"): killOnTimeout = OnTimeout(kv, key, line) ?? killOnTimeout; break;
                case ("rules", _): Rule(kv, key, name, line); break;
                default: Error(line, key, $"unknown key in [{section}]"); break;
            }
        }

        private void Rule(KeyValueSyntax kv, string key, string name, int line)
        {
            if (Detectors.Find(name) is not { } detector)
            {
                Error(line, key, $"unknown rule (known: {string.Join(", ", Detectors.All.Select(d => d.Name))})");
                return;
            }
            if (Text(kv, key, line) is not { } value)
                return;
            RuleAction? action = value switch
            {
                "off" => RuleAction.Off,
                "alert" => RuleAction.Alert,
                "kill" => RuleAction.Kill,
                "kill-job" => RuleAction.KillJob,
                "quarantine-job" => RuleAction.QuarantineJob,
                _ => null,
            };
            if (action is null)
                Error(line, key, $"\"{value}\" is not an action (alert, kill, kill-job, quarantine-job, off)");
            else if (!detector.Strong && action is not (RuleAction.Alert or RuleAction.Off))
                Error(line, key, $"{name} is weak evidence ({detector.Evidence}): it may only alert, never {value}");
            else
                rules[name] = action.Value;
        }

        private static (string Key, int Line) Where(KeyValueSyntax kv, string? section)
        {
            string key = kv.Key is { } k ? KeyText(k) : "";
            return (section is null ? key : $"{section}.{key}", kv.Span.Start.Line + 1);
        }

        private bool FirstTime(string key, int line)
        {
            if (seen.TryGetValue(key, out int first))
            {
                Error(line, key, $"set twice (first on line {first})");
                return false;
            }
            seen[key] = line;
            return true;
        }

        private string? Text(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is StringValueSyntax { Value: { } text })
                return text;
            Error(line, key, "expected a string");
            return null;
        }

        private int Percent(int line, string key, int keep)
        {
            if (!errors.Any(e => e.Line == line && e.Key == key))
                Error(line, key, "expected a percentage, 1 to 100");
            return keep;
        }

        private bool? OnTimeout(KeyValueSyntax kv, string key, int line)
        {
            string? value = Text(kv, key, line);
            if (value is "kill" or "release")
                return value == "kill";
            if (value is not null)
                Error(line, key, $"\"{value}\" is not what a timeout does (kill, release)");
            return null;
        }

        private int? NonNegative(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is IntegerValueSyntax { Value: >= 0 and <= int.MaxValue } n)
                return (int)n.Value;
            Error(line, key, "expected a whole number, 0 or more");
            return null;
        }

        private int? RoundingModeCount(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is IntegerValueSyntax { Value: >= 1 and <= GuardRounding.Modes } n)
                return (int)n.Value;
            Error(line, key, $"expected 1 to {GuardRounding.Modes}: how many of the non-default rounding modes (down, up, toward zero)");
            return null;
        }

        private int? SamplingHz(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is IntegerValueSyntax { Value: >= 0 and <= Thresholds.MaxRandomxSamplingHz } n)
                return (int)n.Value;
            Error(line, key, $"expected 0 to {Thresholds.MaxRandomxSamplingHz}: switches a second forced on each CPU (0: none)");
            return null;
        }

        private int? Positive(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is IntegerValueSyntax integer && integer.Value is > 0 and <= int.MaxValue)
                return (int)integer.Value;
            Error(line, key, "expected a positive integer");
            return null;
        }

        private List<string>? Strings(KeyValueSyntax kv, string key, int line, Func<string, string?> check) => TomlStrings.Read(kv, key, line, check, Error);

        private List<int>? Ports(KeyValueSyntax kv, string key, int line)
        {
            if (kv.Value is not ArraySyntax array)
            {
                Error(line, key, "expected a list of port numbers");
                return null;
            }
            var ports = new List<int>();
            bool ok = true;
            foreach (ArrayItemSyntax item in array.Items)
            {
                if (item.Value is IntegerValueSyntax { Value: >= 1 and <= 65535 } port)
                {
                    ports.Add((int)port.Value);
                    continue;
                }
                Error(item.Span.Start.Line + 1, key, "expected port numbers from 1 to 65535");
                ok = false;
            }
            return ok ? ports : null;
        }

        private void Error(int line, string key, string reason) => errors.Add(new PolicyError(file, line, key, reason));

        private static string? NotEmpty(string s) => s.Length == 0 ? "must not be empty" : null;

        /// <summary>A method as the kernel compares it (bpf/stream.h method_char, GUARD_METHOD_LEN): only a value's leading run of these characters is ever compared.</summary>
        private static string? StratumMethod(string s) =>
            s.Length == 0 ? "must not be empty"
            : !s.All(c => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '_') ? "must be letters, digits, '.' and '_' (a method is compared up to its first other character)"
            : s.Length >= GuardMethod.Capacity ? $"must be at most {GuardMethod.Capacity - 1} characters"
            : null;

        private static readonly string[] UnitSuffixes = [".service", ".scope", ".slice"];

        /// <summary>A systemd unit's cgroup name, as the kernel judges it: bpf/guard.h GUARD_CGROUP_NAME_LEN.</summary>
        private static string? Unit(string s) =>
            !UnitSuffixes.Any(suffix => s.Length > suffix.Length && s.EndsWith(suffix, StringComparison.Ordinal)) ? "must be a systemd unit: NAME.service, NAME.scope or NAME.slice"
            : s.Contains('/', StringComparison.Ordinal) ? "must be a unit's name, not a path"
            : System.Text.Encoding.UTF8.GetByteCount(s) >= GuardCgroupName.Capacity - 1 ? $"must be at most {GuardCgroupName.Capacity - 2} bytes (longer cgroup names are never read as jobs)"
            : null;

        private static string UnitStem(string unit) => unit[..unit.LastIndexOf('.')];

        private static string? AbsolutePath(string s) => s.StartsWith('/') ? null : "must be an absolute path";

        private static string? Sha256(string s) =>
            s.Length == 64 && s.All(char.IsAsciiHexDigit) ? null : "must be a SHA-256 in hex (64 digits)";

        private static string? Domain(string s) =>
            s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-') && !s.StartsWith('.') ? null : "must be a host name or suffix (letters, digits, '.', '-')";

        private static string? Destination(string s)
        {
            string address = s;
            if (s.StartsWith('['))
            {
                int close = s.IndexOf(']', StringComparison.Ordinal);
                if (close < 0 || (close + 1 < s.Length && !PortSuffix(s[(close + 1)..])))
                    return "must be ADDRESS[/PREFIX][:PORT], IPv6 in brackets when a port follows";
                address = s[1..close];
            }
            else if (s.Count(c => c == ':') == 1)
            {
                int colon = s.IndexOf(':', StringComparison.Ordinal);
                if (!PortSuffix(s[colon..]))
                    return "has a port that is not 1-65535";
                address = s[..colon];
            }
            else if (s.Contains(':', StringComparison.Ordinal) && ConfineParser.UnbracketedIpv6Port(s) is { } ambiguous)
                return ambiguous;
            string[] cidr = address.Split('/');
            // .NET reads "443" as 0.0.1.187, "10.0.0" as 10.0.0.0 and 010.0.0.1 as 8.0.0.1: an IPv4 address is four decimal numbers here.
            if (!cidr[0].Contains(':', StringComparison.Ordinal) && (cidr[0].Count(c => c == '.') != 3 || ConfineParser.Ipv4Problem(cidr[0]) is not null))
                return ConfineParser.Ipv4Problem(cidr[0]) is { } v4 && cidr[0].Count(c => c == '.') == 3 ? v4 : "must be ADDRESS[/PREFIX][:PORT], IPv4 as four numbers (10.0.0.1)";
            if (cidr[0].Contains('%', StringComparison.Ordinal) || !IPAddress.TryParse(cidr[0], out IPAddress? ip))
                return "must be ADDRESS[/PREFIX][:PORT]";
            int maxPrefix = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
            if (cidr.Length == 2 && (!int.TryParse(cidr[1], NumberStyles.None, CultureInfo.InvariantCulture, out int prefix) || prefix > maxPrefix))
                return $"has a prefix that is not 0-{maxPrefix}";
            return cidr.Length > 2 ? "must be ADDRESS[/PREFIX][:PORT]" : null;
        }

        private static bool PortSuffix(string s) =>
            s.Length > 1 && s[0] == ':' && int.TryParse(s[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535;
    }
}
