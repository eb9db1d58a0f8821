using System.Globalization;
using Guard.Benchmarks;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;

// Guard's overhead benchmark. Every figure is a ratio or a difference against
// a baseline measured in the same run, alternating baseline and sensor runs,
// so a noisy shared machine moves both sides alike. Needs root.
//
//   dotnet run -c Release --project tests/Guard.Benchmarks [-- --quick] [--guard artifacts/guard/guard]

bool quick = args.Contains("--quick");
string? guardBinary = args.SkipWhile(a => a != "--guard").Skip(1).FirstOrDefault();
string? only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
bool Section(string name) => only is null || only == name;
int rounds = quick ? 2 : 5;
string work = Directory.CreateTempSubdirectory("guard-bench-").FullName;
var storms = Storms.Build(work);
var report = new List<string>();

void Line(string text)
{
    Console.WriteLine(text);
    report.Add(text);
}

double Median(IEnumerable<double> values)
{
    double[] v = [.. values.Order()];
    return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
}

// Runs baseline and with-sensor alternately; returns the medians in ns/op.
// Each round's with/baseline ratio of the last Compare: a drift of the shared machine moves a round's pair alike.
var roundRatios = new List<double>();

// The per-round ratios of the last Compare: their median and interquartile range.
string Spread()
{
    double[] r = [.. roundRatios.Order()];
    return r.Length == 0 ? "" : $"per-round ratio median {Median(r):F3}x, quartiles {r[r.Length / 4]:F3}-{r[(3 * r.Length) / 4]:F3}x, {r.Length} rounds";
}

// With cgroup, every storm (baseline too) runs in that cgroup v2 directory; with programs, the
// programs' own time is counted over the with-sensor runs.
(double Base, double With) Compare(string mode, long count, Func<IDisposable> attach, Action<IDisposable, int>? watch = null, int roundsFactor = 1, string? cgroup = null, ProgramRunTimes? programs = null)
{
    var baseline = new List<double>();
    var with = new List<double>();
    roundRatios.Clear();
    storms.Run(mode, Math.Max(count / 10, 1), cgroup: cgroup); // warm caches
    for (int r = 0; r < rounds * roundsFactor; r++)
    {
        baseline.Add(storms.Run(mode, count, cgroup: cgroup));
        using IDisposable sensor = attach();
        storms.Run(mode, Math.Max(count / 10, 1), cgroup: cgroup); // the sensor's first events: JIT, table growth
        using (programs?.Measure())
            with.Add(storms.Run(mode, count, pid => watch?.Invoke(sensor, pid), cgroup: cgroup));
        roundRatios.Add(with[^1] / baseline[^1]);
    }
    return (Median(baseline), Median(with));
}

InProcessSensor Watch(params GpuDevice[] gpus) => new(new SensorOptions { Kernel = new KernelOptions { GpuDevices = gpus } });

// The rounding sampling's preempting threads (a policy's randomx_sampling_hz; GUARD_BENCH_SAMPLING_HZ, default the built-in rate) beside the sensor.
int samplingHz = int.TryParse(Environment.GetEnvironmentVariable("GUARD_BENCH_SAMPLING_HZ"), out int hz) && hz > 0 ? hz : Guard.Sensor.Detection.Thresholds.DefaultRandomxSamplingHz;
IDisposable WatchPreempting() => new PreemptedSensor(Watch(), new Guard.Sensor.Interop.PreemptingThreads(samplingHz));

Line($"guard benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {rounds} alternating rounds, medians");

