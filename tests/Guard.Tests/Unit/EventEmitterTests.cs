using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>The last step of every event: the action log, the filter, the sequence, the sink.</summary>
public sealed class EventEmitterTests
{
    [Fact]
    public void EveryActionIsKeptInTheActionLogWhateverTheFilterShows()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "actions.jsonl");
        var table = new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames());
        ProcessEntry miner = table.OnFork(Records.Fork(710_001, 0));
        // A watch of another process's tree, and of execs only.
        var filter = new EventFilter { Types = new HashSet<EventType> { EventType.Exec }, Pid = 710_002 };
        var emitter = new EventEmitter(table, new RecordingSink(), filter, new ActionLog(new EcsEncoder(RunInfo.ForThisHost("test"), new ArgumentRedactor()), path));

        emitter.Emit(new ActionEvent { Action = "kill-tree", Succeeded = true, Message = "killed 1 process", OrderedBy = "stratum", Pids = [miner.Pid], Process = miner });
        var exec = new ProcessEvent { Process = miner };
        exec.Reset(EventType.Exec);
        emitter.Emit(exec); // not an action: never logged

        LoggedAction logged = Assert.Single(ActionLog.Recent(10, path));
        Assert.Equal(("kill-tree", true, "killed 1 process", "stratum"), (logged.Action, logged.Succeeded, logged.Message, logged.OrderedBy));
    }

    [Fact]
    public void WhoOrderedAnActionIsReadFromUserIdAndFromLinesWrittenBeforeIt()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "actions.jsonl");
        // A line as Guard wrote it before user.id, then one as it writes now.
        File.WriteAllText(path,
            """{"@timestamp":"2024-01-01T00:00:00.000000Z","event":{"action":"kill","outcome":"success"},"guard":{"action":{"ordered_by":{"via":"cli","uid":1000}}}}""" + "\n");
        new ActionLog(new EcsEncoder(RunInfo.ForThisHost("test"), new ArgumentRedactor()), path)
            .Append(new ActionEvent { Action = "release", Succeeded = true, Message = "released", OrderedBy = "cli", OrderedByUid = 1001 });

        Assert.Equal([("kill", 1000u), ("release", 1001u)], ActionLog.Recent(10, path).Select(a => (a.Action, a.OrderedByUid)));
    }
}
