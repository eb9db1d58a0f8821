using System.CommandLine;
using Guard.Sensor.Abi;

namespace Guard.Cli.Commands;

public static class VersionCommand
{
    public static Command Create(IConsole console)
    {
        var command = new Command("version", "Print the version of guard and of its kernel record format.");
        command.SetAction(_ =>
        {
            console.Out.WriteLine($"guard {GuardCli.Version} (record ABI {RecordHeader.AbiVersion}, .NET {Environment.Version})");
            return (int)ExitCode.Success;
        });
        return command;
    }
}
