using System.Text.RegularExpressions;
using Tomlyn.Syntax;

namespace Guard.Sensor.Detection;

/// <summary>
/// A policy file's TOML syntax error as a sysadmin reads it: the first one only
/// (after it the parser reads the rest out of step, so later ones are mostly its
/// echo), at the line of the key or table header being read, in words rather
/// than the parser's token names.
/// </summary>
internal static partial class TomlSyntaxError
{
    /// <summary>
    /// The first syntax error of <paramref name="doc"/> as file:line:key: reason, or
    /// null when it parsed. Redefinitions are left out: <see cref="PolicyParser"/> and
    /// <see cref="ConfineParser"/> report a key or table given twice themselves.
    /// </summary>
    public static PolicyError? First(DocumentSyntax doc, string file)
    {
        DiagnosticMessage? first = doc.Diagnostics
            .Where(d => d.Kind == DiagnosticMessageKind.Error && !IsRedefinition(d.Message))
            .OrderBy(d => d.Span.Start.Offset)
            .FirstOrDefault();
        if (first is null)
            return null;
        TextPosition at = first.Span.Start;
        (int line, string key, bool list) = Reading(doc, at);
        return new PolicyError(file, line, key, Words(first.Message ?? "", at.Line + 1, line, list));
    }

    /// <summary>Whether <paramref name="message"/> is Tomlyn's "The key `K` is already defined at ...".</summary>
    public static bool IsRedefinition(string? message) =>
        message is not null && message.StartsWith("The key `", StringComparison.Ordinal) && message.Contains("is already defined", StringComparison.Ordinal);

    /// <summary>
    /// What was being read at <paramref name="at"/>: the last key = value or table
    /// header that starts at or before it, as (its line, its key as errors name it,
    /// whether its value is a list); the error's own line and "-" when nothing does.
    /// </summary>
    private static (int Line, string Key, bool List) Reading(DocumentSyntax doc, TextPosition at)
    {
        (int Line, string Key, bool List) reading = (at.Line + 1, "-", false);
        void Consider(SyntaxNode node, string key, bool list)
        {
            if (node.Span.Start.Offset <= at.Offset)
                reading = (node.Span.Start.Line + 1, key, list);
        }
        foreach (KeyValueSyntax kv in doc.KeyValues)
            Consider(kv, KeyOf(kv), kv.Value is ArraySyntax);
        foreach (TableSyntaxBase table in doc.Tables)
        {
            string name = table.Name is { } n ? PolicyParser.KeyText(n) : "";
            Consider(table, table is TableArraySyntax ? $"[[{name}]]" : $"[{name}]", false);
            foreach (KeyValueSyntax kv in table.Items)
                Consider(kv, $"{name}.{KeyOf(kv)}", kv.Value is ArraySyntax);
        }
        return reading;
    }

    private static string KeyOf(KeyValueSyntax kv) => kv.Key is { } k ? PolicyParser.KeyText(k) : "";

    /// <summary>
    /// Tomlyn's message in a sysadmin's words. <paramref name="errorLine"/> is where
    /// the parser stopped, <paramref name="keyLine"/> the line of the key being read.
    /// </summary>
    internal static string Words(string message, int errorLine, int keyLine, bool list)
    {
        bool atEnd = message.Contains("<eof>", StringComparison.Ordinal) || message.Contains("Eof", StringComparison.Ordinal)
            || message.Contains("end-of-file", StringComparison.OrdinalIgnoreCase);
        string unclosedList = "the list is not closed: a ']' is missing" + (atEnd ? " (the file ends first)" : errorLine != keyLine ? $" (line {errorLine} starts something else)" : "");
        if (message.Contains("Expecting a closing `]` for an array", StringComparison.Ordinal) || message.Contains("while parsing array", StringComparison.Ordinal))
            return unclosedList;
        if (message.Contains("Missing a `,`", StringComparison.Ordinal))
            return list && errorLine != keyLine ? unclosedList : "a ',' is missing between two items of the list";
        if (message.Contains("Invalid newline in a string", StringComparison.Ordinal) || message.Contains("End-Of-File found on string", StringComparison.Ordinal))
            return "a string is not closed: its '\"' is missing before the end of the line";
        if (message.Contains("End-Of-File found for multi-line", StringComparison.Ordinal))
            return "a multi-line string is not closed: the file ends first";
        if (message.Contains("while expecting `]]`", StringComparison.Ordinal))
            return "the [[...]] header is not closed: ']]' is missing";
        if (message.Contains("Invalid table header", StringComparison.Ordinal) || message.Contains("after table header", StringComparison.Ordinal)
            || message.Contains("while expecting `]`", StringComparison.Ordinal))
            return "the [...] header is not closed, or has something after it on its line";
        if (message.Contains("Expecting `=` after a key", StringComparison.Ordinal) || message.Contains("Expected `=` after key", StringComparison.Ordinal))
            return "a '=' is missing after the key (key = value)";
        if (message.Contains("Unexpected token [=] found", StringComparison.Ordinal))
            return "a '=' with no key before it";
        if (message.Contains("while expecting a value", StringComparison.Ordinal))
            return "has no value after '='";
        if (message.Contains("while parsing inline table", StringComparison.Ordinal))
            return "an inline table { ... } is not closed, or holds something other than key = value pairs separated by ','";
        if (message.Contains("while expecting token `newline`", StringComparison.Ordinal) && Quoted(message) is { } extra)
            return $"'{extra}' after the value: one key = value a line (a string needs quotes)";
        if (message.Contains("for a value", StringComparison.Ordinal) && Quoted(message) is { } value)
            return $"'{value}' is not a value: a string needs quotes (\"...\"), a list brackets ([...])";
        if (EscapePattern().Match(message) is { Success: true } escape)
            return $"a string has the escape '\\{escape.Groups[1].Value}', which TOML does not know: write '\\\\' for a backslash, or use '...' (a literal string)";
        // Anything else: the parser's words, less its token names.
        string plain = TokenNamePattern().Replace(message, "").Replace("`<eof>`", "the end of the file", StringComparison.Ordinal)
            .Replace("␤", "the end of the line", StringComparison.Ordinal);
        return plain.Length > 0 && char.IsUpper(plain[0]) ? char.ToLowerInvariant(plain[0]) + plain[1..] : plain;
    }

    /// <summary>The first `...` of <paramref name="message"/> (what the parser met), or null.</summary>
    private static string? Quoted(string message)
    {
        Match m = QuotedPattern().Match(message);
        return m.Success && m.Groups[1].Value is { Length: > 0 } text && text != "␤" ? text : null;
    }

    [GeneratedRegex(@"\s*\(token: `?[^)]*`?\)")]
    private static partial Regex TokenNamePattern();

    [GeneratedRegex("`([^`]*)`")]
    private static partial Regex QuotedPattern();

    [GeneratedRegex(@"Unexpected escape character \[(.)\]")]
    private static partial Regex EscapePattern();
}
