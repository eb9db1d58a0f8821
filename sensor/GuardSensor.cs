using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Sensor;

public sealed record SensorOptions
{
    public KernelOptions Kernel { get; init; } = new();

    public EventFilter Filter { get; init; } = new();

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan GpuFlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The detection policy; null runs the sensor without findings or kernel verdicts.</summary>
    public Policy? Policy { get; init; }

    /// <summary>How often the ring is read when the kernel has not woken the reader: the worst-case latency of an event.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Where GPU samples come from; null: NVML, loaded on first use.</summary>
    public IGpuSource? GpuSource { get; init; }

    /// <summary>How often the GPUs are sampled.</summary>
    public TimeSpan GpuSampleInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the actions taken are kept for `guard status`; null keeps none.</summary>
    public ActionLog? ActionLog { get; init; }
}

/// <summary>What a run saw, for the exit summary.</summary>
public sealed record SensorSummary(
    TimeSpan Duration, long Events, IReadOnlyDictionary<EventType, long> EventsByType, ulong[] DropsByKind,
    long DecodeFailures, IReadOnlyList<AttachedProgram> Attached, IReadOnlyList<MissingProgram> Missing)
{
    public ulong Drops => DropsByKind.Aggregate(0UL, (a, b) => a + b);

    /// <summary>Executables not hashed: the queue was full.</summary>
    public long HashesDropped { get; init; }

    /// <summary>Executables not hashed: their read took over the time limit.</summary>
    public long HashesTimedOut { get; init; }
}

/// <summary>
/// One running sensor: the kernel session, the ring buffer reader, the
/// process table and the pipeline to a sink. Start, then Poll or Run, then
/// Dispose, which detaches every program.
/// </summary>
public sealed class GuardSensor : IDisposable
{
    private readonly KernelSession kernel;
    private readonly RingBufferReader reader;
    private readonly ProcessTable table;
    private readonly EventEmitter emitter;
    private readonly EventPipeline pipeline;
    private readonly Judge? judge;
    private readonly PolicyDetectors? detectors;
    private readonly RecordDecoder decoder;
    private readonly IEventSink sink;
    private readonly SensorOptions options;
    private readonly HeartbeatEvent heartbeat = new();
    private readonly long startNs;
    private long nextHeartbeatNs;
    private long nextGpuFlushNs;
    private long nextRoundingSampleNs;
    private long nextQuarantineCheckNs;
    private long nextGpuSampleNs;
    private readonly IGpuSource gpuSource;
    private readonly Quarantines? quarantines;
    private readonly List<(int Pid, ulong Count)> roundingCounts = [];
    private readonly object handOverGate = new();
    private int? handedOver;

    /// <summary>How long records still in the ring are read after a stop request: a flood must not hold the stop.</summary>
    private const long FinalDrainNs = 200_000_000;

