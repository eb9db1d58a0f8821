using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace Guard.Cli;

/// <summary>
/// Turns System.CommandLine's parse errors into the one line a person needs:
/// which word was not understood, and the command or option nearest to it.
/// </summary>
public static partial class UsageErrors
{
    /// <summary>Farthest (in edits) a word may be from a name and still be offered as what was meant.</summary>
    private const int MaxSuggestionDistance = 2;

    /// <summary>
    /// `guard help [COMMAND...]` is `guard [COMMAND...] --help`; every other
    /// argument list is returned as it is.
    /// </summary>
    public static string[] Rewrite(string[] args) =>
        args is ["help", .. var rest] ? [.. rest, "--help"] : args;

    /// <summary>The first problem with <paramref name="parse"/>, as one line without the "guard: " prefix.</summary>
    public static string Describe(ParseResult parse)
    {
        Command command = parse.CommandResult.Command;
        string name = CommandPath(parse.CommandResult);
        // `guard kill -9 PID` binds -9 as the PID and leaves PID over: look at every word.
        if (command.Name == "kill" && parse.Tokens.FirstOrDefault(t => SignalFlag().IsMatch(t.Value)) is { } signal)
            return $"guard kill always sends SIGKILL (through a pidfd); leave '{signal.Value}' out";
        // `guard kill --pid 4242`: an option the command lacks is taken as its argument, and the number left over.
        if (parse.Tokens.FirstOrDefault(t => t.Type == TokenType.Argument && t.Value.StartsWith("--", StringComparison.Ordinal) && t.Value.Length > 2) is { } stray
            && !command.Options.Any(o => o.Name == stray.Value || o.Aliases.Contains(stray.Value)))
        {
            IEnumerable<string> known = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name));
            return Nearest(stray.Value, known) is { } meant
                ? $"unknown option '{stray.Value}' for '{name}'; did you mean '{meant}'?"
                : $"unknown option '{stray.Value}' for '{name}' (see '{name} --help')";
        }
        if (parse.UnmatchedTokens is [{ } word, ..])
        {
            if (word.StartsWith('-'))
            {
                IEnumerable<string> options = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name));
                return Nearest(word, options) is { } option
                    ? $"unknown option '{word}' for '{name}'; did you mean '{option}'?"
                    : $"unknown option '{word}' for '{name}' (see '{name} --help')";
            }
            if (command.Subcommands.Count > 0)
            {
                IEnumerable<string> commands = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
                return Nearest(word, commands) is { } nearest
                    ? $"'{word}' is not a {name} command; did you mean '{nearest}'?"
                    : $"'{word}' is not a {name} command (commands: {string.Join(", ", commands)})";
            }
            return $"unexpected argument '{word}' for '{name}' (see '{name} --help')";
        }
        if (command.Subcommands.Count > 0 && !parse.CommandResult.Children.Any())
            return $"no command given to '{name}' (commands: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))})";
        ParseError first = parse.Errors[0];
        // One line: System.CommandLine lists allowed values one to a line.
        string message = string.Join(' ', first.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        string? optionName = first.SymbolResult switch
        {
            OptionResult o => o.Option.Name,
            ArgumentResult { Parent: OptionResult o } => o.Option.Name,
            _ => null,
        };
        // "Argument 'x' not recognized. Must be one of: 'a' 'b'" says neither which option nor in the words the others use.
        if (NotAmong().Match(message) is { Success: true } m)
            return $"{optionName ?? "argument"}: '{m.Groups[1].Value}' is not one of {string.Join(", ", m.Groups[2].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(v => v.Trim('\'')))}";
        return optionName is not null && !message.Contains(optionName, StringComparison.Ordinal) ? $"{optionName}: {message}" : message;
    }

    [GeneratedRegex("^Argument '(.*)' not recognized\\. Must be one of: (.*)$")]
    private static partial Regex NotAmong();

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c; r = c.Parent)
            names.Insert(0, c.Command is RootCommand ? "guard" : c.Command.Name);
        return string.Join(' ', names);
    }

    /// <summary>
    /// The name <paramref name="word"/> begins (dashes aside: "-v" is "--version"
    /// cut short), else the nearest within <see cref="MaxSuggestionDistance"/>
    /// edits, else null.
    /// </summary>
    private static string? Nearest(string word, IEnumerable<string> names)
    {
        string bare = word.TrimStart('-');
        List<string> candidates = [.. names.Where(n => n.Length > 0 && n[0] != '/')];
        return candidates.Where(n => bare.Length > 0 && n.TrimStart('-').StartsWith(bare, StringComparison.Ordinal)).MinBy(n => n.Length)
            ?? candidates.Select(n => (Name: n, Distance: EditDistance(bare, n.TrimStart('-'))))
                .Where(x => x.Distance <= MaxSuggestionDistance)
                .OrderBy(x => x.Distance)
                .Select(x => x.Name)
                .FirstOrDefault();
    }

    /// <summary>
    /// Levenshtein distance. Written here because System.CommandLine keeps its
    /// own suggestion code internal and no other library the CLI carries has one.
    /// </summary>
    internal static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>kill(1)'s ways of naming a signal: -9, -KILL, -SIGKILL, -s KILL's -s.</summary>
    [GeneratedRegex("^-([0-9]+|(SIG)?[A-Z]+[0-9]*|s)$")]
    private static partial Regex SignalFlag();
}