// 1. fork+exec storm, and every exec delivered at the default ring size.
if (Section("forkexec"))
{
    long forks = quick ? 2000 : 10_000;
    long delivered = 0;
    ulong drops = 0;
    (double b1, double w1) = Compare("forkexec", forks, () => Watch(), (s, pid) => ((InProcessSensor)s).WatchedParent = pid);
    {
        using InProcessSensor s = Watch();
        storms.Run("forkexec", forks, pid => s.WatchedParent = pid);
        s.Settle(forks, TimeSpan.FromSeconds(10));
        delivered = s.ExecsOfWatchedChildren;
        drops = s.Drops;
    }
    Line($"fork+exec of /bin/true x{forks}: {b1 / 1000:F1} us bare, {w1 / 1000:F1} us watched: {w1 / b1:F3}x (bar 1.05x); execs delivered {delivered}/{forks}, ring drops {drops}");
    (double b1p, double w1p) = Compare("forkexec", forks, WatchPreempting);
    Line($"fork+exec of /bin/true x{forks}, watched with the preempting threads at {samplingHz} Hz a CPU: {b1p / 1000:F1} us bare, {w1p / 1000:F1} us: {w1p / b1p:F3}x (bar 1.03x); {Spread()}");
    (double b1t, double w1t) = Compare("forkexec", forks, () => new Guard.Sensor.Interop.PreemptingThreads(samplingHz));
    Line($"fork+exec of /bin/true x{forks}, the preempting threads alone (their share of the above): {b1t / 1000:F1} us bare, {w1t / 1000:F1} us: {w1t / b1t:F3}x; {Spread()}");
}

// 1b. the same storm with the metrics endpoint on and scraped (GUARD_BENCH_SCRAPE_MS apart, default 1000:
// fifteen times Prometheus's default rate), against it off.
if (Section("metrics"))
{
    long forks = quick ? 2000 : 10_000;
    var off = new List<double>();
    var on = new List<double>();
    long answered = 0, size = 0;
    int scrapeMs = int.TryParse(Environment.GetEnvironmentVariable("GUARD_BENCH_SCRAPE_MS"), out int ms) && ms > 0 ? ms : 1000;
    storms.Run("forkexec", forks / 10);
    for (int r = 0; r < rounds * 2; r++)
    {
        // Which goes first alternates: a drift of the machine moves both alike.
        for (int side = 0; side < 2; side++)
        {
            bool metrics = (r + side) % 2 == 0;
            using var s = new InProcessSensor(new SensorOptions { MetricsEndpoint = metrics ? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0) : null });
            using MetricsScraper? scraper = metrics ? new MetricsScraper(s.Sensor.MetricsEndpoint!, TimeSpan.FromMilliseconds(scrapeMs)) : null;
            storms.Run("forkexec", Math.Max(forks / 10, 1));
            (metrics ? on : off).Add(storms.Run("forkexec", forks));
            answered += scraper?.Answered ?? 0;
            size = Math.Max(size, scraper?.LastBytes ?? 0);
        }
    }
    Line($"fork+exec of /bin/true x{forks}, metrics on and scraped every {scrapeMs} ms vs off: {Median(on) / 1000:F1} us vs {Median(off) / 1000:F1} us: {Median(on) / Median(off):F3}x (bar 1.03x); {answered} scrapes answered, {size} bytes each");
}

// 2. loopback connects with a first send each.
if (Section("connect"))
{
    long connects = quick ? 2000 : 10_000;
    // Each run is short (under half a second), so more rounds steady the median.
    (double b2, double w2) = Compare("connect", connects, () => Watch(), roundsFactor: 3);
    Line($"loopback TCP connect+send x{connects}: {b2 / 1000:F1} us bare, {w2 / 1000:F1} us watched: {w2 / b2:F3}x (bar 1.05x)");
}

// 2'. the same storm beside what ships: the published native `guard watch` (built-in policy, enforcing), no JIT.
if (guardBinary is not null && Section("connect-native"))
{
    long connects = quick ? 2000 : 10_000;
    Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
    Environment.SetEnvironmentVariable("GUARD_RUN_DIR", Environment.GetEnvironmentVariable("GUARD_RUN_DIR") ?? Path.Combine(work, "run"));
    (double bn, double wn) = Compare("connect", connects, () => new NativeWatch(guardBinary, work), roundsFactor: 3);
    Line($"loopback TCP connect+send x{connects} beside the native guard watch (built-in policy): {bn / 1000:F1} us bare, {wn / 1000:F1} us watched: {wn / bn:F3}x (bar 1.05x); {Spread()}");
}

