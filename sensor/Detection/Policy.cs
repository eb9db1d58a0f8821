using Guard.Sensor.Events;

namespace Guard.Sensor.Detection;

public enum PolicyMode
{
    /// <summary>Rules act.</summary>
    Enforce,

    /// <summary>Rules only alert.</summary>
    Audit,
}

/// <summary>A detector: its rule name, and whether its evidence may act alone.</summary>
public sealed record Detector(string Name, bool Strong, string Evidence);

/// <summary>The detectors a policy can configure; a rule names one of them. Findings name their rule through these.</summary>
public static class Detectors
{
    public static readonly Detector KnownMiner = new("known-miner", true, "a known miner executable, killed wherever it runs");
    public static readonly Detector MinerInJob = new("miner-in-job", true, "a miner name that other programs share, inside a training job");
    public static readonly Detector MinerArguments = new("miner-arguments", true, "miner arguments (a stratum+tcp:// URL, --donate-level, a pool's host:port, a wallet whose checksum holds; fragments ordinary tools share only with a second kind of signal)");
    public static readonly Detector MinerHash = new("miner-hash", true, "an executable whose SHA-256 is on the deny list");
    public static readonly Detector Stratum = new("stratum", true, "a complete Stratum first line on a new outbound connection");
    public static readonly Detector PoolSni = new("pool-sni", true, "a TLS ClientHello naming a pool domain");
    public static readonly Detector Randomx = new("randomx", true, "the FPU rounding mode cycling through its directed modes (RandomX)");
    public static readonly Detector GpuIntruder = new("gpu-intruder", true, "GPU compute by a process in a job that is not one of its workers, or outside every job by no GPU service");
    public static readonly Detector PoolDns = new("pool-dns", false, "a DNS query for a pool domain");
    public static readonly Detector PoolPort = new("pool-port", false, "a connect to a pool port from inside a job");
    public static readonly Detector Staging = new("staging", false, "a job's descendant running an unlinked, memfd or world-writable file");
    public static readonly Detector UnverifiedExecutable = new("unverified-executable", false, "an executable that could not be hashed as the file the kernel ran, while the deny list names hashes");
    public static readonly Detector MinerContent = new("miner-content", true, "an executable whose bytes carry two kinds of a miner's markers (its algorithms, its Stratum methods, its option table), whatever its name");
    public static readonly Detector ExecutableMarkers = new("executable-markers", false, "an executable packed (UPX) or carrying one kind of a miner's markers only");

    /// <summary>Every detector, in the order `guard policy` lists them.</summary>
    public static readonly IReadOnlyList<Detector> All =
        [KnownMiner, MinerInJob, MinerArguments, MinerHash, MinerContent, Stratum, PoolSni, Randomx, GpuIntruder, PoolDns, PoolPort, Staging, UnverifiedExecutable, ExecutableMarkers];

    public static Detector? Find(string name) => All.FirstOrDefault(d => d.Name == name);
}

/// <summary>
/// What a training job is. <see cref="Roots"/>: launchers (comm names) whose
/// tree is a job. <see cref="Services"/>: long-running GPU services (comm and
/// unit stem: nvidia-persistenced, DCGM, Guard itself), never jobs.
/// <see cref="Units"/>: systemd units ("trainer.service") whose cgroup is a
/// job; any other unit is none, so a process in cron.service with no
/// launcher above it is outside every job. Slurm jobs, pods and containers are
/// jobs by their cgroup whatever the policy says (see CgroupJobs).
/// </summary>
public sealed record JobPolicy(IReadOnlyList<string> Roots, IReadOnlyList<string> Services)
{
    /// <summary>Unit names ([jobs] units, with their suffix: .service, .scope or .slice) whose cgroup is a job; none by default.</summary>
    public IReadOnlyList<string> Units { get; init; } = [];
}

public sealed record AllowList(
    IReadOnlyList<string> Executables, IReadOnlyList<string> Hashes, IReadOnlyList<string> Users,
    IReadOnlyList<string> Jobs, IReadOnlyList<string> Destinations);

