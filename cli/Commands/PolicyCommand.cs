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

    private static int Check(string path, IConsole console)
    {
        try
        {
            Policy p = PolicyLoader.Load(path);
            int enforced = p.Rules.Count(r => r.Value is not (RuleAction.Off or RuleAction.Alert));
            console.Out.WriteLine($"{path}: ok (mode {(p.Mode == PolicyMode.Enforce ? "enforce" : "audit")}, {p.Rules.Count} rules, {enforced} that act)");
            return (int)ExitCode.Success;
        }
        catch (PolicyException e)
        {
            foreach (PolicyError error in e.Errors)
                console.Error.WriteLine(error.ToString());
            return (int)ExitCode.Usage;
        }
    }

    private static int Show(string? path, IConsole console)
    {
        try
        {
            console.Out.Write(PolicyWriter.Write(PolicyLoader.Load(path)));
            return (int)ExitCode.Success;
        }
        catch (PolicyException e)
        {
            foreach (PolicyError error in e.Errors)
                console.Error.WriteLine(error.ToString());
            return (int)ExitCode.Usage;
        }
    }
}
