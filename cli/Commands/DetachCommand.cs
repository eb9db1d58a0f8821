using System.CommandLine;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard detach --all`: the emergency off switch.</summary>
public static class DetachCommand
{
    private static readonly Option<bool> All = new("--all")
    {
        Description = "Required: stop every Guard sensor on this host and remove every Guard program, link and pin",
    };

    private static readonly Option<string> Output = ActionOutput.CreateOption("the ECS audit event");

    public static Command Create(IConsole console)
    {
        var command = new Command("detach", "Emergency off switch: stop every Guard sensor and remove every Guard program, link and pin.");
        command.Options.Add(All);
        command.Options.Add(Output);
        command.SetAction(parse =>
        {
            NotPermittedException.ThrowUnlessMayAct("guard detach", Guard.Sensor.Bpf.Privileges.ToHold);
            if (!parse.GetValue(All))
                throw new UsageException("detach removes everything Guard has in the kernel: say --all to mean it");
            Guard.Sensor.Bpf.Privileges.Require("guard detach");
            DetachOutcome outcome = EmergencyDetach.Run(TimeSpan.FromSeconds(5));
            if (ActionOutput.Report(console, parse, Output, outcome.ToActionEvent()))
                return outcome.Done ? (int)ExitCode.Success : (int)ExitCode.Failure;
            foreach (int pid in outcome.Signalled)
                console.Out.WriteLine($"guard: asked sensor {pid} to stop (SIGTERM)");
            foreach (string job in outcome.Released)
                console.Out.WriteLine($"guard: released {job}");
            if (outcome.PinsRemoved)
                console.Out.WriteLine($"guard: removed the pins under {Guard.Sensor.Bpf.Pins.Root}");
            if (!outcome.Done)
            {
                foreach (var p in outcome.Remaining)
                    console.Error.WriteLine($"guard: program {p.Name} (id {p.Id}) is still loaded, held by {(p.HolderPids.Count == 0 ? "no process" : string.Join(", ", p.HolderPids))}");
                return (int)ExitCode.Failure;
            }
            console.Out.WriteLine("guard: detached: no Guard program, link or pin is left");
            return (int)ExitCode.Success;
        });
        return command;
    }
}