// 2''. where the native sensor's share of the storm is: bare, then the native guard watch stopped
// (SIGSTOP: its programs run, its records wait; a 256 MiB ring, so that the storm's records, about
// 4 MiB, never reach the 1/16 of it past which each record would wake the stopped reader), then
// the same sensor continued and read, alternating. With kernel.bpf_stats_enabled on for the whole
// sensor's runs, the time each of its programs took per connect.
if (guardBinary is not null && Section("connect-native-split"))
{
    long connects = quick ? 2000 : 10_000;
    Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
    Environment.SetEnvironmentVariable("GUARD_RUN_DIR", Environment.GetEnvironmentVariable("GUARD_RUN_DIR") ?? Path.Combine(work, "run"));
    var bare = new List<double>();
    var kernelOnly = new List<double>();
    var whole = new List<double>();
    var perProgram = new ProgramRunTimes();
    storms.Run("connect", connects / 10);
    for (int r = 0; r < rounds * 3; r++)
    {
        bare.Add(storms.Run("connect", connects));
        using var native = new NativeWatch(guardBinary, work, ringSize: "256M");
        storms.Run("connect", connects / 10);
        native.Paused = true;
        kernelOnly.Add(storms.Run("connect", connects));
        native.Paused = false;
        Thread.Sleep(1000); // its backlog read
        using (perProgram.Measure())
            whole.Add(storms.Run("connect", connects));
    }
    double b = Median(bare), k = Median(kernelOnly), w = Median(whole);
    Line($"loopback TCP connect+send x{connects} beside the native guard watch: {b / 1000:F1} us bare, {k / 1000:F1} us with its reader stopped (kernel only), {w / 1000:F1} us whole: kernel {k / b:F3}x, whole {w / b:F3}x (bar 1.05x); kernel only per round {string.Join(" ", kernelOnly.Zip(bare, (x, y) => (x / y).ToString("F3", CultureInfo.InvariantCulture)))}");
    Line($"  its programs per connect (bpf_stats, {rounds * 3} storms of {connects}): {perProgram.PerOperation(connects * rounds * 3)}");
}

// 2c. the floor under the connect storm: what any sensor that follows every TCP stream from its
// first byte costs here (floor.bpf.c: storage made at each connect, found at each packet sent, at the
// cgroup v2 root; nothing read or reported), then the same with empty programs on the tracepoints
// Guard's other detections hook, and, with --guard, the native guard watch with its reader stopped
// (its kernel share, as in connect-native-split): each run against the bare run just before it.
if (Section("connect-floor"))
{
    long connects = quick ? 2000 : 10_000;
    var floor = new List<double>();
    var floorTraced = new List<double>();
    var guardKernel = new List<double>();
    var floorPrograms = new ProgramRunTimes("floor_");
    if (guardBinary is not null)
    {
        Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
        Environment.SetEnvironmentVariable("GUARD_RUN_DIR", Environment.GetEnvironmentVariable("GUARD_RUN_DIR") ?? Path.Combine(work, "run"));
    }

    // One bare run, then one with what attach makes (a NativeWatch paused: its kernel share); the ratio.
    void RatioTo(Func<IDisposable> attach, List<double> ratios, ProgramRunTimes? programs = null)
    {
        double bare = storms.Run("connect", connects);
        using IDisposable attached = attach();
        storms.Run("connect", connects / 10);
        if (attached is NativeWatch native)
            native.Paused = true;
        using (programs?.Measure())
            ratios.Add(storms.Run("connect", connects) / bare);
    }

    storms.Run("connect", connects / 10);
    for (int r = 0; r < rounds * 3; r++)
    {
        RatioTo(() => new StreamFloorPrograms(work, tracepoints: false), floor, floorPrograms);
        RatioTo(() => new StreamFloorPrograms(work, tracepoints: true), floorTraced);
        if (guardBinary is not null)
            RatioTo(() => new NativeWatch(guardBinary, work, ringSize: "256M"), guardKernel);
    }
    string Runs(List<double> ratios) => string.Join(" ", ratios.Select(x => x.ToString("F3", CultureInfo.InvariantCulture)));
    Line($"loopback TCP connect+send x{connects}, medians of each run's ratio to the bare run before it: the floor of following every stream (storage at connect, a lookup at egress) {Median(floor):F3}x; with empty programs on Guard's tracepoints {Median(floorTraced):F3}x"
        + (guardBinary is null ? "" : $"; the native guard watch's kernel share (reader stopped) {Median(guardKernel):F3}x") + " (bar 1.05x)");
    Line($"  per run: floor {Runs(floor)}; traced {Runs(floorTraced)}" + (guardBinary is null ? "" : $"; guard {Runs(guardKernel)}"));
    Line($"  the floor's programs per connect (bpf_stats, {rounds * 3} storms of {connects}): {floorPrograms.PerOperation(connects * rounds * 3)}");
}

