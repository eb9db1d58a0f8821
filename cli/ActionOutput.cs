using System.CommandLine;
using Guard.Sensor.Events;
using Guard.Sensor.Output;

namespace Guard.Cli;

/// <summary>The --output of commands that act (kill, detach): a line for a person, or the ECS action event.</summary>
public static class ActionOutput
{
    public static Option<string> CreateOption(string jsonMeaning)
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = $"text: lines for a person; json: {jsonMeaning}",
            DefaultValueFactory = _ => "text",
        };
        option.AcceptOnlyFromAmong("text", "json");
        return option;
    }

    public static bool IsJson(ParseResult parse, Option<string> option) => parse.GetValue(option) == "json";

    /// <summary>Writes the event as one ECS JSON line on stdout.</summary>
    public static void Write(IConsole console, ActionEvent action)
    {
        var writer = new JsonLineWriter();
        new EcsEncoder(RunInfo.ForThisHost(GuardCli.Version), new ArgumentRedactor()).Encode(action, writer);
        using Stream stdout = console.OpenStandardOutput();
        stdout.Write(writer.Written);
    }
}
