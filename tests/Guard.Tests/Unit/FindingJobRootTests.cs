using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using static Guard.Tests.Support.Records;

namespace Guard.Tests.Unit;

/// <summary>
/// Every finding names the job its process belongs to, whatever the rule: the
/// job root the kernel named at exec, found through the process's lineage.
/// </summary>
public sealed class FindingJobRootTests
{
    private const int Root = 810_000;
    private const int Miner = 810_001;
    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(new EntityIds("feedfacecafe"), null, new UserNames());
    private readonly EventPipeline pipeline;

    public FindingJobRootTests()
    {
        pipeline = Pipelines.Over(table, sink, PolicyDetectors.From(PolicyLoader.BuiltIn));
        // python3 (a job root) forks the process that becomes the miner.
        pipeline.OnFork(Fork(Root, 0));
        pipeline.OnExec(Exec(Root, 0, "python3 launch.py", jobRoot: Root));
        pipeline.OnFork(Fork(Miner, Root));
    }

    private JsonElement JobRootOf(string rule) =>
        sink.Snapshot().Single(e => e.Action == rule).Json.GetProperty("guard").GetProperty("job_root");

    [Fact]
    public void AMinerArgumentsFindingNamesTheJob()
    {
        pipeline.OnExec(Exec(Miner, Root, "data-loader --donate-level 1 -o stratum+tcp://127.0.0.1:3333", jobRoot: Root));
        Assert.Equal(Root, JobRootOf("miner-arguments").GetProperty("pid").GetInt32());
    }

    [Fact]
    public void AStratumFindingNamesTheJobOfTheConnectionsOwner()
    {
        pipeline.OnExec(Exec(Miner, Root, "python3 client.py", jobRoot: Root));
        var payload = new PayloadRecord
        {
            Header = Header(RecordKind.Payload, Miner, 20),
            Cookie = 1,
            Family = 2,
            DestinationPort = 3333,
            Length = 11,
            Segments = 1,
            Flags = PayloadRecord.Stratum | PayloadRecord.Final,
        };
        Encoding.ASCII.GetBytes("{\"id\":1,\"me").CopyTo(payload.Data);
        pipeline.OnPayload(payload);
        pipeline.OnStream(Records.Stream(Miner, 1, "login", 21));
        Assert.Equal(Root, JobRootOf("stratum").GetProperty("pid").GetInt32());
    }

    [Fact]
    public void AJobRootWhosePidWasReusedIsStillTheOriginalProcess()
    {
        pipeline.OnExec(Exec(Miner, Root, "python3 client.py", jobRoot: Root));
        ProcessEntry root = table.Find(Root)!;
        // The root exits and a stranger gets its pid: the miner's job is still the one that launched it.
        pipeline.OnExit(new ExitRecord { Header = Header(RecordKind.Exit, Root, 30) });
        table.Expire(long.MaxValue);
        var stranger = Fork(Root, 0);
        stranger.Header.StartTimeNs += 60_000_000_000;
        pipeline.OnFork(stranger);
        Assert.NotSame(root, table.Find(Root));
        Assert.Same(root, table.Find(Miner)!.JobRoot);
    }

    [Fact]
    public void AProcessOutsideEveryJobHasNoJobRoot()
    {
        pipeline.OnExec(Exec(Miner, Root, "sleep 1"));
        Assert.Null(table.Find(Miner)!.JobRoot);
    }
}