// 2a. where the connect storm's cost is: the kernel's programs alone (the ring not read while the
// storm runs; read after, untimed) against the whole sensor, each against bare, alternating. The
// ring is 128 MiB here, so that the storm's records (about 4 MiB) never reach the 1/16 of it at
// which every record would wake the reader: unread, the default ring would cost an interrupt a record.
if (Section("connect-split"))
{
    long connects = quick ? 2000 : 10_000;
    var bare = new List<double>();
    var kernelOnly = new List<double>();
    var whole = new List<double>();
    storms.Run("connect", connects / 10);
    for (int r = 0; r < rounds * 3; r++)
    {
        bare.Add(storms.Run("connect", connects));
        using var s = new InProcessSensor(new SensorOptions { Kernel = new KernelOptions { RingBufferBytes = 128 << 20 } });
        storms.Run("connect", connects / 10);
        s.Drain();
        s.Paused = true;
        kernelOnly.Add(storms.Run("connect", connects));
        s.Paused = false;
        s.Drain();
        whole.Add(storms.Run("connect", connects));
    }
    double b = Median(bare), k = Median(kernelOnly), w = Median(whole);
    Line($"loopback TCP connect+send x{connects}: {b / 1000:F1} us bare, {k / 1000:F1} us kernel only (ring not read), {w / 1000:F1} us whole sensor: kernel {k / b:F3}x, whole {w / b:F3}x; kernel only runs {string.Join(" ", kernelOnly.Select(x => (x / b).ToString("F3", CultureInfo.InvariantCulture)))}");
}

// 2b. confinement: a confined job's connect storm (its connects allowed, so fully judged),
// and the same storm outside every confined job, each against no confinement at all. A cgroup
// job (a stand-in Slurm job cgroup; the programs on its cgroup alone) first, then a launcher's
// tree (the programs at the root while a tree may be confined). --only confine-job: the first alone.
if (Section("confine") || Section("confine-job"))
{
    // Confinement is pinned: under a pin root of this run's own, never a production one.
    Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
    long connects = quick ? 2000 : 10_000;
    string top = Path.Join(KernelMounts.FindCgroup2Root(), $"guard-bench-{Environment.ProcessId}");
    string job = Path.Join(top, "job_1");
    string outside = Path.Join(top, "outside");
    Directory.CreateDirectory(job);
    Directory.CreateDirectory(outside);
    try
    {
        var jobPrograms = new ProgramRunTimes();
        (double bc, double wc) = Compare("connect", connects, () => new ConfinedJob(null, jobCgroup: job), roundsFactor: 3, cgroup: job, programs: jobPrograms);
        Line($"confined cgroup job's loopback TCP connect+send x{connects}: {bc / 1000:F1} us unconfined, {wc / 1000:F1} us confined: {wc / bc:F3}x (bar 1.05x); {Spread()}; denied {ConfinedJob.TotalDenied}");
        Line($"  the confine programs per connect (bpf_stats): {jobPrograms.PerOperation(connects * rounds * 3)}");
        if (Section("confine"))
        {
            (double bo, double wo) = Compare("connect", connects, () => new ConfinedJob(null, jobCgroup: job), roundsFactor: 3, cgroup: outside);
            Line($"connect+send outside every confined job (a cgroup job confined) x{connects}: {bo / 1000:F1} us with no confinement, {wo / 1000:F1} us with the job confined: {wo / bo:F3}x (bar 1.01x); {Spread()}");
            (double bf, double wf) = Compare("forkexec", quick ? 1000 : 5000, () => new ConfinedJob(null, jobCgroup: job), roundsFactor: 2, cgroup: outside);
            Line($"fork+exec outside every confined job (a cgroup job confined): {bf / 1000:F1} us with no confinement, {wf / 1000:F1} us with the job confined: {wf / bf:F3}x (bar 1.01x); {Spread()}");
            (double bt, double wt) = Compare("connect", connects, () => new ConfinedJob("storms"), roundsFactor: 3, cgroup: outside);
            Line($"confined launcher tree's loopback TCP connect+send x{connects}: {bt / 1000:F1} us unconfined, {wt / 1000:F1} us confined: {wt / bt:F3}x (bar 1.05x); {Spread()}; denied {ConfinedJob.TotalDenied}");
            (double bn, double wn) = Compare("connect", connects, () => new ConfinedJob("trainer"), roundsFactor: 3, cgroup: outside);
            Line($"connect+send outside every confined job (a launcher named: root programs) x{connects}: {bn / 1000:F1} us with no confinement, {wn / 1000:F1} us with the section attached: {wn / bn:F3}x (bar 1.01x); {Spread()}");
        }
    }
    finally
    {
        Directory.Delete(job);
        Directory.Delete(outside);
        Directory.Delete(top);
    }
}