    private GuardSensor(KernelSession kernel, ProcessTable table, IEventSink sink, SensorOptions options, PolicyDetectors? detectors, Quarantines? quarantines, Responder? responder)
    {
        this.kernel = kernel;
        this.table = table;
        this.sink = sink;
        this.options = options;
        this.quarantines = quarantines;
        decoder = new RecordDecoder();
        emitter = new EventEmitter(table, sink, options.Filter, options.ActionLog);
        this.detectors = detectors;
        judge = detectors is null ? null : new Judge(detectors, responder, emitter);
        IoctlCounters? counters = kernel.Attached.Any(a => a.Spec.Name == BpfProgramNames.Ioctl)
            ? new IoctlCounters(kernel.GpuIoctlCountsFd, kernel.GpuClassCountsFd) : null;
        pipeline = new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, counters), judge);
        gpuSource = options.GpuSource ?? new NvmlSource();
        reader = new RingBufferReader(kernel.RingBufferFd, decoder, pipeline);
        if (judge is not null)
            reader.WakeOn(judge.HashesWakeFd);
        startNs = Libc.NowNs(Libc.ClockBoottime);
        nextHeartbeatNs = startNs + (long)options.HeartbeatInterval.TotalNanoseconds;
        nextGpuFlushNs = startNs + (long)options.GpuFlushInterval.TotalNanoseconds;
    }

    public KernelSession Kernel => kernel;

    /// <summary>"nvml: 8 devices" or why there are no GPU samples: said once, at start.</summary>
    public string GpuStatus => gpuSource.Status;

    public ProcessTable Processes => table;

    /// <summary>Checks privileges, loads and attaches the programs, then seeds the process table from /proc.</summary>
    public static GuardSensor Start(SensorOptions options, IEventSink sink)
    {
        Privileges.Require("guard watch");
        KernelOptions kernelOptions = options.Kernel with
        {
            CgroupRoot = options.Kernel.CgroupRoot ?? KernelMounts.FindCgroup2Root(),
            InKernelRules = options.Policy is { } policy ? KernelRules.From(policy) : options.Kernel.InKernelRules,
        };
        KernelSession kernel = KernelSession.Open(kernelOptions);
        try
        {
            // Attached first, then seeded: a process born in between is seen twice, never missed.
            var table = new ProcessTable(EntityIds.ForThisBoot(), new CgroupPaths(kernelOptions.CgroupRoot!), new UserNames());
            table.SeedFromProcfs();
            MarkSeededJobMembers(table, kernel, kernelOptions.InKernelRules.JobRoots);
            PolicyDetectors? detectors = null;
            Quarantines? quarantines = null;
            Responder? responder = null;
            if (options.Policy is { } p)
            {
                // This sensor enforces now: what a stopped one handed over can go.
                EnforcementKernel.Remove();
                detectors = PolicyDetectors.From(p);
                quarantines = new Quarantines(kernelOptions.CgroupRoot!);
                responder = new Responder(new ProcessKiller(kernelOptions.CgroupRoot!), quarantines, p, kernelOptions.GpuDevices);
            }
            var sensor = new GuardSensor(kernel, table, sink, options with { Kernel = kernelOptions }, detectors, quarantines, responder);
            return sensor;
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Processes that were inside a job before the sensor started: the kernel
    /// learns of them here, so their children inherit the job at fork.
    /// </summary>
    private static void MarkSeededJobMembers(ProcessTable table, KernelSession kernel, IReadOnlyList<string> roots)
    {
        if (roots.Count == 0)
            return;
        var rootNames = new HashSet<string>(roots.Select(Comm.Of));
        foreach (ProcessEntry entry in table.Entries)
        {
            if (ProcessTable.JobRootByLineage(entry, rootNames) is not { } root)
                continue;
            entry.JobRootPid = root.Pid;
            kernel.MarkJobMember(entry.Pid, root.Pid, (ulong)(root.StartTicks * (1_000_000_000 / ClockTicks.PerSecond)));
        }
    }

    /// <summary>Handles what the kernel has (waiting up to <paramref name="timeoutMs"/>), then the periodic work.</summary>
    public int Poll(int timeoutMs)
    {
        int n = reader.Poll(timeoutMs);
        long now = Libc.NowNs(Libc.ClockBoottime);
        judge?.OnHashes(table);
        pipeline.Tick(now);
        if (now >= nextGpuFlushNs)
        {
            nextGpuFlushNs = now + (long)options.GpuFlushInterval.TotalNanoseconds;
            pipeline.FlushGpuCounts(now);
        }
        if (now >= nextRoundingSampleNs && judge is not null)
        {
            nextRoundingSampleNs = now + 1_000_000_000;
            roundingCounts.Clear();
            kernel.ReadRoundingSwitches(roundingCounts);
            judge.OnRoundingSample(roundingCounts, now, table);
        }
        if (now >= nextGpuSampleNs)
        {
            nextGpuSampleNs = now + (long)options.GpuSampleInterval.TotalNanoseconds;
            pipeline.OnGpuSamples(gpuSource.Sample(), now);
        }
        if (now >= nextQuarantineCheckNs && quarantines is not null)
        {
            nextQuarantineCheckNs = now + 1_000_000_000;
            ExpireQuarantines();
        }
        if (now >= nextHeartbeatNs)
        {
            nextHeartbeatNs = now + (long)options.HeartbeatInterval.TotalNanoseconds;
            EmitHeartbeat(now);
        }
        sink.Flush();
        return n;
    }

    public void Run(CancellationToken cancellation)
    {
        int interval = Math.Max(1, (int)options.PollInterval.TotalMilliseconds);
        while (!cancellation.IsCancellationRequested)
            Poll(interval);
        // Whatever is still in the ring when asked to stop is not lost, unless it keeps coming.
        long drainUntil = Libc.NowNs(Libc.ClockBoottime) + FinalDrainNs;
        while (reader.Poll(0) > 0 && Libc.NowNs(Libc.ClockBoottime) < drainUntil)
        {
        }
        pipeline.Tick(long.MaxValue / 2);
        sink.Flush();
    }

    /// <summary>
    /// Before this sensor detaches: the exec-time kill and the Stratum drop go
    /// on without it, pinned (bpf/enforce.bpf.c), until the next sensor starts.
    /// Returns how many programs were pinned; 0 when the policy kills nothing.
    /// Done once: a second call (a <see cref="StopDeadline"/>'s) returns the first's count.
    /// </summary>
    /// <exception cref="SensorException">The programs could not be loaded or pinned.</exception>
    public int HandOverEnforcement() => TryHandOverEnforcement(Timeout.InfiniteTimeSpan)!.Value;

    /// <summary>
    /// <see cref="HandOverEnforcement"/> from any thread, waiting at most
    /// <paramref name="wait"/> for one under way on another; null when that one
    /// did not finish in time.
    /// </summary>
    /// <exception cref="SensorException">The programs could not be loaded or pinned.</exception>
    public int? TryHandOverEnforcement(TimeSpan wait)
    {
        if (!Monitor.TryEnter(handOverGate, wait))
            return null;
        try
        {
            if (handedOver is not { } pinned)
            {
                InKernelRules rules = options.Kernel.InKernelRules;
                pinned = options.Policy is null || !(rules.KillAnywhere || rules.KillInJobs || rules.DropStratum)
                    ? 0 : EnforcementKernel.HandOver(rules, kernel.ReadJobMembers(), options.Kernel.CgroupRoot!);
                handedOver = pinned;
            }
            return pinned;
        }
        finally
        {
            Monitor.Exit(handOverGate);
        }
    }

    /// <summary>Holds whose timeout passed are killed or released, whoever made them: the pinned state is the host's, not this sensor's.</summary>
    private void ExpireQuarantines()
    {
        if (!QuarantineKernel.Pinned)
            return;
        try
        {
            foreach (QuarantineOutcome outcome in quarantines!.Expire(DateTimeOffset.UtcNow))
                emitter.Emit(outcome.ToActionEvent(null));
        }
        catch (Exception e) when (e is SensorException or IOException)
        {
            // Tried again in a second; the holds stay in force meanwhile.
        }
    }

    public void EmitHeartbeat(long nowNs)
    {
        heartbeat.TimeNs = nowNs;
        heartbeat.Process = null;
        heartbeat.Events = emitter.EventsEmitted;
        heartbeat.DropsByKind = kernel.ReadDrops();
        heartbeat.DecodeFailures = decoder.TotalFailures;
        heartbeat.Processes = table.Count;
        heartbeat.HashesDropped = detectors?.Executables.Dropped ?? 0;
        heartbeat.HashesTimedOut = detectors?.Executables.TimedOut ?? 0;
        heartbeat.UptimeSeconds = (nowNs - startNs) / 1e9;
        emitter.Emit(heartbeat);
    }

    public SensorSummary Summary()
    {
        var byType = new Dictionary<EventType, long>();
        foreach (EventType t in Enum.GetValues<EventType>())
        {
            if (emitter.EmittedByType[(int)t] > 0)
                byType[t] = emitter.EmittedByType[(int)t];
        }
        return new SensorSummary(
            TimeSpan.FromTicks((Libc.NowNs(Libc.ClockBoottime) - startNs) / 100), emitter.EventsEmitted, byType,
            kernel.ReadDrops(), decoder.TotalFailures, kernel.Attached, kernel.Missing)
        {
            HashesDropped = detectors?.Executables.Dropped ?? 0,
            HashesTimedOut = detectors?.Executables.TimedOut ?? 0,
        };
    }

    public void Dispose()
    {
        detectors?.Executables.Dispose();
        (gpuSource as IDisposable)?.Dispose();
        reader.Dispose();
        kernel.Dispose();
    }
}
