using System.CommandLine;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard policy check FILE`, `guard policy show [--policy FILE]` and `guard policy reload`.</summary>
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

        var reload = new Command("reload", "Have each running guard watch read its policy again (as SIGHUP does) and say whether it took it; a bad policy is refused with file:line:key: reason and the running one stays.");
        reload.SetAction(_ => Reload(console));
        policy.Subcommands.Add(reload);
        return policy;
    }

    // A PolicyException reaches GuardCli, which prints each error and exits 2.
    private static int Check(string path, IConsole console)
    {
        Policy p = PolicyLoader.Load(path);
        // As the sensor will run it: under audit no rule acts, whatever its action says.
        int acting = Detectors.All.Count(d => KernelRules.Acts(p.ActionFor(d)));
        int configured = p.Rules.Count(r => KernelRules.Acts(r.Value));
        string mode = p.Mode == PolicyMode.Enforce ? "enforce" : "audit";
        string audited = p.Mode == PolicyMode.Audit && configured > 0 ? $" (audit mode: {configured} would act under enforce)" : "";
        console.Out.WriteLine($"{path}: ok (mode {mode}, {p.Rules.Count} rules, {acting} that act{audited}{(p.Confine.Count > 0 ? $", {p.Confine.Count} [[confine]] section(s)" : "")})");
        foreach (string warning in MissingAllowedExecutables(path, p).Concat(UnknownAllowedUsers(path, p)).Concat(UnknownConfinePrincipals(path, p)).Concat(ConfineShadows.Warnings(p.Confine)))
            console.Error.WriteLine(warning);
        return (int)ExitCode.Success;
    }

    /// <summary>
    /// One warning, file:line:allow.executables: ..., for each allow-listed
    /// executable that does not exist on this host: the kernel allows by device
    /// and inode, so such an entry spares nothing here (a typo, or a tool not yet installed).
    /// </summary>
    internal static IEnumerable<string> MissingAllowedExecutables(string path, Policy policy)
    {
        string[] lines = LinesOf(path);
        foreach (string executable in policy.Allow.Executables.Where(e => !System.IO.File.Exists(e)))
            yield return $"{path}:{LineNaming(lines, executable)}:allow.executables: warning: '{Printable.Of(executable)}' does not exist on this host: it allows nothing here";
    }

    /// <summary>
    /// One warning, file:line:allow.users: ..., for each allow-listed user name that
    /// /etc/passwd lacks (a number is a uid, always taken): processes are allowed by
    /// their uid or the name /etc/passwd gives it, so such a name spares nothing here.
    /// </summary>
    internal static IEnumerable<string> UnknownAllowedUsers(string path, Policy policy)
    {
        string[] lines = LinesOf(path);
        foreach (string user in policy.Allow.Users.Where(u => LocalAccounts.Host.UserId(u) is null))
            yield return $"{path}:{LineNaming(lines, user)}:allow.users: warning: '{Printable.Of(user)}' is not a user on this host (not in {LocalAccounts.Host.Passwd}): it allows nothing here";
    }

    /// <summary>
    /// One warning, file:line:confine.users or confine.groups: ..., for each name a
    /// [[confine]] section selects by that this host's /etc/passwd or /etc/group lacks
    /// (a number is an id, always taken): the sensor matches names through those files,
    /// so such a name selects no job here.
    /// </summary>
    internal static IEnumerable<string> UnknownConfinePrincipals(string path, Policy policy)
    {
        string[] lines = LinesOf(path);
        LocalAccounts accounts = LocalAccounts.Host;
        foreach (ConfineSection section in policy.Confine)
        {
            foreach (string user in section.Select.Users.Where(u => accounts.UserId(u) is null))
                yield return $"{path}:{LineNaming(lines, user)}:confine.users: warning: '{Printable.Of(user)}' is not a user on this host (not in {accounts.Passwd}, where Guard looks; give a uid for a user only a directory service such as LDAP knows): it selects no job here";
            foreach (string group in section.Select.Groups.Where(g => accounts.GroupId(g) is null))
                yield return $"{path}:{LineNaming(lines, group)}:confine.groups: warning: '{Printable.Of(group)}' is not a group on this host (not in {accounts.Group}, where Guard looks; give a gid for a group only a directory service such as LDAP knows): it selects no job here";
        }
    }

    private static string[] LinesOf(string path)
    {
        try
        {
            return System.IO.File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>The line of <paramref name="lines"/> that names <paramref name="value"/> quoted; 0 for none (an entry from the built-in policy).</summary>
    private static int LineNaming(string[] lines, string value) =>
        Array.FindIndex(lines, l => l.Contains($"\"{value}\"", StringComparison.Ordinal) || l.Contains($"'{value}'", StringComparison.Ordinal)) + 1;

    /// <summary>Asks every registered sensor; exit 0 when all took it, 2 when one refused the policy, 1 when none runs or one did not answer.</summary>
    private static int Reload(IConsole console)
    {
        // Changing what a running sensor enforces is acting on the host: root, or the capabilities a hold needs.
        NotPermittedException.ThrowUnlessMayAct("guard policy reload", Privileges.ToHold);
        IReadOnlyList<RegisteredSensor> sensors = RunningSensors.List();
        if (sensors.Count == 0)
        {
            console.Error.WriteLine($"guard policy reload: no guard watch is running (none registered under {RunningSensors.Directory}); nothing to reload");
            return (int)ExitCode.Failure;
        }
        ExitCode result = ExitCode.Success;
        foreach (RegisteredSensor sensor in sensors)
        {
            PolicyReloadAnswer answer;
            try
            {
                answer = PolicyReloads.Ask(sensor, PolicyReloads.AnswerTimeout);
            }
            catch (SensorException e)
            {
                console.Error.WriteLine($"guard policy reload: {e.Message}");
                result = result == ExitCode.Success ? ExitCode.Failure : result;
                continue;
            }
            if (answer.Applied)
            {
                console.Out.WriteLine($"pid {sensor.Pid}: {string.Join(" ", answer.Lines).Replace("guard watch: policy reloaded: ", "reloaded: ", StringComparison.Ordinal)}");
                continue;
            }
            foreach (string line in answer.Lines)
                console.Error.WriteLine($"pid {sensor.Pid}: {line.Replace("guard watch: ", "", StringComparison.Ordinal)}");
            result = ExitCode.Usage;
        }
        return (int)result;
    }

    private static int Show(string? path, IConsole console)
    {
        console.Out.Write(PolicyWriter.Write(PolicyLoader.Load(path)));
        return (int)ExitCode.Success;
    }
}
