using System.CommandLine;
using System.CommandLine.Completions;

namespace Guard.Cli;

/// <summary>
/// The visible commands of the parser, walked once, for what is written from
/// them (shell completion, the man page): whatever a command gains in the
/// parser appears there without a second list to keep in step.
/// </summary>
public static class CommandTree
{
    /// <summary>One visible command: its words after "guard" ("policy check"; "" for the root), its options (inherited ones included) and arguments.</summary>
    public sealed record Node(string Path, Command Command, IReadOnlyList<Option> Options, IReadOnlyList<Argument> Arguments)
    {
        /// <summary>The visible subcommands' names.</summary>
        public IEnumerable<Command> Subcommands => Command.Subcommands.Where(c => !c.Hidden);
    }

    /// <summary>Every visible command under <paramref name="root"/>, the root first, parents before children.</summary>
    public static IReadOnlyList<Node> Walk(RootCommand root)
    {
        var nodes = new List<Node>();
        Visit(root, "", [], nodes);
        return nodes;
    }

    /// <summary>The values an option accepts when it names them (AcceptOnlyFromAmong); empty for a free value.</summary>
    public static IReadOnlyList<string> Choices(Option option) =>
        [.. option.GetCompletions(CompletionContext.Empty).Select(c => c.Label)];

    /// <summary>The values an argument accepts when it names them; empty for a free value.</summary>
    public static IReadOnlyList<string> Choices(Argument argument) =>
        [.. argument.GetCompletions(CompletionContext.Empty).Select(c => c.Label)];

    /// <summary>Whether the option takes no value (a flag).</summary>
    public static bool IsFlag(Option option) => option.Arity.MaximumNumberOfValues == 0 || option.ValueType == typeof(bool);

    private static void Visit(Command command, string path, IReadOnlyList<Option> inherited, List<Node> nodes)
    {
        List<Option> options = [.. command.Options.Where(o => !o.Hidden)];
        foreach (Option option in inherited)
        {
            if (!options.Any(o => o.Name == option.Name))
                options.Add(option);
        }
        nodes.Add(new Node(path, command, options, [.. command.Arguments.Where(a => !a.Hidden)]));
        IReadOnlyList<Option> passedOn = [.. options.Where(o => o.Recursive)];
        foreach (Command sub in command.Subcommands.Where(c => !c.Hidden))
            Visit(sub, path.Length == 0 ? sub.Name : $"{path} {sub.Name}", passedOn, nodes);
    }

    /// <summary>The option's names, the long one first.</summary>
    public static IEnumerable<string> Names(Option option) => new[] { option.Name }.Concat(option.Aliases.Order(StringComparer.Ordinal));
}
