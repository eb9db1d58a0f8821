using System.CommandLine;
using System.Text;

namespace Guard.Cli;

/// <summary>
/// guard(1) in man(7) roff, written from the parser's command tree
/// (<see cref="CommandTree"/>) and a few fixed sections (files, exit status,
/// environment): `guard man` prints it; the package installs it gzipped.
/// </summary>
public static class ManPage
{
    /// <summary>The page for <paramref name="root"/>, dated <paramref name="date"/> (the build's, so two builds of one tree match).</summary>
    public static string Write(RootCommand root, string version, DateOnly date)
    {
        IReadOnlyList<CommandTree.Node> nodes = CommandTree.Walk(root);
        var s = new StringBuilder();
        s.Append(".\\\" guard(1), written by `guard man` from the command tree.\n");
        s.Append(".TH GUARD 1 \"").Append(date.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)).Append("\" \"guard ").Append(Roff(version)).Append("\" \"User Commands\"\n");
        s.Append(".SH NAME\nguard \\- ").Append(Roff(root.Description ?? "")).Append('\n');
        s.Append(".SH SYNOPSIS\n");
        foreach (CommandTree.Node n in nodes.Skip(1).Where(n => !n.Subcommands.Any()))
            s.Append(".B guard ").Append(Roff(n.Path)).Append("\n.RI [ options ]\n").Append(string.Concat(n.Arguments.Select(a => $".RI [ {Roff(a.Name)} ]\n"))).Append(".br\n");
        s.Append(".SH DESCRIPTION\n");
        s.Append("Guard is a host sensor for GPU training machines. eBPF programs trace process execution, connections, ");
        s.Append("first payload bytes, DNS queries and NVIDIA driver activity; each event is printed as one Elastic Common ");
        s.Append("Schema JSON line, or a readable line on a terminal. Known miners are killed before their first instruction ");
        s.Append("and the job that launched one is held in quarantine for a person to release or kill.\n");
        s.Append(".SH COMMANDS\n");
        foreach (CommandTree.Node n in nodes.Skip(1))
        {
            s.Append(".SS \"guard ").Append(Roff(n.Path)).Append("\"\n").Append(Roff(n.Command.Description ?? "")).Append('\n');
            foreach (Argument a in n.Arguments)
                s.Append(".TP\n.I ").Append(Roff(a.Name)).Append('\n').Append(Roff(a.Description ?? "")).Append('\n');
            foreach (Option o in n.Options.Where(o => o.Name != "--help"))
            {
                IReadOnlyList<string> choices = CommandTree.Choices(o);
                string value = CommandTree.IsFlag(o) ? "" : choices.Count > 0 ? $" {string.Join('|', choices)}" : $" {o.HelpName ?? "VALUE"}";
                s.Append(".TP\n.B ").Append(Roff(string.Join(", ", CommandTree.Names(o).Where(x => x.StartsWith('-'))))).Append(value.Length > 0 ? $"\n.I \"{Roff(value.Trim())}\"" : "").Append('\n');
                s.Append(Roff(o.Description ?? "")).Append('\n');
            }
        }
        s.Append(".SH FILES\n");
        s.Append(".TP\n.I /etc/guard/guard.toml\nThe service's configuration.\n");
        s.Append(".TP\n.I /etc/guard/policy.toml\nThe policy, laid over the built-in one (see \\fBguard policy show\\fR).\n");
        s.Append(".TP\n.I /run/guard\nRunning sensors, holds' locks and the action log (actions.jsonl) that \\fBguard status\\fR reads.\n");
        s.Append(".TP\n.I /sys/fs/bpf/guard\nGuard's pinned programs and maps: enforcement that outlives a sensor.\n");
        s.Append(".SH ENVIRONMENT\n");
        s.Append(".TP\n.B GUARD_RUN_DIR\nAnother run directory than /run/guard.\n");
        s.Append(".TP\n.B GUARD_PIN_ROOT\nAnother pin directory than /sys/fs/bpf/guard.\n");
        s.Append(".SH EXIT STATUS\n");
        s.Append(".TP\n.B 0\nDone.\n.TP\n.B 1\nThe command ran and failed: it could not load, attach or act, or it was refused.\n");
        s.Append(".TP\n.B 2\nThe command line was wrong: an unknown command or flag, a bad value, a bad policy.\n");
        s.Append(".TP\n.B 77\nNot permitted: an acting command run by a caller other than root (see \\fBWHO MAY ACT\\fR).\n");
        s.Append(".SH WHO MAY ACT\n");
        s.Append("\\fBkill\\fR, \\fBquarantine\\fR, \\fBrelease\\fR, \\fBdetach\\fR and \\fBpolicy reload\\fR act on the host: ");
        s.Append("they refuse a caller whose effective uid is not 0 and who lacks the capabilities the action needs, before anything is done.\n");
        s.Append(".SH SEE ALSO\n.BR systemctl (1),\n.BR journalctl (1)\n");
        return s.ToString();
    }

    /// <summary>Text safe in roff: backslashes doubled, a leading '.' or '\'' made literal, dashes kept as typed.</summary>
    private static string Roff(string text)
    {
        string escaped = text.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal).Replace('\n', ' ');
        return escaped.StartsWith('.') || escaped.StartsWith('\'') ? "\\&" + escaped : escaped;
    }
}