/// <summary>The policy's lists of public miner indicators.</summary>
/// <param name="MinerArguments">Command-line fragments only miners use: each acts alone.</param>
/// <param name="MinerArgumentsWeak">Command-line fragments ordinary tools share (`--algo=`): each counts only beside another kind of signal.</param>
public sealed record Indicators(
    IReadOnlyList<string> MinerNames, IReadOnlyList<string> MinerNamesInJobs, IReadOnlyList<string> MinerArguments,
    IReadOnlyList<string> MinerArgumentsWeak, IReadOnlyList<string> MinerHashes, IReadOnlyList<int> PoolPorts,
    IReadOnlyList<string> PoolDomains, IReadOnlyList<string> StratumMethods);

/// <summary>
/// The policy's [thresholds]. RandomX: <see cref="RandomxRoundingSwitches"/>
/// context switches in non-default rounding modes within
/// <see cref="RandomxWindowSeconds"/> seconds, seen in at least
/// <see cref="RandomxDistinctModes"/> of the three (see RoundingFindings).
/// </summary>
public sealed record Thresholds(int RandomxRoundingSwitches, int RandomxWindowSeconds)
{
    /// <summary>
    /// How many of the three non-default rounding modes a process must be seen
    /// in (1 to 3). 3 by default: RandomX's CFROUND visits all of them, while
    /// interval arithmetic holds FE_UPWARD (CGAL) or alternates FE_DOWNWARD and
    /// FE_UPWARD (Boost's rounded_arith_std) and never rounds toward zero.
    /// </summary>
    public int RandomxDistinctModes { get; init; } = Abi.GuardRounding.Modes;

    /// <summary>
    /// How often, per second, each CPU's running thread is switched out by the
    /// sensor's own preempting thread on that CPU (Interop.PreemptingThreads),
    /// so the kernel reads its rounding mode at a rate Guard chooses rather
    /// than only when the thread sleeps or is preempted; 0 to
    /// <see cref="MaxRandomxSamplingHz"/>, 0: only the switches the threads
    /// make themselves. 100 by default (measured: README, RandomX).
    /// </summary>
    public int RandomxSamplingHz { get; init; } = DefaultRandomxSamplingHz;

    /// <summary>The built-in <see cref="RandomxSamplingHz"/>.</summary>
    public const int DefaultRandomxSamplingHz = 100;

    /// <summary>The highest <see cref="RandomxSamplingHz"/>: a wake a millisecond on every CPU, the kernel's own tick at HZ=1000.</summary>
    public const int MaxRandomxSamplingHz = 1000;

    /// <summary>SM (or, for a device, GPU) utilisation that counts as busy.</summary>
    public int GpuBusyPercent { get; init; } = 50;

    /// <summary>How long busy must last to be sustained.</summary>
    public int GpuBusySeconds { get; init; } = 30;
}

/// <summary>How long a quarantine-job hold lasts (0: until a person decides) and what its end does.</summary>
public sealed record QuarantinePolicy(int TimeoutMinutes, bool KillOnTimeout);

/// <summary>The effective policy: the built-in one with a file laid over it.</summary>
public sealed record Policy(
    PolicyMode Mode, JobPolicy Jobs, AllowList Allow, Indicators Indicators, Thresholds Thresholds,
    IReadOnlyDictionary<string, RuleAction> Rules, IReadOnlyList<string> Sources)
{
    public const string SystemPath = "/etc/guard/policy.toml";

    public QuarantinePolicy Quarantine { get; init; } = new(0, false);

    /// <summary>The [[confine]] sections, in the order the files give them; a job is confined by the first that selects it.</summary>
    public IReadOnlyList<ConfineSection> Confine { get; init; } = [];

    /// <summary>What the detector's rule does under this policy: under audit, anything but off only alerts.</summary>
    public RuleAction ActionFor(Detector detector) =>
        Mode == PolicyMode.Audit && Rules.GetValueOrDefault(detector.Name) != RuleAction.Off ? RuleAction.Alert : Rules.GetValueOrDefault(detector.Name);
}
