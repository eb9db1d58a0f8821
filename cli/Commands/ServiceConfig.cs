using System.Globalization;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Guard.Cli.Commands;

/// <summary>One problem in the service configuration, where it is and what is wrong: file:line:key: reason, as the policy's are.</summary>
public sealed record ConfigError(string File, int Line, string Key, string Reason)
{
    public override string ToString() => $"{File}:{Line}:{Key}: {Reason}";
}

/// <summary>A service configuration that was refused; the message lists every error, one a line.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors) : base(string.Join("\n", errors)) => Errors = errors;

    public ConfigException() : this([]) { }

    public ConfigException(string message) : base(message) => Errors = [];

    public ConfigException(string message, Exception inner) : base(message, inner) => Errors = [];

    public IReadOnlyList<ConfigError> Errors { get; }
}

/// <summary>A setting read from the file, as text (an integer as its digits, a list as its items), and where it is.</summary>
/// <param name="Values">The value, or a list's items.</param>
/// <param name="File">The configuration file.</param>
/// <param name="Line">Its line, from 1.</param>
/// <param name="Key">Its full key (outputs.file.path).</param>
public sealed record ConfigValue(IReadOnlyList<string> Values, string File, int Line, string Key)
{
    /// <summary>A single value.</summary>
    public string Value => Values[0];

    /// <summary>file:line:key, to start an error line with.</summary>
    public string Where => $"{File}:{Line}:{Key}";
}

/// <summary>
/// The service configuration, /etc/guard/guard.toml: how `guard watch` runs
/// as a service (outputs, intervals, the policy's path), separate from the
/// policy. Every key stands for an option of `guard watch` (<see cref="Keys"/>);
/// an option given on the command line wins over the file. Read from Tomlyn's
/// syntax tree, as the policy is (AOT-safe, every value keeps its line).
/// </summary>
public sealed class ServiceConfig
{
    /// <summary>Where the service's configuration is when none is named.</summary>
    public const string SystemPath = "/etc/guard/guard.toml";

    /// <summary>The variable that names another file (tests, a second service).</summary>
    public const string PathVariable = "GUARD_CONFIG";

    private enum Kind
    {
        Text,
        TextOrInteger,
        List,
    }

    /// <summary>Each key the file takes, the `guard watch` option it stands for, and its TOML kind.</summary>
    private static readonly Dictionary<string, (string Option, Kind Kind)> Known = new()
    {
        ["policy"] = ("--policy", Kind.Text),
        ["ring_size"] = ("--ring-size", Kind.TextOrInteger),
        ["gpu_devices"] = ("--gpu-device", Kind.List),
        ["redact"] = ("--redact", Kind.List),
        ["types"] = ("--type", Kind.List),
        ["intervals.heartbeat"] = ("--heartbeat", Kind.Text),
        ["intervals.gpu_sample"] = ("--gpu-interval", Kind.Text),
        ["intervals.stall_limit"] = ("--stall-limit", Kind.Text),
        ["outputs.queue_size"] = ("--output-queue", Kind.TextOrInteger),
        ["outputs.stdout.format"] = ("--output", Kind.Text),
        ["outputs.file.path"] = ("--file", Kind.Text),
        ["outputs.file.max_size"] = ("--file-max-size", Kind.TextOrInteger),
        ["outputs.file.max_age"] = ("--file-max-age", Kind.Text),
        ["outputs.file.backups"] = ("--file-backups", Kind.TextOrInteger),
        ["outputs.syslog.address"] = ("--syslog", Kind.Text),
        ["outputs.syslog.facility"] = ("--syslog-facility", Kind.Text),
        ["metrics.address"] = ("--metrics", Kind.TextOrInteger),
        ["metrics.drop_alert_rate"] = ("--drop-alert-rate", Kind.TextOrInteger),
        ["access.group"] = ("--access-group", Kind.TextOrInteger),
    };

    /// <summary>Sections the file may have.</summary>
    private static readonly string[] Sections = ["intervals", "outputs", "outputs.stdout", "outputs.file", "outputs.syslog", "metrics", "access"];

    private readonly Dictionary<string, ConfigValue> values;

