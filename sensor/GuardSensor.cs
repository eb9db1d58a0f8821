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
using Microsoft.Extensions.Hosting.Systemd;

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

    /// <summary>
    /// How late the ring's drain may be before the sensor counts as stalled
    /// (<see cref="DrainWatchdog"/>); systemd's <c>WatchdogSec=</c> shortens it.
    /// At least 100 ms.
    /// </summary>
    public TimeSpan StallLimit { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Told, from the watchdog's thread, how late the drain is when it stalls; once a stall.</summary>
    public Action<TimeSpan>? OnStall { get; init; }

    /// <summary>Where the Prometheus endpoint (/metrics, /healthz) listens; null: no endpoint (the default).</summary>
    public System.Net.IPEndPoint? MetricsEndpoint { get; init; }

    /// <summary>The counters outputs count into (<see cref="MetricCounters.Outputs"/>); null: the sensor makes its own.</summary>
    public MetricCounters? Counters { get; init; }

    /// <summary>Ring buffer drops a second above which an alert is sent (at most one a minute, <see cref="RingDropAlerts"/>); 0: none.</summary>
    public long DropAlertRate { get; init; }

    /// <summary>The SHA-256 of <see cref="Policy"/>'s text (lowercase hex), for the metrics and reload events; null when unknown.</summary>
    public string? PolicySha256 { get; init; }

    /// <summary>
    /// How a reload (SIGHUP, <c>guard policy reload</c>) reads the policy again,
    /// with its SHA-256; throws <see cref="PolicyException"/> for a bad one.
    /// Null: SIGHUP does not reload.
    /// </summary>
    public Func<(Policy Policy, string Sha256)>? ReloadPolicy { get; init; }

    /// <summary>Told, from the reload's thread, each line a reload says (applied, or refused with file:line:key: reason).</summary>
    public Action<string>? OnReload { get; init; }

    /// <summary>Told, from the thread that confines a job, each line about a confinement that runs short of the whole.</summary>
    public Action<string>? OnConfineNote { get; init; }
}

