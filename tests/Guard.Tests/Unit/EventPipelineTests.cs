using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using static Guard.Tests.Support.Records;

namespace Guard.Tests.Unit;

/// <summary>The user-space flow on synthetic records: no kernel needed.</summary>
public sealed class EventPipelineTests
{
    private const int Parent = 700_000;
    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(new EntityIds("feedfacecafe"), null, new UserNames());
    private readonly EventPipeline pipeline;

    public EventPipelineTests()
    {
        pipeline = Pipelines.Over(table, sink);
        pipeline.OnFork(Fork(Parent, 0));
    }

    private static PayloadRecord Payload(int pid, ulong cookie, string segment, ulong timeNs, bool final = false, int offset = 0)
    {
        var p = new PayloadRecord { Header = Header(RecordKind.Payload, pid, timeNs), Cookie = cookie, Family = 2, DestinationPort = 3333, Offset = (ushort)offset, Length = (ushort)segment.Length, Segments = 1, Flags = final ? PayloadRecord.Final : (byte)0 };
        Encoding.ASCII.GetBytes(segment).CopyTo(p.Data);
        return p;
    }

    private RecordedEvent[] Payloads => [.. sink.Snapshot().Where(e => e.Action == "payload")];

    [Fact]
    public void SegmentsOfOneConnectionBecomeOnePayloadEventOnceQuiet()
    {
        pipeline.OnFork(Fork(Parent + 1, Parent));
        pipeline.OnPayload(Payload(Parent + 1, 9, "{\"id\"", 1_000));
        pipeline.OnPayload(Payload(Parent + 1, 9, ":1,", 2_000, offset: 5));
        pipeline.Tick(2_000 + PayloadAssembly.QuietNs - 1);
        Assert.Empty(Payloads);
        pipeline.Tick(2_000 + PayloadAssembly.QuietNs);
        RecordedEvent only = Assert.Single(Payloads);
        Assert.Equal("{\"id\":1,", only.Json.GetProperty("guard").GetProperty("payload").GetProperty("data").GetString());
        Assert.Equal(Parent + 1, only.Pid);
        // A late segment of the same connection adds nothing.
        pipeline.OnPayload(Payload(Parent + 1, 9, "\"m\"", 3_000_000_000, offset: 8));
        pipeline.Tick(4_000_000_000);
        Assert.Single(Payloads);
    }

    [Fact]
    public void AFinalRecordIsEmittedAtOnce()
    {
        pipeline.OnFork(Fork(Parent + 2, Parent));
        pipeline.OnPayload(Payload(Parent + 2, 10, new string('x', 256), 5_000, final: true));
        Assert.Single(Payloads);
    }

    [Fact]
    public void ManyConnectionsAreEmittedInTheOrderTheyWentQuiet()
    {
        pipeline.OnFork(Fork(Parent + 3, Parent));
        for (ulong c = 100; c < 1100; c++)
            pipeline.OnPayload(Payload(Parent + 3, c, $"c{c}", c * 1000));
        pipeline.OnPayload(Payload(Parent + 3, 100, " again", 2_000_000, offset: 4)); // the oldest is updated: now the newest
        pipeline.Tick(1099 * 1000 + PayloadAssembly.QuietNs);
        Assert.Equal(999, Payloads.Length);
        pipeline.Tick(2_000_000 + PayloadAssembly.QuietNs);
        Assert.Equal("c100 again", Payloads[^1].Json.GetProperty("guard").GetProperty("payload").GetProperty("data").GetString());
    }

    private static ConnectRecord Connect(int pid, ulong cookie) =>
        new() { Header = Header(RecordKind.Connect, pid, 20), Cookie = cookie, Family = 2, Protocol = 6, DestinationPort = 443, Result = ConnectResult.Established };

    [Fact]
    public void ARenderedProcessIsReusedUntilItExecsAgain()
    {
        int pid = Parent + 5;
        pipeline.OnFork(Fork(pid, Parent));
        pipeline.OnExec(Exec(pid, Parent, "python3 train.py"));
        for (ulong c = 1; c <= 4; c++)
            pipeline.OnConnect(Connect(pid, c));
        pipeline.OnExec(Exec(pid, Parent, "/tmp/xmrig --donate-level 1"));
        pipeline.OnConnect(Connect(pid, 5));
        string[] ArgsOf(RecordedEvent e) => [.. e.Process.GetProperty("args").EnumerateArray().Select(a => a.GetString()!)];
        RecordedEvent[] connects = [.. sink.Snapshot().Where(e => e.Action == "connect")];
        Assert.All(connects[..4], e => Assert.Equal(["python3", "train.py"], ArgsOf(e)));
        Assert.Equal(["/tmp/xmrig", "--donate-level", "1"], ArgsOf(connects[4]));
        Assert.Equal(connects[2].Process.GetRawText(), connects[3].Process.GetRawText());
    }

    [Fact]
    public void AReusedPidIsANewProcessWithANewEntityId()
    {
        ForkRecord first = Fork(Parent + 4, Parent);
        pipeline.OnFork(first);
        ProcessEntry a = table.Find(Parent + 4)!;
        pipeline.OnExit(Records.Exit(Parent + 4, 2));
        var second = first;
        second.Header.StartTimeNs += 50_000_000_000;
        pipeline.OnFork(second);
        ProcessEntry b = table.Find(Parent + 4)!;
        Assert.NotSame(a, b);
        Assert.NotEqual(a.EntityId, b.EntityId);
        Assert.Same(a.Parent, b.Parent);
    }
}
