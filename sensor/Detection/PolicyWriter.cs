using System.Globalization;
using System.Text;
using Guard.Sensor.Events;

namespace Guard.Sensor.Detection;

/// <summary>Prints a policy as TOML that reads back to the same policy (`guard policy show`).</summary>
public static class PolicyWriter
{
    public static string Write(Policy policy)
    {
        var toml = new StringBuilder();
        toml.AppendLine(CultureInfo.InvariantCulture, $"# Effective policy, from: {string.Join(" + ", policy.Sources)}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"mode = {Quote(policy.Mode == PolicyMode.Enforce ? "enforce" : "audit")}");
        Section(toml, "jobs", ("roots", policy.Jobs.Roots), ("services", policy.Jobs.Services), ("units", policy.Jobs.Units));
        Section(toml, "allow", ("executables", policy.Allow.Executables), ("hashes", policy.Allow.Hashes), ("users", policy.Allow.Users),
            ("jobs", policy.Allow.Jobs), ("destinations", policy.Allow.Destinations));
        Section(toml, "indicators", ("miner_names", policy.Indicators.MinerNames), ("miner_names_in_jobs", policy.Indicators.MinerNamesInJobs),
            ("miner_arguments", policy.Indicators.MinerArguments), ("miner_arguments_weak", policy.Indicators.MinerArgumentsWeak),
            ("miner_hashes", policy.Indicators.MinerHashes));
        toml.AppendLine(CultureInfo.InvariantCulture, $"pool_ports = [{string.Join(", ", policy.Indicators.PoolPorts)}]");
        List(toml, "pool_domains", policy.Indicators.PoolDomains);
        List(toml, "stratum_methods", policy.Indicators.StratumMethods);
        toml.AppendLine().AppendLine("[thresholds]");
        toml.AppendLine(CultureInfo.InvariantCulture, $"randomx_rounding_switches = {policy.Thresholds.RandomxRoundingSwitches}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"randomx_window_seconds = {policy.Thresholds.RandomxWindowSeconds}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"randomx_distinct_modes = {policy.Thresholds.RandomxDistinctModes}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"randomx_sampling_hz = {policy.Thresholds.RandomxSamplingHz}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"gpu_busy_percent = {policy.Thresholds.GpuBusyPercent}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"gpu_busy_seconds = {policy.Thresholds.GpuBusySeconds}");
        toml.AppendLine().AppendLine("[quarantine]");
        toml.AppendLine(CultureInfo.InvariantCulture, $"timeout_minutes = {policy.Quarantine.TimeoutMinutes}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"on_timeout = {Quote(policy.Quarantine.KillOnTimeout ? "kill" : "release")}");
        toml.AppendLine().AppendLine("[rules]");
        foreach (Detector d in Detectors.All)
        {
            if (policy.Rules.TryGetValue(d.Name, out RuleAction action))
                toml.AppendLine(CultureInfo.InvariantCulture, $"{d.Name} = {Quote(ActionName(action))}");
        }
        foreach (ConfineSection c in policy.Confine)
            Confine(toml, c);
        return toml.ToString();
    }

    /// <summary>A [[confine]] section as it reads back: every list, each part under its own sub-table.</summary>
    private static void Confine(StringBuilder toml, ConfineSection c)
    {
        toml.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"# from {c.Source}").AppendLine("[[confine]]");
        toml.AppendLine(CultureInfo.InvariantCulture, $"name = {Quote(c.Name)}");
        toml.AppendLine(CultureInfo.InvariantCulture, $"mode = {Quote(ConfineModeName(c.Mode))}");
        if (c.Mode == ConfineMode.Ask)
            toml.AppendLine(CultureInfo.InvariantCulture, $"ask_expiry_seconds = {c.AskExpirySeconds}");
        foreach ((string key, IReadOnlyList<string> values) in new[] { ("jobs", c.Select.Jobs), ("launchers", c.Select.Launchers), ("users", c.Select.Users), ("groups", c.Select.Groups) })
        {
            if (values.Count > 0)
                List(toml, key, values);
        }
        if (c.Resolvers.Count > 0)
            List(toml, "resolvers", [.. c.Resolvers.Select(r => r.ToString())]);
        if (c.Egress is { } egress)
        {
            toml.AppendLine("[confine.egress]");
            List(toml, "allow", [.. egress.Addresses.Select(a => a.Text), .. egress.Names.Select(n => n.Text)]);
        }
        if (c.Exec is { } exec)
        {
            toml.AppendLine("[confine.exec]");
            List(toml, "deny", [.. exec.Deny.Select(r => r.Text)]);
            if (exec.Allow.Count > 0)
                List(toml, "allow", [.. exec.Allow.Select(r => r.Text)]);
        }
        if (c.Gpu is { } gpu)
            toml.AppendLine("[confine.gpu]").AppendLine(CultureInfo.InvariantCulture, $"devices = [{string.Join(", ", gpu.Devices)}]");
    }

    /// <summary>enforce, audit or ask, as a policy writes it.</summary>
    public static string ConfineModeName(ConfineMode mode) => mode switch
    {
        ConfineMode.Audit => "audit",
        ConfineMode.Ask => "ask",
        _ => "enforce",
    };

    public static string ActionName(RuleAction action) => action switch
    {
        RuleAction.Off => "off",
        RuleAction.Alert => "alert",
        RuleAction.Kill => "kill",
        RuleAction.KillJob => "kill-job",
        _ => "quarantine-job",
    };

    private static void Section(StringBuilder toml, string name, params (string Key, IReadOnlyList<string> Values)[] lists)
    {
        toml.AppendLine().AppendLine(CultureInfo.InvariantCulture, $"[{name}]");
        foreach ((string key, IReadOnlyList<string> values) in lists)
            List(toml, key, values);
    }

    private static void List(StringBuilder toml, string key, IReadOnlyList<string> values)
    {
        if (values.Count == 0)
        {
            toml.AppendLine(CultureInfo.InvariantCulture, $"{key} = []");
            return;
        }
        toml.AppendLine(CultureInfo.InvariantCulture, $"{key} = [");
        foreach (string v in values)
            toml.AppendLine(CultureInfo.InvariantCulture, $"  {Quote(v)},");
        toml.AppendLine("]");
    }

    private static string Quote(string value)
    {
        var quoted = new StringBuilder("\"");
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': quoted.Append("\\\""); break;
                case '\\': quoted.Append("\\\\"); break;
                case < ' ' or '\u007f': quoted.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"); break;
                default: quoted.Append(c); break;
            }
        }
        return quoted.Append('"').ToString();
    }
}