// 2c. exec confinement: a confined job's fork+exec storm (/bin/true, in no denied class, so
// every exec goes through the whole judgement: inode, name, comm, the directories above it)
// with every class denied, against no confinement at all; and the kills it makes, counted.
if (Section("confine-exec"))
{
    Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
    const string ExecPolicy = "exec.deny = [\"shells\", \"package-managers\", \"compilers\", \"downloaders\", \"memfd\", \"world-writable\", \"/opt/nothing/*\"]\ngpu = [\"0\"]\n";
    (double be, double we) = Compare("forkexec", quick ? 1000 : 5000, () => new ConfinedJob("storms", ExecPolicy), roundsFactor: 3);
    Line($"confined job's fork+exec with an exec policy: {be / 1000:F1} us unconfined, {we / 1000:F1} us confined: {we / be:F3}x (bar 1.03x); {Spread()}");
}

// 3. syscalls that no Guard hook should touch, with no GPU configured.
long calls = quick ? 1_000_000 : 5_000_000;
if (Section("syscalls"))
{
    (double b3, double w3) = Compare("getppid", calls, () => Watch());
    Line($"getppid x{calls}: {b3:F1} ns bare, {w3:F1} ns watched: {w3 / b3:F3}x (bar 1.02x)");
    (double b4, double w4) = Compare("pipe", calls / 5, () => Watch());
    Line($"pipe write+read x{calls / 5}: {b4:F1} ns bare, {w4:F1} ns watched: {w4 / b4:F3}x (bar 1.02x)");
}

// Socket writes: every one makes the kernel call sk_data_ready, where the unix-stream capture runs.
if (Section("sockets"))
{
    (double bu, double wu) = Compare("unix", calls / 5, () => Watch());
    Line($"unix stream write+read x{calls / 5}: {bu:F1} ns bare, {wu:F1} ns watched: {wu / bu:F3}x (bar 1.02x)");
    (double bt, double wt) = Compare("tcp", calls / 10, () => Watch());
    Line($"loopback TCP write+read x{calls / 10}: {bt:F1} ns bare, {wt:F1} ns watched: {wt / bt:F3}x (bar 1.02x)");
}

// The rounding-mode counter runs at every context switch: a two-process pipe ping-pong.
if (Section("pingpong"))
{
    long messages = quick ? 100_000 : 500_000;
    (double bp, double wp) = Compare("pingpong", messages, () => Watch());
    Line($"pipe ping-pong between two processes x{messages} (a context switch per message): {bp:F0} ns bare, {wp:F0} ns watched: {wp / bp:F3}x (bar 1.05x)");
    (double bpp, double wpp) = Compare("pingpong", messages, WatchPreempting);
    Line($"pipe ping-pong x{messages}, watched with the preempting threads at {samplingHz} Hz a CPU: {bpp:F0} ns bare, {wpp:F0} ns: {wpp / bpp:F3}x (bar 1.05x); {Spread()}");
    (double bpt, double wpt) = Compare("pingpong", messages, () => new Guard.Sensor.Interop.PreemptingThreads(samplingHz));
    Line($"pipe ping-pong x{messages}, the preempting threads alone (their share of the above): {bpt:F0} ns bare, {wpt:F0} ns: {wpt / bpt:F3}x; {Spread()}");
}

