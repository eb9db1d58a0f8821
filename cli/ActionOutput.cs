using System.CommandLine;
using Guard.Sensor.Events;
using Guard.Sensor.Output;

namespace Guard.Cli;

/// <summary>The --output of commands that act (kill, quarantine, release, detach): a line for a person, or the ECS action event.</summary>
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

    /// <summary>
    /// Keeps the action in the host's action log (for `guard status`) and, with
    /// --output json, writes it as one ECS JSON line on stdout. Returns true when
    /// it was written there, so the caller prints text only otherwise.
    /// </summary>
    public static bool Report(IConsole console, ParseResult parse, Option<string> option, ActionEvent action)
    {
        var encoder = new EcsEncoder(RunInfo.ForThisHost(GuardCli.Version), new ArgumentRedactor());
        new ActionLog(encoder).Append(action);
        if (!IsJson(parse, option))
            return false;
        var writer = new JsonLineWriter();
        encoder.Encode(action, writer);
        using Stream stdout = console.OpenStandardOutput();
        stdout.Write(writer.Written);
        return true;
    }
}