    private ServiceConfig(string path, Dictionary<string, ConfigValue> values)
    {
        Path = path;
        this.values = values;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>Every key, with the option it stands for: for the help and the README.</summary>
    public static IEnumerable<(string Key, string Option)> Keys => Known.Select(k => (k.Key, k.Value.Option));

    /// <summary>The setting for the option named <paramref name="option"/> (--heartbeat), or null when the file has none.</summary>
    public ConfigValue? For(string option) =>
        Known.FirstOrDefault(k => k.Value.Option == option).Key is { } key && values.TryGetValue(key, out ConfigValue? value) ? value : null;

    /// <summary>
    /// The configuration in force: <paramref name="path"/> when given, else
    /// GUARD_CONFIG when set (either must exist), else /etc/guard/guard.toml
    /// when it exists; null when there is none.
    /// </summary>
    /// <exception cref="ConfigException">The file cannot be read, or has errors (all of them).</exception>
    public static ServiceConfig? Load(string? path)
    {
        path ??= Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } named ? named : File.Exists(SystemPath) ? SystemPath : null;
        if (path is null)
            return null;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException([new ConfigError(path, 0, "-", $"cannot read the configuration: {Guard.Sensor.Detection.PolicyError.Unreadable(e)}")]);
        }
        return Parse(text, path);
    }

    /// <summary>Reads <paramref name="text"/> as the file <paramref name="file"/>.</summary>
    /// <exception cref="ConfigException">Every error found, sorted by line.</exception>
    public static ServiceConfig Parse(string text, string file)
    {
        DocumentSyntax doc = SyntaxParser.Parse(text, file, true);
        var errors = new List<ConfigError>();
        var values = new Dictionary<string, ConfigValue>();
        var keysOnLines = new Dictionary<int, string>();
        foreach (KeyValueSyntax kv in doc.KeyValues)
            Read("", kv, file, values, keysOnLines, errors);
        foreach (TableSyntaxBase table in doc.Tables)
        {
            string name = table.Name is { } n ? KeyText(n) : "";
            int line = table.Span.Start.Line + 1;
            if (table is TableArraySyntax)
            {
                errors.Add(new ConfigError(file, line, $"[[{name}]]", "arrays of tables are not part of the configuration"));
                continue;
            }
            if (!Sections.Contains(name))
            {
                errors.Add(new ConfigError(file, line, $"[{name}]", $"unknown section (known: {string.Join(", ", Sections)})"));
                continue;
            }
            foreach (KeyValueSyntax kv in table.Items)
                Read(name, kv, file, values, keysOnLines, errors);
        }
        foreach (DiagnosticMessage d in doc.Diagnostics)
        {
            if (d.Kind != DiagnosticMessageKind.Error)
                continue;
            int line = d.Span.Start.Line + 1;
            // The parser's word on a line stands alone: what was read of a broken line says less.
            errors.RemoveAll(e => e.Line == line && !e.Key.StartsWith('['));
            string key = keysOnLines.GetValueOrDefault(line, "-");
            errors.Add(new ConfigError(file, line, key, d.Message));
        }
        if (errors.Count > 0)
            throw new ConfigException([.. errors.OrderBy(e => e.Line)]);
        return new ServiceConfig(file, values);
    }

    private static void Read(string section, KeyValueSyntax kv, string file, Dictionary<string, ConfigValue> values, Dictionary<int, string> keysOnLines, List<ConfigError> errors)
    {
        if (kv.Key is null)
            return;
        string key = section.Length == 0 ? KeyText(kv.Key) : $"{section}.{KeyText(kv.Key)}";
        int line = kv.Span.Start.Line + 1;
        // Syntax errors carry no key: they are named by the key on their line.
        keysOnLines.TryAdd(line, key);
        // A missing value is a syntax error, reported as such.
        if (kv.Value is null)
            return;
        if (!Known.TryGetValue(key, out (string Option, Kind Kind) known))
        {
            string prefix = section.Length == 0 ? "" : section + ".";
            string[] here = [.. Known.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !k[prefix.Length..].Contains('.', StringComparison.Ordinal)).Select(k => k[prefix.Length..])];
            errors.Add(new ConfigError(file, line, key, $"unknown key (known {(section.Length == 0 ? "at the top" : $"in [{section}]")}: {string.Join(", ", here)}; sections: {string.Join(", ", Sections)})"));
            return;
        }
        if (values.TryGetValue(key, out ConfigValue? first))
        {
            errors.Add(new ConfigError(file, line, key, $"given twice (first on line {first.Line})"));
            return;
        }
        List<string>? texts = (known.Kind, kv.Value) switch
        {
            (Kind.Text or Kind.TextOrInteger, StringValueSyntax { Value: { } s }) => [s],
            (Kind.TextOrInteger, IntegerValueSyntax i) => [i.Value.ToString(CultureInfo.InvariantCulture)],
            (Kind.List, ArraySyntax array) => Strings(array),
            _ => null,
        };
        if (texts is null)
        {
            errors.Add(new ConfigError(file, line, key, known.Kind switch
            {
                Kind.Text => "expected a string",
                Kind.TextOrInteger => "expected a string or a whole number",
                _ => "expected a list of strings",
            }));
            return;
        }
        if (known.Kind != Kind.List && texts[0].Length == 0)
        {
            errors.Add(new ConfigError(file, line, key, "is empty; leave the key out for the default"));
            return;
        }
        values[key] = new ConfigValue(texts, file, line, key);
    }

    private static List<string>? Strings(ArraySyntax array)
    {
        var items = new List<string>();
        foreach (ArrayItemSyntax item in array.Items)
        {
            if (item.Value is not StringValueSyntax { Value: { } text })
                return null;
            items.Add(text);
        }
        return items;
    }

    private static string KeyText(KeySyntax key)
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
}