// 4. the ioctl program (a stand-in GPU device configured): its cost on other
// syscalls, and on ioctls of processes that never touched a GPU, against an
// empty program on the same tracepoint.
if (Section("ioctl"))
{
    (double g0, double g1) = Compare("getppid", calls, () => Watch(new GpuDevice(1, 7, GpuRole.ResourceManager)));
    Line($"getppid with the ioctl program: {g0:F1} ns bare, {g1:F1} ns: +{g1 - g0:F1} ns (bar +30 ns)");
    foreach (string mode in new[] { "ioctl", "ioctl-nv" })
    {
        (double i0, double iEmpty) = Compare(mode, calls, () => new EmptyIoctlProgram(work));
        (double i0b, double iGuard) = Compare(mode, calls, () => Watch(new GpuDevice(1, 7, GpuRole.ResourceManager)));
        string what = mode == "ioctl" ? "FIONREAD" : "an NVIDIA-shaped command ('F', RM_CONTROL)";
        Line($"ioctl {what} on /dev/null, a process that never touched a GPU: {i0:F1} ns bare, {iEmpty:F1} ns with an empty tracepoint program, {iGuard:F1} ns with guard_ioctl (bare {i0b:F1}): +{iGuard - iEmpty - (i0b - i0):F1} ns beyond the empty program (bar +40 ns)");
    }
}

// 5. user space alone: decode, enrich, encode.
foreach (DecodeThroughput.Result r in Section("decode") ? DecodeThroughput.Measure() : [])
    Line($"decode+enrich+encode, {r.Workload}: {r.RecordsPerSecond / 1000:F0}k records/s on one thread (bar 300k), {r.BytesPerRecord:F1} bytes allocated per record");

// 5a. the same with the file output: decode + table + encode + file write, on one core.
if (Section("fileout"))
{
    DecodeThroughput.Result f = DecodeThroughput.MeasureFileOutput(work);
    Line($"decode+enrich+encode+file write, {f.Workload}: {f.RecordsPerSecond / 1000:F0}k records/s (bar 300k)");
}

// 5b. GPU sampling's own cost, NVML left out.
if (Section("gpu"))
    Line(GpuSampling.Measure());

// 6. enforcement: kills and drops, 100 runs each.
if (Section("enforce"))
{
    foreach (string l in Enforcement.Measure(work, quick ? 20 : 100))
        Line(l);
}

// 6b. following a network finding back through a local relay.
if (Section("relay"))
{
    foreach (string l in RelayLookup.Measure(work, quick ? 100 : 1000))
        Line(l);
}

// 6c. an executable read for its hash and a miner's markers, off the event thread.
if (Section("content"))
{
    foreach (string l in ContentScan.Measure(work, quick ? 3 : 7))
        Line(l);
}

// 7. the native binary: resident memory with 10,000 live processes, time to READY=1 and to first event.
if (guardBinary is not null && Section("native"))
{
    // Each run hands its enforcement over at its stop: under a pin root and run directory of this run's own.
    Environment.SetEnvironmentVariable("GUARD_PIN_ROOT", Environment.GetEnvironmentVariable("GUARD_PIN_ROOT") ?? $"/sys/fs/bpf/guard-bench-{Environment.ProcessId}");
    Environment.SetEnvironmentVariable("GUARD_RUN_DIR", Environment.GetEnvironmentVariable("GUARD_RUN_DIR") ?? Path.Combine(work, "run"));
    foreach (string l in NativeBinary.Measure(guardBinary, storms, work, quick ? 2000 : 10_000))
        Line(l);
}
else if (guardBinary is null && Section("native"))
{
    Line("native binary: skipped (pass --guard artifacts/guard/guard after dotnet publish)");
}

Directory.Delete(work, recursive: true);
File.WriteAllLines(Path.Combine(AppContext.BaseDirectory, "last-run.txt"), report);
return 0;
