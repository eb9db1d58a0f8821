using System.CommandLine;
using System.Text;

namespace Guard.Cli;

/// <summary>
/// Bash and zsh completion scripts written from the parser's command tree
/// (<see cref="CommandTree"/>): subcommands, options, and the values an option
/// names; a free value completes file names. The package installs them; a
/// person without it runs `guard completion bash`.
/// </summary>
public static class ShellCompletion
{
    private static readonly string[] FileWords = ["policy", "config", "file", "log", "path"];

    /// <summary>The shells a script is written for.</summary>
    public static readonly string[] Shells = ["bash", "zsh"];

    /// <summary>The script for <paramref name="shell"/> (one of <see cref="Shells"/>).</summary>
    /// <exception cref="ArgumentException">Another shell.</exception>
    public static string Write(string shell, RootCommand root) => shell switch
    {
        "bash" => Bash(CommandTree.Walk(root)),
        "zsh" => Zsh(CommandTree.Walk(root)),
        _ => throw new ArgumentException($"no completion for shell '{shell}'", nameof(shell)),
    };

    private static string Bash(IReadOnlyList<CommandTree.Node> nodes)
    {
        var s = new StringBuilder();
        s.Append("# bash completion for guard, written by `guard completion bash` from its command tree.\n");
        s.Append("_guard()\n{\n");
        s.Append("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd='' i\n");
        // The command is the words that name subcommands; options and their values in between are passed over.
        s.Append("    for ((i = 1; i < COMP_CWORD; i++)); do\n        case \"$cmd/${COMP_WORDS[i]}\" in\n");
        foreach (CommandTree.Node n in nodes.Skip(1))
            s.Append("            ").Append(Quote(Key(n.Path))).Append(") cmd=").Append(Quote(Key(n.Path))).Append(" ;;\n");
        s.Append("        esac\n    done\n");
        s.Append("    case \"$cmd $prev\" in\n");
        foreach (CommandTree.Node n in nodes)
        {
            foreach (Option o in n.Options.Where(o => !CommandTree.IsFlag(o)))
            {
                IReadOnlyList<string> choices = CommandTree.Choices(o);
                string reply = choices.Count > 0
                    ? $"COMPREPLY=($(compgen -W {Quote(string.Join(' ', choices))} -- \"$cur\"))"
                    : TakesFile(o) ? "COMPREPLY=($(compgen -f -- \"$cur\"))" : "COMPREPLY=()";
                string patterns = string.Join('|', CommandTree.Names(o).Where(IsDashed).Select(name => Quote($"{Key(n.Path)} {name}")));
                s.Append("        ").Append(patterns).Append(") ").Append(reply).Append("; return ;;\n");
            }
        }
        s.Append("    esac\n    local words\n    case \"$cmd\" in\n");
        foreach (CommandTree.Node n in nodes)
        {
            IEnumerable<string> words = n.Subcommands.Select(c => c.Name).Concat(n.Arguments.SelectMany(CommandTree.Choices)).Concat(n.Options.SelectMany(CommandTree.Names).Where(IsDashed));
            s.Append("        ").Append(Quote(Key(n.Path))).Append(") words=").Append(Quote(string.Join(' ', words))).Append(" ;;\n");
        }
        s.Append("    esac\n");
        s.Append("    if [[ $cur == -* ]] || [[ -n $words && $words != -* ]]; then\n");
        s.Append("        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n");
        s.Append("    fi\n");
        s.Append("    [[ ${#COMPREPLY[@]} -gt 0 || $cur == -* ]] || COMPREPLY=($(compgen -f -- \"$cur\"))\n");
        s.Append("}\ncomplete -F _guard guard\n");
        return s.ToString();
    }

    private static string Zsh(IReadOnlyList<CommandTree.Node> nodes)
    {
        var s = new StringBuilder();
        s.Append("#compdef guard\n# zsh completion for guard, written by `guard completion zsh` from its command tree.\n");
        s.Append("_guard() {\n    local cmd='' i n=1\n");
        s.Append("    for ((i = 2; i < CURRENT; i++)); do\n        case \"$cmd/${words[i]}\" in\n");
        foreach (CommandTree.Node n in nodes.Skip(1))
            s.Append("            ").Append(Quote(Key(n.Path))).Append(") cmd=").Append(Quote(Key(n.Path))).Append("; n=$i ;;\n");
        s.Append("        esac\n    done\n");
        // _arguments reads words from the command's own name on.
        s.Append("    shift $((n - 1)) words\n    (( CURRENT -= n - 1 ))\n");
        s.Append("    case \"$cmd\" in\n");
        foreach (CommandTree.Node n in nodes)
        {
            s.Append("        ").Append(Quote(Key(n.Path))).Append(")\n            _arguments -s");
            foreach (Option o in n.Options)
            {
                string[] names = [.. CommandTree.Names(o).Where(IsDashed)];
                string exclusive = names.Length > 1 ? $"({string.Join(' ', names)})" : "";
                string spec = CommandTree.IsFlag(o) ? ""
                    : CommandTree.Choices(o) is { Count: > 0 } choices ? $":value:({string.Join(' ', choices)})"
                    : TakesFile(o) ? ":value:_files" : ":value: ";
                string repeat = o.Arity.MaximumNumberOfValues > 1 ? "*" : "";
                foreach (string name in names)
                    s.Append(" \\\n                ").Append(Quote($"{repeat}{exclusive}{name}[{ZshText(o.Description)}]{spec}"));
            }
            if (n.Subcommands.Any())
            {
                s.Append(" \\\n                ").Append(Quote("1:command:->command")).Append(" \\\n                ").Append(Quote("*::arg:->done"));
                s.Append("\n            if [[ $state == command ]]; then\n                local -a commands=(");
                foreach (Command c in n.Subcommands)
                    s.Append(' ').Append(Quote($"{c.Name}:{c.Description}"));
                s.Append(" )\n                _describe command commands\n            fi ;;\n");
            }
            else
            {
                IReadOnlyList<string> choices = [.. n.Arguments.SelectMany(CommandTree.Choices)];
                string argument = choices.Count > 0 ? $"1:argument:({string.Join(' ', choices)})" : "*:argument:_files";
                s.Append(n.Arguments.Count > 0 ? $" \\\n                {Quote(argument)}" : "").Append(" ;;\n");
            }
        }
        s.Append("    esac\n}\n_guard \"$@\"\n");
        return s.ToString();
    }

    /// <summary>The command's key in the scripts' case labels: "/policy/check".</summary>
    private static string Key(string path) => path.Length == 0 ? "" : "/" + path.Replace(' ', '/');

    /// <summary>Whether the option's value is a file name (a policy, a config, a log): the others complete nothing rather than files.</summary>
    private static bool TakesFile(Option option) =>
        FileWords.Any(w => option.Name.Contains(w, StringComparison.Ordinal));

    /// <summary>A name a person types: "--output", "-o" (not "-?" or "/h", which are spelled for other platforms).</summary>
    private static bool IsDashed(string name) => name.Length > 1 && name[0] == '-' && (char.IsAsciiLetter(name[^1]) || name[^1] == '-' || char.IsAsciiDigit(name[^1]));

    /// <summary>A single-quoted shell word (bash and zsh read it the same way).</summary>
    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>A description inside an _arguments [..]: brackets and colons escaped, one line.</summary>
    private static string ZshText(string? text) =>
        (text ?? "").Replace('\n', ' ').Replace("\\", "\\\\", StringComparison.Ordinal).Replace("[", "\\[", StringComparison.Ordinal).Replace("]", "\\]", StringComparison.Ordinal).Replace(":", "\\:", StringComparison.Ordinal);
}
