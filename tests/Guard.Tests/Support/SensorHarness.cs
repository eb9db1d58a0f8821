using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>One recorded event: the JSON line as written, and its parse.</summary>
public sealed record RecordedEvent(byte[] Line, JsonElement Json)
{
    public string Action => Json.GetProperty("event").GetProperty("action").GetString()!;

    public int? Pid => Json.TryGetProperty("process", out JsonElement p) && p.TryGetProperty("pid", out JsonElement pid) ? pid.GetInt32() : null;

    public JsonElement Process => Json.GetProperty("process");

    public string[] Args => ArgsOf(Json);

    /// <summary>process.args of an ECS event, empty when it has none.</summary>
    public static string[] ArgsOf(JsonElement ecsEvent) =>
        ecsEvent.TryGetProperty("process", out JsonElement p) && p.TryGetProperty("args", out JsonElement a) ? [.. a.EnumerateArray().Select(x => x.GetString()!)] : [];

    public override string ToString() => System.Text.Encoding.UTF8.GetString(Line);
}

/// <summary>Keeps every event as the ECS line the JSON output would print.</summary>
public sealed class RecordingSink : IEventSink
{
    private readonly EcsEncoder encoder = new(RunInfo.ForThisHost("test"), new ArgumentRedactor());
    private readonly JsonLineWriter writer = new();
    private readonly List<RecordedEvent> events = [];

    public void Write(SensorEvent e)
    {
        encoder.Encode(e, writer);
        byte[] line = writer.Written.ToArray();
        using JsonDocument doc = JsonDocument.Parse(line);
        lock (events)
            events.Add(new RecordedEvent(line, doc.RootElement.Clone()));
    }

    public RecordedEvent[] Snapshot()
    {
        lock (events)
            return [.. events];
    }

    public void Flush() { }

    public void Dispose() { }
}

/// <summary>
/// A real sensor on the real kernel, polled on a thread of its own, recording
/// every event. Dispose detaches every program, even when the test failed.
/// </summary>
public sealed class SensorHarness : IDisposable
{
    private readonly Thread? poller;
    private readonly ManualResetEventSlim idle = new();
    private volatile bool stopping;
    private volatile bool paused;
    private Exception? pollFailure;

    private SensorHarness(GuardSensor sensor, RecordingSink sink, bool poll)
    {
        Sensor = sensor;
        Sink = sink;
        if (!poll)
            return;
        poller = new Thread(() =>
        {
            try
            {
                while (!stopping)
                {
                    if (paused)
                    {
                        idle.Set();
                        Thread.Sleep(5);
                        continue;
                    }
                    Sensor.Poll(20);
                }
            }
            catch (Exception e)
            {
                pollFailure = e;
            }
        })
        { IsBackground = true, Name = "sensor-poll" };
        poller.Start();
    }

    public GuardSensor Sensor { get; }

    public RecordingSink Sink { get; }

    public static SensorHarness Start(SensorOptions? options = null, bool poll = true)
    {
        KernelRequirements.Check();
        var sink = new RecordingSink();
        options ??= new SensorOptions();
        options = options with
        {
            Filter = options.Filter with { Types = new HashSet<EventType>(Enum.GetValues<EventType>()) },
            GpuFlushInterval = TimeSpan.FromMilliseconds(200),
        };
        return new SensorHarness(GuardSensor.Start(options, sink), sink, poll);
    }

    public RecordedEvent[] Events => Sink.Snapshot();

    /// <summary>
    /// Holds the reader until disposed: records wait in the ring while the test
    /// stages what the sensor must find when it reads them (a process gone, its
    /// path replaced).
    /// </summary>
    public IDisposable Pause()
    {
        if (poller is null)
            throw new InvalidOperationException("a harness started without its poll thread has nothing to pause");
        idle.Reset();
        paused = true;
        if (!idle.Wait(5000))
            throw new XunitException("the sensor's poll thread did not pause within 5 s: it is stuck in a poll");
        return new Resume(this);
    }

    private sealed class Resume(SensorHarness harness) : IDisposable
    {
        public void Dispose() => harness.paused = false;
    }

    public RecordedEvent WaitFor(string what, Func<RecordedEvent, bool> match, int timeoutMs = 5000) =>
        WaitForAll(what, match, 1, timeoutMs)[0];

