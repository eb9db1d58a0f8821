using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>Every benign training command in the corpus: no finding from any exec-time detector.</summary>
public sealed class BenignCorpusTests
{
    public static TheoryData<string> Commands =>
        [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "benign-training.txt"))
            .Where(l => l.Trim().Length > 0 && !l.StartsWith('#'))];

    [Theory]
    [MemberData(nameof(Commands))]
    public void BenignTrainingCommandsGiveNoFinding(string command)
    {
        Policy policy = PolicyLoader.BuiltIn;
        string[] argv = command.Split(' ');
        var process = new ProcessEntry(4242, 1, "test-1-4242", ProcessOrigin.Exec)
        {
            Args = System.Text.Encoding.UTF8.GetBytes(string.Join('\0', argv)),
            Executable = System.Text.Encoding.UTF8.GetBytes("/usr/bin/" + argv[0]),
            Name = System.Text.Encoding.UTF8.GetBytes(argv[0]),
        };
        Assert.Null(new ArgumentFindings(policy).OnExec(process, 0));
        Assert.DoesNotContain(argv[0], policy.Indicators.MinerNames.Concat(policy.Indicators.MinerNamesInJobs));
    }
}
