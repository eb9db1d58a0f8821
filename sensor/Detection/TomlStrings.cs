using Tomlyn.Syntax;

namespace Guard.Sensor.Detection;

/// <summary>A TOML list of strings, each checked, as the policy and its [[confine]] sections read them.</summary>
internal static class TomlStrings
{
    /// <summary>
    /// The strings of <paramref name="kv"/>'s list, each passed through <paramref name="check"/>
    /// (a reason, or null when it is fine); each problem is told to <paramref name="error"/> as
    /// (line, key, reason), the value quoted before it unless <paramref name="quoteValue"/> is false
    /// (the reason names it itself), and the list is null when there was any. Items that are not
    /// strings are one error, at the first of them.
    /// </summary>
    public static List<string>? Read(KeyValueSyntax kv, string key, int line, Func<string, string?> check, Action<int, string, string> error, bool quoteValue = true)
    {
        if (kv.Value is not ArraySyntax array)
        {
            error(line, key, "expected a list of strings");
            return null;
        }
        var values = new List<string>();
        bool ok = true, notStrings = false;
        foreach (ArrayItemSyntax item in array.Items)
        {
            int itemLine = item.Span.Start.Line + 1;
            if (item.Value is not StringValueSyntax { Value: { } text })
            {
                if (!notStrings)
                    error(itemLine, key, $"expected a list of strings, but {OneLine(item.Value?.ToString() ?? "")} is not one (a string is quoted: \"...\")");
                notStrings = true;
                ok = false;
                continue;
            }
            if (check(text) is { } problem)
            {
                error(itemLine, key, quoteValue ? $"\"{text}\": {problem}" : problem);
                ok = false;
                continue;
            }
            values.Add(text);
        }
        return ok ? values : null;
    }

    /// <summary>A value's source text on one line, at most 40 characters: an error is one line whatever the value spans.</summary>
    private static string OneLine(string text)
    {
        string flat = string.Join(' ', text.Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
        return flat.Length <= 40 ? flat : flat[..37] + "...";
    }
}
