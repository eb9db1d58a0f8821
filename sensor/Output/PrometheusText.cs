using System.Globalization;
using System.Text;

namespace Guard.Sensor.Output;

/// <summary>
/// Writes the Prometheus text exposition format, version 0.0.4
/// (prometheus.io/docs/instrumenting/exposition_formats): per metric family one
/// <c># HELP</c> and one <c># TYPE</c> line, then one line per sample,
/// <c>name{label="value",...} number</c>. Label values escape backslash, double
/// quote and line feed; HELP text escapes backslash and line feed. A family
/// with no samples still gets its HELP and TYPE lines, so a scraper sees what
/// exists before it first counts.
/// </summary>
public sealed class PrometheusText
{
    /// <summary>The Content-Type a scrape answer carries for this format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder text = new();
    private readonly HashSet<string> families = new(StringComparer.Ordinal);
    private string? current;

    /// <summary>What has been written so far.</summary>
    public override string ToString() => text.ToString();

    /// <summary>Starts a counter family (a value that only goes up; its name ends in _total by convention).</summary>
    /// <exception cref="ArgumentException">The name is not a metric name, or the family was started before.</exception>
    public PrometheusText Counter(string name, string help) => Family(name, help, "counter");

    /// <summary>Starts a gauge family (a value that goes up and down).</summary>
    /// <exception cref="ArgumentException">The name is not a metric name, or the family was started before.</exception>
    public PrometheusText Gauge(string name, string help) => Family(name, help, "gauge");

    /// <summary>A sample of the family last started, without labels.</summary>
    public PrometheusText Sample(double value) => Sample([], value);

    /// <summary>A sample of the family last started with one label.</summary>
    public PrometheusText Sample(string label, string labelValue, double value) => Sample([(label, labelValue)], value);

    /// <summary>A sample of the family last started with two labels.</summary>
    public PrometheusText Sample(string label1, string value1, string label2, string value2, double value) =>
        Sample([(label1, value1), (label2, value2)], value);

    /// <summary>A sample of the family last started, with its labels in the order given.</summary>
    /// <exception cref="InvalidOperationException">No family was started.</exception>
    /// <exception cref="ArgumentException">A label name is not a label name.</exception>
    public PrometheusText Sample(ReadOnlySpan<(string Name, string Value)> labels, double value)
    {
        string name = current ?? throw new InvalidOperationException("a sample needs a family: call Counter or Gauge first");
        text.Append(name);
        if (labels.Length > 0)
        {
            text.Append('{');
            for (int i = 0; i < labels.Length; i++)
            {
                if (!IsLabelName(labels[i].Name))
                    throw new ArgumentException($"'{labels[i].Name}' is not a Prometheus label name", nameof(labels));
                if (i > 0)
                    text.Append(',');
                text.Append(labels[i].Name).Append("=\"");
                AppendEscaped(labels[i].Value, escapeQuote: true);
                text.Append('"');
            }
            text.Append('}');
        }
        text.Append(' ').Append(Number(value)).Append('\n');
        return this;
    }

    /// <summary>A value as the format writes it: NaN, +Inf, -Inf, or the shortest round-trip decimal.</summary>
    public static string Number(double value) =>
        double.IsNaN(value) ? "NaN"
        : double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : value.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Whether <paramref name="name"/> is a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.</summary>
    public static bool IsMetricName(string name) => IsName(name, colon: true);

    /// <summary>Whether <paramref name="name"/> is a label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).</summary>
    public static bool IsLabelName(string name) => IsName(name, colon: false) && !name.StartsWith("__", StringComparison.Ordinal);

    private PrometheusText Family(string name, string help, string type)
    {
        if (!IsMetricName(name))
            throw new ArgumentException($"'{name}' is not a Prometheus metric name", nameof(name));
        if (!families.Add(name))
            throw new ArgumentException($"the family '{name}' was written already: its samples must stay together", nameof(name));
        current = name;
        text.Append("# HELP ").Append(name).Append(' ');
        AppendEscaped(help, escapeQuote: false);
        text.Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        return this;
    }

    private void AppendEscaped(string value, bool escapeQuote)
    {
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\':
                    text.Append("\\\\");
                    break;
                case '\n':
                    text.Append("\\n");
                    break;
                case '"' when escapeQuote:
                    text.Append("\\\"");
                    break;
                default:
                    text.Append(c);
                    break;
            }
        }
    }

    private static bool IsName(string name, bool colon)
    {
        if (name.Length == 0)
            return false;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (colon && c == ':') || (i > 0 && c is >= '0' and <= '9');
            if (!ok)
                return false;
        }
        return true;
    }
}