    public RecordedEvent[] WaitForAll(string what, Func<RecordedEvent, bool> match, int count, int timeoutMs = 5000)
    {
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (true)
        {
            if (pollFailure is { } failure)
                throw new XunitException($"the sensor failed while waiting for {what}: {failure}");
            RecordedEvent[] found = [.. Events.Where(match)];
            if (found.Length >= count)
                return found;
            if (DateTime.UtcNow > deadline)
            {
                string recent = string.Join("\n", Events.TakeLast(15).Select(e => e.ToString()[..Math.Min(400, e.ToString().Length)]));
                throw new XunitException($"timed out after {timeoutMs} ms waiting for {count} x {what}; found {found.Length}. Last events:\n{recent}");
            }
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        stopping = true;
        // A poll that never returns is the failure some tests look for: say so rather than hang the run.
        if (poller is not null && !poller.Join(10_000))
            throw new XunitException("the sensor's poll thread is stuck: it did not return within 10 s of being asked to stop");
        Sensor.Dispose();
        // A rule that held a test's job: nothing stays stopped, frozen or pinned.
        var quarantines = new Guard.Sensor.Response.Quarantines(Guard.Sensor.Bpf.KernelMounts.FindCgroup2Root());
        quarantines.Prune();
        foreach (Guard.Sensor.Response.QuarantineHold held in quarantines.List())
            quarantines.Release(held);
    }
}

/// <summary>Kernel tests need root and BTF; without them they fail, saying so.</summary>
public static class KernelRequirements
{
    public static void Check()
    {
        if (Environment.UserName != "root" && Guard.Sensor.Bpf.Privileges.Missing().Count > 0)
            throw new XunitException("kernel tests need root (or CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN): run them with sudo, as CI does");
        if (!File.Exists("/sys/kernel/btf/vmlinux"))
            throw new XunitException("kernel tests need a kernel with BTF (/sys/kernel/btf/vmlinux)");
    }
}

/// <summary>Kernel tests attach at the cgroup root and share the machine: one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelTestGroup : ICollectionFixture<PinRootCleanup>
{
    public const string Name = "kernel";
}

/// <summary>
/// This test run's own pin root, action log and run directory (sensor
/// registrations, locks), set before any test runs: a production Guard's
/// holds, enforcement, lineage, log and registrations on this host are never touched.
/// </summary>
internal static class TestRunState
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Isolate()
    {
        if (Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") is null)
            Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", $"/sys/fs/bpf/guard-test-{Environment.ProcessId}");
        if (Environment.GetEnvironmentVariable("GUARD_ACTION_LOG") is null)
            Environment.SetEnvironmentVariable("GUARD_ACTION_LOG", Path.Combine(Path.GetTempPath(), $"guard-test-{Environment.ProcessId}-actions.jsonl"));
        if (Environment.GetEnvironmentVariable("GUARD_RUN_DIR") is null)
            Environment.SetEnvironmentVariable("GUARD_RUN_DIR", Path.Combine(Path.GetTempPath(), $"guard-test-{Environment.ProcessId}-run"));
        RemoveDeadRunsPins();
    }

    /// <summary>
    /// The pin roots of earlier test runs that were killed before their cleanup
    /// (a timeout, a SIGKILL): their handed-over enforcement stays attached at the
    /// root cgroup and would kill and drop for every later test. A root whose pid
    /// runs (another run, or a reused pid) is left alone.
    /// </summary>
    private static void RemoveDeadRunsPins()
    {
        try
        {
            foreach (string root in Directory.EnumerateDirectories("/sys/fs/bpf", "guard-test-*"))
            {
                if (int.TryParse(Path.GetFileName(root)["guard-test-".Length..], out int pid) && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
                    Guard.Sensor.Bpf.Pins.Remove(root);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not root, or no bpffs: nothing of ours can be pinned there either.
        }
    }
}

/// <summary>
/// After the last kernel test: enforcement a `guard watch` of the tests
/// handed over, the lineage recorder, anything else left under this run's own
/// pin root, its action log and its run directory go.
/// </summary>
public sealed class PinRootCleanup : IDisposable
{
    public void Dispose()
    {
        string root = Guard.Sensor.Bpf.Pins.Root;
        if (root.StartsWith("/sys/fs/bpf/guard-test-", StringComparison.Ordinal))
            Guard.Sensor.Bpf.Pins.Remove(root);
        string log = Guard.Sensor.Output.ActionLog.DefaultPath;
        if (log.StartsWith(Path.GetTempPath(), StringComparison.Ordinal))
            File.Delete(log);
        string run = Guard.Sensor.Interop.RunDirectory.Path;
        if (run.StartsWith(Path.GetTempPath(), StringComparison.Ordinal) && Directory.Exists(run))
            Directory.Delete(run, recursive: true);
    }
}
