using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>A detector that throws on what it was handed is counted, never the end of the sensor.</summary>
public sealed class JudgeFaultTests
{
    [Fact]
    public void ADetectorThatThrowsIsCountedAndTheJudgeGoesOn()
    {
        var table = new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames());
        var sink = new RecordingSink();
        var emitter = new EventEmitter(table, sink, new EventFilter { Types = new HashSet<EventType>(Enum.GetValues<EventType>()) });
        var judge = new Judge(PolicyDetectors.From(PolicyLoader.BuiltIn), null, emitter);
        var entry = new ProcessEntry(4242, 1, "feedfacecafe-1-4242", ProcessOrigin.Exec) { Name = "python3"u8.ToArray() };

        // A GPU verdict asked of a process with no GPU activity makes the detector dereference nothing.
        judge.OnGpuWork(entry, null!, table, 1);
        judge.OnGpuWork(entry, null!, table, 2);

        Assert.Equal(2, judge.Faults);
        Assert.StartsWith(nameof(NullReferenceException), judge.LastFault, StringComparison.Ordinal);
        judge.OnExit(entry); // and the next event is judged as ever
        Assert.Equal(2, judge.Faults);
    }
}