/// <summary>What a run saw, for the exit summary.</summary>
public sealed record SensorSummary(
    TimeSpan Duration, long Events, IReadOnlyDictionary<EventType, long> EventsByType, ulong[] DropsByKind,
    long DecodeFailures, IReadOnlyList<AttachedProgram> Attached, IReadOnlyList<MissingProgram> Missing)
{
    /// <summary>Exceptions detectors threw on hostile input, each caught; with the latest one's type and message.</summary>
    public (long Count, string? Latest) DetectorFaults { get; init; }

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
public sealed partial class GuardSensor : IDisposable
{
    private readonly KernelSession kernel;
    private readonly RingBufferReader reader;
    private readonly ProcessTable table;
    private readonly EventEmitter emitter;
    private readonly EventPipeline pipeline;
    private readonly Judge? judge;
    private readonly LateJudging? lateJudging;
    private PolicyDetectors? detectors;
    private readonly RelayTrace? relays;
    private readonly RecordDecoder decoder;
    private readonly IEventSink sink;
    // Replaced by a reload (on the event thread, under handOverGate): the policy and what the kernel judges.
    private SensorOptions options;
    private readonly HeartbeatEvent heartbeat = new();
    private readonly long startNs;
    private long nextHeartbeatNs;
    private long nextGpuFlushNs;
    private long nextRoundingSampleNs;
    private long nextQuarantineCheckNs;
    private long nextDeadlineCheckNs;
    private long nextHoldCheckNs;
    private long nextGpuSampleNs;
    private readonly IGpuSource gpuSource;
    private readonly Quarantines? quarantines;
    private Confinement? confinement;
    private readonly ConfineDenials confineDenials = new();
    private long nextConfineCheckNs;
    private long nextApprovalCheckNs;
    private long nextApprovalExpiryNs;
    private readonly HoldBreaches? holdBreaches;
    private bool followingHolds;
    // This sensor's pinned enforcing programs (SensorPins); null when it enforces nothing or has handed over.
    private string? ownPins;
    private readonly List<(int Pid, GuardRounding Switches)> roundingCounts = [];
    private readonly HashSet<string> expiryFailuresReported = [];
    private readonly List<string> warnings = [];
    private SensorRegistration? registration;
    private DrainWatchdog? watchdog;
    // Switches out what runs on each CPU at the policy's rate, so guard_fpu sees every thread's rounding mode.
    private PreemptingThreads? preempting;
    // Held while enforcement is handed over, by the event thread or a StopDeadline's.
    private readonly object handOverGate = new();
    private int? handedOver;

    /// <summary>How long records still in the ring are read after a stop request: a flood must not hold the stop.</summary>
    private const long FinalDrainNs = 200_000_000;

    /// <summary>Processes found at start judged each poll: a few ms of /proc reads, so events keep flowing meanwhile.</summary>
    private const int ExistingPerPoll = 128;

    private GuardSensor(KernelSession kernel, ProcessTable table, IEventSink sink, SensorOptions options, PolicyDetectors? detectors, Quarantines? quarantines, Responder? responder)
    {
        this.kernel = kernel;
        this.table = table;
        this.sink = sink;
        this.options = options;
        this.quarantines = quarantines;
        holdBreaches = quarantines is null ? null : new HoldBreaches(options.Kernel.CgroupRoot!);
        decoder = new RecordDecoder();
        metricCounters = options.Counters ?? new MetricCounters();
        // Findings and actions are counted only for an endpoint that shows them.
        emitter = new EventEmitter(table, sink, options.Filter, options.ActionLog, options.MetricsEndpoint is null ? null : metricCounters);
        this.detectors = detectors;
        // Relay lookups run on a thread of their own and wake the reader when they answer.
        relays = responder is null ? null
            : new RelayTrace(new SenderLookups(
                kernel.ConnectedBy, kernel.UnixHeadOf, kernel.UnixDgramHeadsOf, kernel.Attached.Any(a => a.Spec.Name == BpfProgramNames.UnixData), () => reader?.Wake()), table, () => kernel.ReadDrops()[(int)RecordKind.Payload] > 0);
        judge = detectors is null ? null : new Judge(detectors, responder, emitter, relays);
        IoctlCounters? counters = kernel.Attached.Any(a => a.Spec.Name == BpfProgramNames.Ioctl)
            ? new IoctlCounters(kernel.GpuIoctlCountsFd, kernel.GpuClassCountsFd) : null;
        pipeline = new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, counters), judge);
        gpuSource = options.GpuSource ?? new NvmlSource();
        // What a full ring hid is judged late, by the same rules, when there are rules.
        lateJudging = judge is null ? null : new LateJudging(kernel, table, pipeline, emitter);
        reader = new RingBufferReader(kernel.RingBufferFd, decoder, pipeline);
        if (judge is not null)
            reader.WakeOn(judge.HashesWakeFd);
        startNs = Libc.NowNs(Libc.ClockBoottime);
        nextHeartbeatNs = startNs + (long)options.HeartbeatInterval.TotalNanoseconds;
        nextGpuFlushNs = startNs + (long)options.GpuFlushInterval.TotalNanoseconds;
    }

    public KernelSession Kernel => kernel;

    /// <summary>Processes judged late since start because the full ring lost their exec or fork record (<see cref="LateJudging"/>); 0 without a policy.</summary>
    public long JudgedLate => lateJudging?.Judged ?? 0;

    /// <summary>What runs short of the whole (an optional program missing, no lineage recorder, no registration), one line each, for stderr.</summary>
    public IReadOnlyList<string> Warnings => [.. kernel.Warnings, .. warnings];

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
        // One enforcing sensor at a time: a second would hand over and remove pins under the first.
        if (kernelOptions.InKernelRules.Enforce
            && SensorPins.Owners().FirstOrDefault(o => o.Pid != Environment.ProcessId && ProcfsReader.IsRunning(o.Pid, o.StartTicks)) is { Pid: > 0 } other)
            throw new SensorException($"another guard watch (pid {other.Pid}) enforces on this host; stop it first, or run this one under an audit policy (mode = \"audit\") to only observe");
        KernelSession kernel = KernelSession.Open(kernelOptions);
        GuardSensor sensor;
        try
        {
            // Attached first, then seeded: a process born in between is seen twice, never missed.
            // The kernel judges job cgroups with the same units (PolicyMaps): both name the same jobs.
            var cgroups = new CgroupPaths(kernelOptions.CgroupRoot!, new CgroupJobs(kernelOptions.InKernelRules.JobUnits));
            var table = new ProcessTable(EntityIds.ForThisBoot(), cgroups, new UserNames(), kernel.JobCgroupOf);
            table.SeedFromProcfs();
            MarkSeededJobMembers(table, cgroups, kernel, kernelOptions.InKernelRules.JobRoots);
            PolicyDetectors? detectors = null;
            Quarantines? quarantines = null;
            Responder? responder = null;
            if (options.Policy is { } p)
            {
                detectors = PolicyDetectors.From(p);
                quarantines = new Quarantines(kernelOptions.CgroupRoot!);
                responder = new Responder(new ProcessKiller(kernelOptions.CgroupRoot!), quarantines, p, kernelOptions.GpuDevices);
            }
            sensor = new GuardSensor(kernel, table, sink, options with { Kernel = kernelOptions }, detectors, quarantines, responder);
            sensor.RecordLineage();
            sensor.Confine(options.Policy, table);
            sensor.Register();
            sensor.WatchDrain();
        }
        catch
        {
            kernel.Dispose();
            throw;
        }
        try
        {
            // What ran before this start meets the same rules as what starts later (the kernel never saw it
            // exec): queued here, judged a batch each poll.
            sensor.pipeline.QueueExisting();
            // Last: what others left enforcing goes only once nothing can fail this start.
            if (kernelOptions.InKernelRules.Enforce)
                sensor.ownPins = PinEnforcement(kernel);
            sensor.StartServices();
            sensor.SampleRounding(options.Policy);
        }
        catch
        {
            sensor.Dispose();
            throw;
        }
        sensor.watchdog!.Ready();
        return sensor;
    }

    /// <summary>
    /// This sensor enforces now, and its enforcing programs are pinned so they
    /// outlive it whatever ends it; what a stopped sensor handed over and what
    /// a dead one left pinned can go, since this one's programs are attached.
    /// An auditing sensor never gets here: it removes no one's enforcement.
    /// </summary>
    private static string PinEnforcement(KernelSession kernel)
    {
        if (!ProcfsReader.TryReadStat(Environment.ProcessId, out ProcfsStat self))
            throw new SensorException("cannot read this process's start time from /proc/self/stat");
        string dir = SensorPins.DirectoryOf(Environment.ProcessId, self.StartTicks);
        kernel.PinLinks(GuardPrograms.Enforcing, dir);
        EnforcementKernel.Remove();
        SensorPins.RemoveDead(ProcfsReader.IsRunning);
        return dir;
    }

    /// <summary>
    /// Processes that were inside a job before the sensor started: the kernel
    /// learns of them here (their launcher, and their job's cgroup), so their
    /// children inherit the job at fork and keep it when they leave the
    /// cgroup. The kernel judges their cgroups by itself at their next exec.
    /// </summary>
    private static void MarkSeededJobMembers(ProcessTable table, CgroupPaths cgroups, KernelSession kernel, IReadOnlyList<string> roots)
    {
        var rootNames = new HashSet<string>(roots.Select(Comm.Of));
        Dictionary<int, (Job Job, ulong CgroupId)> inCgroupJobs = cgroups.JobMembersNow();
        foreach (ProcessEntry entry in table.Entries)
        {
            ProcessEntry? root = rootNames.Count > 0 ? ProcessTable.JobRootByLineage(entry, rootNames) : null;
            bool inCgroupJob = inCgroupJobs.TryGetValue(entry.Pid, out (Job Job, ulong CgroupId) cgroupJob);
            if (root is null && !inCgroupJob)
                continue;
            entry.JobRootPid = root?.Pid ?? 0;
            entry.CgroupJob = inCgroupJob ? cgroupJob.Job : null;
            kernel.MarkJobMember(entry.Pid, new GuardJobMember
            {
                RootPid = (uint)(root?.Pid ?? 0),
                RootStartTimeNs = root is null ? 0 : (ulong)(root.StartTicks * (1_000_000_000 / ClockTicks.PerSecond)),
                CgroupId = inCgroupJob ? cgroupJob.CgroupId : 0,
            });
        }
    }

    /// <summary>
    /// Makes sure the kernel records lineage at fork (pinned, it stays after this
    /// sensor): `guard kill --tree` and tree holds find re-parented descendants
    /// through it, with or without a sensor running.
    /// </summary>
    private void RecordLineage()
    {
        try
        {
            LineageKernel.Ensure().Dispose();
        }
        catch (SensorException e)
        {
            warnings.Add($"lineage is not recorded: {e.Message}; tree kills and holds find only live children");
        }
    }

    /// <summary>
    /// Puts the policy's [[confine]] sections into the kernel (pinned: they stay
    /// in force after this sensor, however it ends) and confines the jobs running
    /// now that a section selects; later ones are confined as they exec.
    /// </summary>
    private void Confine(Policy? policy, ProcessTable processes)
    {
        if (policy is null)
            return;
        confinement = Confinement.Start(policy, options.Kernel.CgroupRoot!);
        if (confinement is null)
            return;
        confinement.Say = options.OnConfineNote;
        confinement.Seed(processes.Entries);
        pipeline.Confinement = confinement;
        judge?.Confinement = confinement;
    }

    /// <summary>
    /// Starts, stops or re-rates the preempting threads for <paramref name="policy"/>:
    /// they run while the randomx rule is on, its sampling rate above 0 and the
    /// rounding program attached.
    /// </summary>
    private void SampleRounding(Policy? policy)
    {
        int rate = policy is not null && policy.ActionFor(Detectors.Randomx) != RuleAction.Off
            && kernel.Attached.Any(a => a.Spec.Name == BpfProgramNames.Fpu) ? policy.Thresholds.RandomxSamplingHz : 0;
        if ((preempting?.RatePerSecond ?? 0) == rate)
            return;
        preempting?.Dispose();
        preempting = null;
        if (rate == 0)
            return;
        try
        {
            preempting = new PreemptingThreads(rate);
            warnings.AddRange(preempting.Warnings);
        }
        catch (SensorException e)
        {
            warnings.Add($"{e.Message}: rounding modes are seen only when threads are switched out of their own accord");
        }
    }

    /// <summary>The threads that switch out what runs on each CPU for the rounding sampling; null when none run.</summary>
    public PreemptingThreads? Preempting => preempting;

    /// <summary>Registers this sensor (pid and start) so `guard kill` refuses it, and nothing that merely runs the same file.</summary>
    private void Register()
    {
        try
        {
            registration = RunningSensors.Register(options.StallLimit);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"cannot register this sensor under {RunningSensors.Directory}: {e.Message}; `guard kill` will not know it");
        }
    }

    /// <summary>Watches this sensor's drain from a thread of its own: systemd's watchdog and the registration's stamp.</summary>
    private void WatchDrain()
    {
        SensorRegistration? stamped = registration;
        watchdog = new DrainWatchdog(
            options.StallLimit, new SystemdNotifier(), stamped is null ? null : stamped.MarkDrained,
            options.OnStall ?? (_ => { }));
    }

    /// <summary>Whether the ring's drain is late by more than the stall limit, as the watchdog last saw.</summary>
    public bool Stalled => watchdog?.Stalled ?? false;

    /// <summary>Tells systemd this sensor is stopping (<see cref="DrainWatchdog.Stopping"/>); any thread, as often as called.</summary>
    public void SayStopping() => watchdog?.Stopping();

    /// <summary>Handles what the kernel has (waiting up to <paramref name="timeoutMs"/>), then the periodic work.</summary>
    public int Poll(int timeoutMs)
    {
        int n = reader.Poll(timeoutMs);
        long now = Libc.NowNs(Libc.ClockBoottime);
        watchdog?.Drained(now);
        PollServices(now, n);
        judge?.OnHashes(table);
        pipeline.JudgeExisting(now, ExistingPerPoll);
        lateJudging?.Poll(now);
        pipeline.EmitConfineDenials();
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
        if (now >= nextHoldCheckNs && holdBreaches is not null)
        {
            nextHoldCheckNs = now + HoldCheckIntervalNs;
            CheckHolds();
        }
        if (now >= nextConfineCheckNs && confinement is not null)
        {
            nextConfineCheckNs = now + 1_000_000_000;
            ReportConfineDenials(now);
        }
        if (now >= nextApprovalCheckNs && confinement?.Approvals is { } approvals)
        {
            // Every 100 ms: a person's decision is carried out, and a denial raises its request, within about that.
            bool whole = now >= nextApprovalExpiryNs;
            nextApprovalCheckNs = now + DeadlineCheckIntervalNs;
            if (whole)
                nextApprovalExpiryNs = now + 1_000_000_000;
            ServeApprovals(approvals, now, whole);
        }
        if (now >= nextQuarantineCheckNs && quarantines is not null)
        {
            // Every second the whole pass (pruning holds whose processes are gone); in between, a
            // deadline's look every 100 ms, so a timeout is carried out within about that of its time.
            nextQuarantineCheckNs = now + 1_000_000_000;
            nextDeadlineCheckNs = now + DeadlineCheckIntervalNs;
            ExpireQuarantines(whole: true);
        }
        else if (now >= nextDeadlineCheckNs && quarantines is not null)
        {
            nextDeadlineCheckNs = now + DeadlineCheckIntervalNs;
            ExpireQuarantines(whole: false);
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
        judge?.FinishRelays((int)SenderLookups.TimeLimit.TotalMilliseconds);
        EndApprovals();
        sink.Flush();
    }

    /// <summary>
    /// Before this sensor detaches: the exec-time kill and the Stratum drop go
    /// on without it, pinned (bpf/enforce.bpf.c), until the next sensor starts.
    /// Returns how many programs were pinned; 0 when the policy kills nothing.
    /// Done once: a second call (a <see cref="StopDeadline"/>'s) returns the
    /// first's count. When the handover fails this sensor's own pinned
    /// programs stay and go on enforcing until the next sensor or
    /// <c>guard detach --all</c>.
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
            if (handedOver is { } done)
                return done;
            // From here the pins are not this sensor's to remove: handed over, or left enforcing.
            handedOver = 0;
            if (ownPins is not { } pins)
                return 0;
            ownPins = null;
            int pinned;
            try
            {
                pinned = EnforcementKernel.HandOver(options.Kernel.InKernelRules, kernel.ReadJobMembers(), options.Kernel.CgroupRoot!);
            }
            catch (SensorException e)
            {
                throw new SensorException($"{e.Message}; this sensor's own programs stay pinned under {pins} and go on enforcing");
            }
            // The handed-over programs enforce now; this sensor's own pins would only duplicate them.
            SensorPins.Remove(pins);
            handedOver = pinned;
            return pinned;
        }
        finally
        {
            Monitor.Exit(handOverGate);
        }
    }

    /// <summary>How often held processes and cgroups are checked for attempts to let them run: the longest a hold the kernel could not answer stays broken.</summary>
    private const long HoldCheckIntervalNs = 250_000_000;

    /// <summary>How often a running sensor looks for a hold's deadline that has passed (a map walk): a timeout's lateness, at most.</summary>
    private const long DeadlineCheckIntervalNs = 100_000_000;

    /// <summary>
    /// While holds are pinned: the GPU ioctl program follows their members, and
    /// what the kernel counted as attempts to let a held process or cgroup run is
    /// answered where the kernel could not and reported (<see cref="HoldBreaches"/>).
    /// </summary>
    private void CheckHolds()
    {
        if (!QuarantineKernel.Pinned)
        {
            if (followingHolds)
                kernel.FollowHolds(null);
            followingHolds = false;
            return;
        }
        try
        {
            using QuarantineKernel? holds = QuarantineKernel.OpenPinned();
            if (holds is null)
                return;
            kernel.FollowHolds(holds);
            followingHolds = true;
            foreach (HoldBreach breach in holdBreaches!.Check(holds, kernel.HeldGpuIoctls()))
                emitter.Emit(breach.ToActionEvent(breach.Pid > 0 ? table.Find(breach.Pid, breach.StartTicks) : null));
        }
        catch (Exception e) when (e is SensorException or IOException or UnauthorizedAccessException)
        {
            // Tried again at the next check; the kernel's own answers stand meanwhile.
        }
    }

    /// <summary>What the kernel denied confined jobs since the last report, reported once per job, destination and minute (<see cref="ConfineDenials"/>).</summary>
    private void ReportConfineDenials(long now)
    {
        try
        {
            foreach (ConfineEvent denial in confineDenials.Check(confinement!.Kernel.Denials(), now, confinement.Rules, confinement.Jobs, table))
                emitter.Emit(denial);
            // What DNS answers allowed and whose TTL ended: gone from the trie, which the kernel fills.
            confinement.Kernel.RemoveExpired((ulong)now, ConfineRules.FirstJobSet);
            // Job cgroups that went: their programs' pins go too.
            confinement.ReleaseGone();
        }
        catch (SensorException)
        {
            // Read again in a second; the kernel keeps counting meanwhile.
        }
    }

    /// <summary>
    /// The approval gate's turn: decisions people wrote are carried out and answered,
    /// denials under ask raise requests, and (each second, <paramref name="whole"/>)
    /// requests and approvals whose time ended go; then the list is written for guard approvals.
    /// </summary>
    private void ServeApprovals(Approvals approvals, long now, bool whole)
    {
        try
        {
            foreach (ApprovalDecision decision in ApprovalChannel.TakeDecisions())
            {
                (bool done, string line, ActionEvent? action) = approvals.Decide(decision, now);
                ApprovalChannel.Answer(decision.Id, done, line);
                if (action is not null)
                    emitter.Emit(action);
            }
            foreach (ConfineEvent request in approvals.Scan(confinement!.Kernel.Denials(), now, confinement.Rules, confinement.Jobs, table))
                emitter.Emit(request);
            foreach (ActionEvent ended in approvals.TakeQueued())
                emitter.Emit(ended);
            if (whole)
            {
                foreach (ActionEvent ended in approvals.Expire(now))
                    emitter.Emit(ended);
                ApprovalChannel.RemoveStale();
            }
            approvals.Publish();
        }
        catch (Exception e) when (e is SensorException or IOException or UnauthorizedAccessException)
        {
            // Tried again in 100 ms; the kernel denies meanwhile, as it would without the gate.
        }
    }

    /// <summary>The sensor stops: its approvals end with it (removed from the kernel, one action event each), and its list goes.</summary>
    private void EndApprovals()
    {
        if (confinement?.Approvals is not { } approvals)
            return;
        try
        {
            foreach (ActionEvent ended in approvals.EndAll(Libc.NowNs(Libc.ClockBoottime)))
                emitter.Emit(ended);
        }
        catch (SensorException)
        {
            // The next sensor's start removes what is left.
        }
        ApprovalChannel.RemoveList();
    }

    /// <summary>Holds whose timeout passed are killed or released, whoever made them: the pinned state is the host's, not this sensor's.</summary>
    private void ExpireQuarantines(bool whole)
    {
        if (!QuarantineKernel.Pinned)
            return;
        try
        {
            // Between whole passes, only when a deadline has passed.
            if (!whole && !Quarantines.AnyDue(DateTimeOffset.UtcNow))
                return;
            foreach (QuarantineOutcome outcome in quarantines!.Expire(DateTimeOffset.UtcNow))
            {
                // A hold that cannot be ended is tried every second: said once, not every time.
                if (outcome.Done || expiryFailuresReported.Add($"{outcome.Action} {outcome.Message}"))
                    emitter.Emit(outcome.ToActionEvent(null));
            }
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
        heartbeat.DetectorFaults = judge?.Faults ?? 0;
        heartbeat.Processes = table.Count;
        heartbeat.HashesDropped = detectors?.Executables.Dropped ?? 0;
        heartbeat.HashesTimedOut = detectors?.Executables.TimedOut ?? 0;
        heartbeat.RelayLookupsDropped = judge?.RelayLookupsDropped ?? 0;
        heartbeat.RelayLookupsTimedOut = judge?.RelayLookupsTimedOut ?? 0;
        heartbeat.UptimeSeconds = (nowNs - startNs) / 1e9;
        heartbeat.Outputs = sink.Health;
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
            DetectorFaults = (judge?.Faults ?? 0, judge?.LastFault),
            HashesDropped = detectors?.Executables.Dropped ?? 0,
            HashesTimedOut = detectors?.Executables.TimedOut ?? 0,
        };
    }

    /// <summary>Detaches every program this sensor attached, its pinned ones too: call <see cref="HandOverEnforcement"/> first to keep enforcing.</summary>
    public void Dispose()
    {
        StopServices(); // first: the metrics server reads the kernel's maps
        watchdog?.Dispose();
        preempting?.Dispose();
        registration?.Dispose();
        detectors?.Executables.Dispose();
        (gpuSource as IDisposable)?.Dispose();
        relays?.Dispose(); // before the kernel: its lookups read a kernel map
        lateJudging?.Dispose();
        reader.Dispose();
        confinement?.Dispose(); // its descriptors only: confinement stays pinned, in force
        kernel.Dispose();
        lock (handOverGate)
        {
            if (ownPins is not null)
                SensorPins.Remove(ownPins);
            ownPins = null;
        }
    }
}
