using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// argv past the exec record's 1024 bytes: the kernel's exec_args records
/// come first and the exec is judged on the whole command line; a record
/// lost, or a command line past the 64 KiB the kernel reads, leaves the
/// process marked as read in part, which is weak evidence of its own.
/// </summary>
public sealed class ExecArgsTailsTests
{
    private const int Launcher = 730_000;
    private const int Worker = Launcher + 1;

    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(new EntityIds("feedfacecafe"), null, new UserNames());

    private EventPipeline Start()
    {
        EventPipeline pipeline = Pipelines.Over(table, sink, PolicyDetectors.From(PolicyLoader.BuiltIn));
        pipeline.OnFork(Records.Fork(Launcher, 0));
        pipeline.OnExec(Records.Exec(Launcher, 0, "/usr/bin/python3 train.py", jobRoot: Launcher));
        pipeline.OnFork(Records.Fork(Worker, Launcher));
        return pipeline;
    }

    private RecordedEvent[] Alerts => [.. sink.Snapshot().Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert")];

    /// <summary>argv: the program, padding arguments of 100 bytes up to <paramref name="at"/>, then <paramref name="last"/>.</summary>
    private static byte[] Argv(int at, params string[] last)
    {
        var argv = new List<byte>(Encoding.ASCII.GetBytes("/opt/tools/render\0"));
        while (argv.Count < at)
            argv.AddRange(Encoding.ASCII.GetBytes(new string('p', 99) + "\0"));
        foreach (string arg in last)
            argv.AddRange(Encoding.ASCII.GetBytes(arg + "\0"));
        return [.. argv];
    }

    private static void Exec(EventPipeline pipeline, byte[] argv, Func<ExecArgsRecord[], IEnumerable<ExecArgsRecord>>? deliver = null)
    {
        (ExecRecord exec, ExecArgsRecord[] tail) = Records.LongExec(Worker, Launcher, "/opt/tools/render", argv, jobRoot: Launcher);
        foreach (ExecArgsRecord record in deliver?.Invoke(tail) ?? tail)
            pipeline.OnExecArgs(record);
        pipeline.OnExec(exec);
    }

    [Theory]
    [InlineData(5000)]
    [InlineData(40_000)]
    [InlineData(65_000)]
    public void AMinerOptionPastTheExecRecordIsJudged(int at)
    {
        EventPipeline pipeline = Start();
        Exec(pipeline, Argv(at, "--donate-level", "1"));
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal(("miner-arguments", Worker), (alert.Action, alert.Pid));
        Assert.Equal("--donate-level", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("argument").GetString());
        ProcessEntry worker = table.Find(Worker)!;
        Assert.False(worker.ArgsTruncated);
        Assert.True(worker.Args.AsSpan().EndsWith("--donate-level\u00001"u8), "the process's arguments end where argv does");
    }

    [Fact]
    public void ALongOrdinaryCommandLineIsReadWholeAndLeftAlone()
    {
        EventPipeline pipeline = Start();
        Exec(pipeline, Argv(30_000, "--epochs", "3"));
        Assert.Empty(Alerts);
        Assert.False(table.Find(Worker)!.ArgsTruncated);
        RecordedEvent exec = sink.Snapshot().Last(e => e.Action == "exec");
        Assert.Equal("3", exec.Json.GetProperty("process").GetProperty("args").EnumerateArray().Last().GetString());
    }

    [Fact]
    public void ALostRecordLeavesTheRestUnreadAndSaysSo()
    {
        EventPipeline pipeline = Start();
        // The second of the tail's records was lost: the third does not follow the first.
        Exec(pipeline, Argv(20_000, "--donate-level", "1"), tail => tail.Where((_, i) => i != 1));
        ProcessEntry worker = table.Find(Worker)!;
        Assert.True(worker.ArgsTruncated);
        Assert.Equal(ExecRecord.ArgsCapacity + ExecArgsRecord.ChunkCapacity, worker.Args.Length);
    }

    [Fact]
    public void ACommandLinePastWhatTheKernelReadsIsOneWeakKindAndActsWithAnother()
    {
        EventPipeline pipeline = Start();
        // The miner option lies past 64 KiB, never read; --algo= alone would be nothing.
        byte[] argv = Argv(70_000, "--donate-level", "1");
        byte[] withAlgo = [.. Encoding.ASCII.GetBytes("/opt/tools/render\0--algo=rx/0\0"), .. argv.AsSpan("/opt/tools/render\0".Length)];
        Exec(pipeline, withAlgo);
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("miner-arguments", alert.Action);
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal(ExecArgsRecord.MaxArgs, evidence.GetProperty("args_read_bytes").GetInt32());
        Assert.True(table.Find(Worker)!.ArgsTruncated);
    }

    [Fact]
    public void TailsOfExecRecordsThatNeverCameAreForgottenOldestFirst()
    {
        EventPipeline pipeline = Start();
        // Tails of processes whose exec records were lost fill the table; the worker's own still counts.
        for (int i = 0; i < ExecArgsTails.Capacity * 2; i++)
        {
            (_, ExecArgsRecord[] lost) = Records.LongExec(Launcher + 100 + i, Launcher, "/bin/true", Argv(2000));
            pipeline.OnExecArgs(lost[0]);
        }
        Exec(pipeline, Argv(5000, "--donate-level", "1"));
        Assert.Equal("miner-arguments", Assert.Single(Alerts).Action);
    }
}
