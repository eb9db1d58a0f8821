using System.CommandLine;
using Guard.Sensor.Detection;

namespace Guard.Cli.Commands;

/// <summary>`guard policy check FILE` and `guard policy show [--policy FILE]`.</summary>
public static class PolicyCommand
{
    private static readonly Argument<string> File = new("FILE") { Description = "The policy file to check" };

    private static readonly Option<string?> PolicyFile = new("--policy")
    {
        Description = $"Policy file laid over the built-in one (default: {Policy.SystemPath} when it exists)",
    };

    public static Command Create(IConsole console)
    {
        var policy = new Command("policy", "Check or show the detection policy.");

        var check = new Command("check", "Report every error in a policy file as file:line:key: reason.");
        check.Arguments.Add(File);
        check.SetAction(parse => Check(parse.GetValue(File)!, console));
        policy.Subcommands.Add(check);

        var show = new Command("show", "Print the effective policy: the built-in one with the file laid over it.");
        show.Options.Add(PolicyFile);
        show.SetAction(parse => Show(parse.GetValue(PolicyFile), console));
        policy.Subcommands.Add(show);
        return policy;
    }

    // A PolicyException reaches GuardCli, which prints each error and exits 2.
    private static int Check(string path, IConsole console)
    {
        Policy p = PolicyLoader.Load(path);
        int acting = p.Rules.Count(r => KernelRules.Acts(r.Value));
        console.Out.WriteLine($"{path}: ok (mode {(p.Mode == PolicyMode.Enforce ? "enforce" : "audit")}, {p.Rules.Count} rules, {acting} that act{(p.Confine.Count > 0 ? $", {p.Confine.Count} [[confine]] section(s)" : "")})");
        return (int)ExitCode.Success;
    }

    private static int Show(string? path, IConsole console)
    {
        console.Out.Write(PolicyWriter.Write(PolicyLoader.Load(path)));
        return (int)ExitCode.Success;
    }
}
