using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace Guard.Cli;

/// <summary>
/// The "Examples:" section every `--help` page ends with: System.CommandLine
/// writes the rest, and this action adds the lines for the command asked about.
/// </summary>
public static class HelpExamples
{
    /// <summary>Example lines by command path after "guard" ("" for guard itself), each a command and, after "  # ", what it does.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> ByCommand = new Dictionary<string, string[]>
    {
        [""] =
        [
            "sudo guard watch                          # events on the terminal until Ctrl-C",
            "sudo guard status                         # holds, programs, sensors and recent actions",
            "guard help watch                          # a command's options and examples",
        ],
        ["watch"] =
        [
            "sudo guard watch                                   # readable lines on a terminal, JSON when piped",
            "sudo guard watch -o json --duration 1h30m --type exec,connect,dns",
            "sudo guard watch --job slurm:1234 --quiet          # one job, no start lines or summary",
            "sudo guard watch --config /etc/guard/guard.toml    # as the service runs",
        ],
        ["kill"] =
        [
            "sudo guard kill 4242                        # SIGKILL through a pidfd",
            "sudo guard kill fedfab4cc213-607320-4242    # an entity id from an event: a reused pid is refused",
            "sudo guard kill 4242 --tree                 # the process and every descendant",
            "sudo guard kill 4242 --job -o json          # its whole job; the action event as JSON",
        ],
        ["quarantine"] =
        [
            "sudo guard quarantine 4242 --reason 'odd GPU use'   # stop the tree, deny its network and GPUs",
            "sudo guard quarantine --job slurm:1234 --timeout 2h --then kill",
        ],
        ["release"] =
        [
            "sudo guard release 4242                 # the hold 4242 is in",
            "sudo guard release --job slurm:1234",
            "sudo guard release --all",
        ],
        ["status"] =
        [
            "guard status                            # root, or a member of the [access] group",
            "guard status -o json | jq .quarantined",
        ],
        ["gpu"] =
        [
            "guard gpu                               # each GPU, its processes, their jobs and verdicts",
            "guard gpu -o json | jq '.devices[].processes[]'",
            "guard gpu --watch --interval 2s",
        ],
        ["detach"] =
        [
            "sudo guard detach --all                 # stop every sensor, remove every Guard program and pin",
        ],
        ["confine"] =
        [
            "sudo guard confine show slurm:4242",
        ],
        ["confine show"] =
        [
            "sudo guard confine show slurm:4242                 # a Slurm job's section, allow list, resolvers, DNS allows",
            "sudo guard confine show k8s-pod:1f2e3d4c-0000-4000-8000-000000000000 --policy ./edit.toml",
        ],
        ["approvals"] =
        [
            "sudo guard approvals                    # pending requests of ask sections, approvals in force",
            "sudo guard approvals -o json | jq 'select(.state == \"pending\")'",
        ],
        ["approve"] =
        [
            "sudo guard approve k3xq7mzp2a4d --for 1h   # the destination or program, for that job, for an hour",
            "sudo guard approve k3xq7mzp2a4d            # for the job's life",
        ],
        ["deny"] =
        [
            "sudo guard deny k3xq7mzp2a4d",
        ],
        ["policy"] =
        [
            "guard policy check /etc/guard/policy.toml",
            "guard policy show",
            "sudo guard policy reload",
        ],
        ["policy check"] =
        [
            "guard policy check /etc/guard/policy.toml   # every error as file:line:key: reason",
        ],
        ["policy show"] =
        [
            "guard policy show                           # the built-in policy with /etc/guard/policy.toml over it",
            "guard policy show --policy ./edit.toml",
        ],
        ["policy reload"] =
        [
            "sudo guard policy reload                    # as SIGHUP: each running guard watch reads its policy again",
        ],
        ["version"] =
        [
            "guard version",
        ],
        ["completion"] =
        [
            "guard completion bash > /etc/bash_completion.d/guard",
            "guard completion zsh > \"${fpath[1]}/_guard\"",
        ],
        ["man"] =
        [
            "guard man | man -l -",
        ],
    };

    /// <summary>Makes <paramref name="root"/>'s --help (every command's: the option is recursive) end with the command's examples.</summary>
    public static void Install(RootCommand root)
    {
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        if (help.Action is HelpAction standard)
            help.Action = new WithExamples(standard);
    }

    /// <summary>The command's path after "guard", as <see cref="ByCommand"/> keys it.</summary>
    public static string PathOf(ParseResult parse)
    {
        var names = new List<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = parse.CommandResult; r is System.CommandLine.Parsing.CommandResult c && c.Command is not RootCommand; r = c.Parent)
            names.Insert(0, c.Command.Name);
        return string.Join(' ', names);
    }

    private sealed class WithExamples(HelpAction standard) : SynchronousCommandLineAction
    {
        /// <summary>As the standard help: `guard kill --help` is help, not a missing PID.</summary>
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            int result = standard.Invoke(parseResult);
            if (ByCommand.TryGetValue(PathOf(parseResult), out string[]? examples))
            {
                TextWriter o = parseResult.InvocationConfiguration.Output;
                o.WriteLine("Examples:");
                foreach (string line in examples)
                    o.WriteLine($"  {line}");
                o.WriteLine();
            }
            return result;
        }
    }
}
