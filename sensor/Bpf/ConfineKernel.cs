using System.Globalization;
using System.Runtime.InteropServices;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>One allow entry: a prefix of a rule set and the ports allowed there.</summary>
/// <param name="Set">The rule set (a section's, or a job's own).</param>
/// <param name="Address">16 bytes, IPv6 or IPv4 v4-mapped, bits after the prefix clear.</param>
/// <param name="PrefixLength">Address bits that count (IPv4 /n is 96 + n).</param>
/// <param name="Ports">The ports allowed there: at most <see cref="GuardConfinePorts.Capacity"/> ranges.</param>
/// <param name="ExpiresNs">CLOCK_BOOTTIME ns after which it allows nothing; 0: never.</param>
public sealed record ConfineAllowEntry(uint Set, byte[] Address, int PrefixLength, IReadOnlyList<GuardPortRange> Ports, ulong ExpiresNs);

/// <summary>
/// The kernel side of confinement (bpf/confine.bpf.c): its maps and the links
/// of its programs, all pinned under PIN_ROOT/confine from the first start
/// with a [[confine]] section, so confinement is in force whether a sensor
/// runs or not, until `guard detach --all`. The lists change live through
/// the maps; nothing is attached again.
/// </summary>
public sealed unsafe partial class ConfineKernel : IDisposable
{
    private const string ObjectName = "confine.bpf.o";

    /// <summary>GUARD_COMM_LEN: a launcher's name as the kernel keeps it, NUL included.</summary>
    private const int CommCapacity = 16;

    /// <summary>Attach order: the tree's bookkeeping first, so no member forks unseen once the deny programs run.</summary>
    private static readonly string[] TracingPrograms = [BpfProgramNames.ConfineExit, BpfProgramNames.ConfineFork, BpfProgramNames.ConfineExec, BpfProgramNames.ConfineSend];

    /// <summary>
    /// The job instances, attached to each confined job cgroup (and so run by
    /// its processes and those of every cgroup below it), with their attach types
    /// (enum bpf_attach_type, uapi linux/bpf.h).
    /// </summary>
    private static readonly (string Name, int AttachType)[] JobPrograms =
    [
        // sockops first: a listener's child established once egress runs is marked inbound.
        (BpfProgramNames.ConfineSockOps, SockOpsAttachType), (BpfProgramNames.ConfineEgress, 1), (BpfProgramNames.ConfineIngress, 0), (BpfProgramNames.ConfineConnect4, 10), (BpfProgramNames.ConfineConnect6, 11),
        (BpfProgramNames.ConfineSendMsg4, 14), (BpfProgramNames.ConfineSendMsg6, 15), (BpfProgramNames.ConfineDev, 6),
    ];

    /// <summary>BPF_CGROUP_SOCK_OPS (enum bpf_attach_type, uapi linux/bpf.h).</summary>
    private const int SockOpsAttachType = 3;

    /// <summary>
    /// The tree instances, attached at the root only while launcher trees may be
    /// confined (confine_levels bit 0). No sockops among them: a tree member's
    /// socket is judged at egress only when it carries a verdict from its connect or
    /// send (storage, never evicted), so an accepted one needs no mark.
    /// </summary>
    private static readonly (string Name, int AttachType)[] TreePrograms =
    [
        (BpfProgramNames.ConfineTreeEgress, 1), (BpfProgramNames.ConfineTreeIngress, 0), (BpfProgramNames.ConfineTreeConnect4, 10), (BpfProgramNames.ConfineTreeConnect6, 11),
        (BpfProgramNames.ConfineTreeSendMsg4, 14), (BpfProgramNames.ConfineTreeSendMsg6, 15), (BpfProgramNames.ConfineTreeDev, 6),
    ];

    /// <summary>Every cgroup attach type a confine program uses (for <see cref="ProgramsRunIn"/>).</summary>
    public static IReadOnlyList<int> CgroupAttachTypes { get; } = [.. JobPrograms.Select(p => p.AttachType).Distinct()];

    private static readonly string[] Maps =
    [
        BpfMapNames.ConfineCgroups, BpfMapNames.ConfineLevels, BpfMapNames.ConfineTgids, BpfMapNames.ConfineLaunchers,
        BpfMapNames.ConfineAllow, BpfMapNames.ConfineGeneration, BpfMapNames.ConfineDenials, BpfMapNames.ConfineNextSet,
        BpfMapNames.ConfineNames, BpfMapNames.ConfineResolvers,
        BpfMapNames.ConfineExecRules, BpfMapNames.ConfineExecFiles, BpfMapNames.ConfineExecNames, BpfMapNames.ConfineGpu, BpfMapNames.ConfineActs,
        BpfMapNames.ConfineApproved, BpfMapNames.ConfineExecApproved, BpfMapNames.ConfineKinds, BpfMapNames.ConfineVerdicts,
        BpfMapNames.ConfineInbound,
    ];

    private readonly FileDescriptor[] maps;
    private readonly string? rootDirectory;
    private readonly Dictionary<string, FileDescriptor> programs = [];

    private ConfineKernel(FileDescriptor[] maps, string? rootDirectory)
    {
        this.maps = maps;
        this.rootDirectory = rootDirectory;
    }

    /// <summary>The descriptor of the map named <paramref name="name"/> (one of <see cref="Maps"/>): by name, so the list's order is no one's to keep in step.</summary>
    private int MapFd(string name) => maps[Array.IndexOf(Maps, name)].Fd;

    private int CgroupsFd => MapFd(BpfMapNames.ConfineCgroups);

    private int LevelsFd => MapFd(BpfMapNames.ConfineLevels);

    private int TgidsFd => MapFd(BpfMapNames.ConfineTgids);

    private int LaunchersFd => MapFd(BpfMapNames.ConfineLaunchers);

    private int AllowFd => MapFd(BpfMapNames.ConfineAllow);

    private int GenerationFd => MapFd(BpfMapNames.ConfineGeneration);

    private int DenialsFd => MapFd(BpfMapNames.ConfineDenials);

    private int NamesFd => MapFd(BpfMapNames.ConfineNames);

    private int ResolversFd => MapFd(BpfMapNames.ConfineResolvers);

    /// <summary>Where confinement is pinned: its maps by name, its cgroup programs (programs/), the links of its tracing programs, of the tree instances at the root (root/) and of the job instances at each job cgroup (cgroup-ID/).</summary>
    public static string PinRoot => Path.Join(Pins.Root, "confine");

    private static string ProgramPins => Path.Join(PinRoot, "programs");

    /// <summary>Where the links of the tree instances at the root are pinned while launcher trees may be confined.</summary>
    public static string RootLinks => Path.Join(PinRoot, "root");

    /// <summary>Where the links of the job instances at job cgroup <paramref name="cgroupId"/> are pinned (unpinning them detaches them).</summary>
    public static string CgroupLinks(ulong cgroupId) => Path.Join(PinRoot, CgroupLinksPrefix + cgroupId.ToString(CultureInfo.InvariantCulture));

    private const string CgroupLinksPrefix = "cgroup-";

    /// <summary>A program's pin: not named guard_*, so <see cref="Pins.Links"/> lists links only.</summary>
    private static string ProgramPin(string name) => Path.Join(ProgramPins, "prog-" + name);

    /// <summary>Whether confinement is pinned: its tracing programs attached and its cgroup programs loaded, ready to attach to job cgroups.</summary>
    public static bool Attached =>
        TracingPrograms.All(p => File.Exists(Path.Join(PinRoot, p))) && JobPrograms.Concat(TreePrograms).All(p => File.Exists(ProgramPin(p.Name)));

    /// <summary>
    /// The pinned confinement, loaded first when it is not (under a lock, so two
    /// guard processes never both load): the tracing programs attached, the cgroup
    /// programs pinned to be attached to each confined job cgroup as it is confined,
    /// and at <paramref name="cgroupDirectory"/> (the cgroup v2 root, or a cgroup
    /// a test made) while launcher trees may be confined. Throws <see cref="SensorException"/>
    /// when the object will not load, attach or pin, or a map cannot be opened.
    /// </summary>
    public static ConfineKernel Ensure(string cgroupDirectory)
    {
        if (!Attached || MapMissing)
        {
            using FileDescriptor held = RunDirectory.Lock("confine");
            if (!Attached || MapMissing)
                Attach();
        }
        return Open(cgroupDirectory);
    }

    /// <summary>Whether a map this build reads is not pinned: confinement pinned by an older build (without the approval maps), attached again whole.</summary>
    private static bool MapMissing => Maps.Any(m => !File.Exists(Path.Join(PinRoot, m)));

    /// <summary>The pinned confinement, or null when none is attached; tree instances it attaches go at the cgroup v2 root. Throws <see cref="SensorException"/> when a map cannot be opened.</summary>
    public static ConfineKernel? OpenPinned() => Attached ? Open(null) : null;

    /// <summary>Detaches and unpins every program and map: confinement is off.</summary>
    public static void Remove() => Pins.Remove(PinRoot);

    private static void Attach()
    {
        // Maps without their programs are state nobody enforced: start afresh.
        Remove();
        KernelMounts.EnsureBpfFs();
        Directory.CreateDirectory(ProgramPins);
        LibbpfLog.Install();
        LibbpfLog.Clear();
        nint obj = KernelSession.OpenEmbedded(ObjectName, PinRoot);
        try
        {
            int err = Libbpf.ObjectLoad(obj);
            if (err != 0)
                throw new SensorException(KernelSession.LoadFailure(-err));
            // Programs first, tracing links last: Attached says yes only once all are there.
            foreach ((string name, int _) in JobPrograms.Concat(TreePrograms))
            {
                nint program = Libbpf.FindProgram(obj, name);
                if (program == 0)
                    throw new SensorException($"the BPF object has no program {name}: sensor and object disagree");
                Check(Libbpf.ObjectPin(Libbpf.ProgramFd(program), ProgramPin(name)), $"pin program {name}");
            }
            foreach (string name in TracingPrograms)
                Pins.AttachAndPin(obj, name, null, Path.Join(PinRoot, name));
        }
        catch
        {
            Remove();
            throw;
        }
        finally
        {
            // The pins hold the programs and their maps now.
            Libbpf.ObjectClose(obj);
        }
    }

    private static ConfineKernel Open(string? rootDirectory)
    {
        var fds = new List<FileDescriptor>();
        try
        {
            foreach (string name in Maps)
            {
                string path = Path.Join(PinRoot, name);
                int fd = Libbpf.ObjectGet(path);
                fds.Add(fd >= 0 ? new FileDescriptor(fd) : throw new SensorException($"cannot open the pinned map {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}"));
            }
            return new ConfineKernel([.. fds], rootDirectory);
        }
        catch
        {
            foreach (FileDescriptor fd in fds)
                fd.Dispose();
            throw;
        }
    }

    /// <summary>The pinned program <paramref name="name"/>, opened once per instance.</summary>
    private int ProgramFd(string name)
    {
        if (!programs.TryGetValue(name, out FileDescriptor? fd))
        {
            int got = Libbpf.ObjectGet(ProgramPin(name));
            if (got < 0)
                throw new SensorException($"cannot open the pinned program {ProgramPin(name)}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
            programs[name] = fd = new FileDescriptor(got);
        }
        return fd.Fd;
    }

    /// <summary>
    /// Attaches each of <paramref name="set"/> at <paramref name="cgroup"/> not attached
    /// there yet (no pin in <paramref name="linkDirectory"/>) and pins its link there.
    /// A link another guard pinned first stands; ours goes with its descriptor.
    /// </summary>
    private void AttachLinks((string Name, int AttachType)[] set, FileDescriptor cgroup, string linkDirectory)
    {
        Directory.CreateDirectory(linkDirectory);
        foreach ((string name, int attachType) in set)
        {
            string pin = Path.Join(linkDirectory, name);
            if (File.Exists(pin))
                continue;
            int link = Libbpf.LinkCreate(ProgramFd(name), cgroup.Fd, attachType, null);
            if (link < 0)
                throw new SensorException($"BPF program {name} could not attach to cgroup {linkDirectory}: {Libc.ErrorText(-link)}");
            using var held = new FileDescriptor(link);
            int err = Libbpf.ObjectPin(link, pin);
            if (err != 0 && -err != Eexist)
                throw new SensorException($"cannot pin {name} at {pin}: {Libc.ErrorText(-err)}");
        }
    }

    private const int Eexist = 17;

    /// <summary>
    /// Attaches the job instances to cgroup <paramref name="cgroupId"/> (found by
    /// its id in the cgroup v2 hierarchy) unless they are there: from then on its
    /// processes, and those of every cgroup below it, run them. Ingress only reads
    /// DNS answers: it is attached only when section <paramref name="section"/> names
    /// resolvers, so a job that resolves no names pays for no received packet. Throws
    /// <see cref="SensorException"/> when the cgroup is gone or a program will not attach.
    /// </summary>
    private void AttachToCgroup(ulong cgroupId, uint section)
    {
        string links = CgroupLinks(cgroupId);
        bool fresh = !Directory.Exists(links);
        (string Name, int AttachType)[] wanted = [.. JobPrograms.Where(p => p.Name != BpfProgramNames.ConfineIngress || ReadsDns(section))];
        if (wanted.All(p => File.Exists(Path.Join(links, p.Name))))
            return;
        using FileDescriptor mount = FileDescriptor.OpenDirectory(rootDirectory ?? KernelMounts.FindCgroup2Root());
        using FileDescriptor cgroup = FileDescriptor.OpenKernfsDirectory(mount, cgroupId, out int errno)
            ?? throw new SensorException($"cannot open cgroup {cgroupId} to confine it: {Libc.ErrorText(errno)}");
        try
        {
            AttachLinks(wanted, cgroup, links);
        }
        catch when (fresh)
        {
            Pins.Remove(links);
            throw;
        }
    }

    /// <summary>Attaches the tree instances at the root unless they are there (ingress only while a section names resolvers): launcher trees may be confined from now on.</summary>
    private void AttachAtRoot()
    {
        (string Name, int AttachType)[] wanted = [.. TreePrograms.Where(p => p.Name != BpfProgramNames.ConfineTreeIngress || ReadsDns(null))];
        if (wanted.All(p => File.Exists(Path.Join(RootLinks, p.Name))))
            return;
        using FileDescriptor root = FileDescriptor.OpenDirectory(rootDirectory ?? KernelMounts.FindCgroup2Root());
        AttachLinks(wanted, root, RootLinks);
    }

    /// <summary>Whether section <paramref name="section"/> (null: any) names a resolver, whose answers ingress reads.</summary>
    private bool ReadsDns(uint? section) =>
        Libbpf.Entries<GuardConfineResolverKey, byte>(ResolversFd).Any(e => section is not { } set || e.Key.Set == set);

    /// <summary>
    /// The ids of the confine programs that run for a process in the cgroup at
    /// <paramref name="cgroupDirectory"/> (its own and its ancestors'), of every attach
    /// type confinement uses. Throws <see cref="SensorException"/> when the query fails.
    /// </summary>
    public static List<uint> ProgramsRunIn(string cgroupDirectory)
    {
        var confine = new HashSet<uint>();
        foreach (string name in JobPrograms.Concat(TreePrograms).Select(p => p.Name))
        {
            int fd = Libbpf.ObjectGet(ProgramPin(name));
            if (fd < 0)
                continue;
            using var program = new FileDescriptor(fd);
            confine.Add(GuardProgramsLoaded.IdOf(program.Fd));
        }
        return [.. EffectivePrograms(cgroupDirectory).Where(confine.Contains)];
    }

    /// <summary>
    /// The ids of every program that runs for a process in the cgroup at <paramref name="cgroupDirectory"/>
    /// (BPF_F_QUERY_EFFECTIVE: its own and its ancestors'), of the attach types confinement uses, whoever
    /// attached them. Throws <see cref="SensorException"/> when the query fails.
    /// </summary>
    public static List<uint> EffectivePrograms(string cgroupDirectory)
    {
        using FileDescriptor cgroup = FileDescriptor.OpenDirectory(cgroupDirectory);
        var running = new List<uint>();
        const int Capacity = 256;
        uint* ids = stackalloc uint[Capacity];
        foreach (int type in CgroupAttachTypes)
        {
            uint count = Capacity, flags = 0;
            Check(Libbpf.ProgramQuery(cgroup.Fd, type, 1, &flags, ids, &count), $"query the programs of {cgroupDirectory}");
            for (int i = 0; i < (int)Math.Min(count, Capacity); i++)
                running.Add(ids[i]);
        }
        return running;
    }

    /// <summary>
    /// Confines every process in cgroup <paramref name="cgroupId"/> (a job's own,
    /// <paramref name="level"/> levels below the root, 1 to 31) and below it, from
    /// its next connect or packet. Throws <see cref="SensorException"/> when a map refuses it.
    /// </summary>
    public void ConfineCgroup(ulong cgroupId, int level, GuardConfineJob job)
    {
        if (level is < 1 or >= GuardConfineKey.Levels)
            throw new SensorException($"cgroup {cgroupId} is {level} levels below the root: confinement reads levels 1 to {GuardConfineKey.Levels - 1}");
        // The programs first, then the entry that makes them judge: no moment where the entry is there and nothing runs.
        AttachToCgroup(cgroupId, job.Section);
        ulong key = cgroupId;
        job.StartTicks = 0;
        Check(Libbpf.MapUpdate(CgroupsFd, &key, &job, 0), $"confine cgroup {cgroupId}");
        SetLevelBit(level);
    }

    /// <summary>
    /// Whether cgroup <paramref name="cgroupId"/> has its sockops link pinned: every
    /// socket its jobs accepted since was marked inbound by the kernel as it was
    /// established, so only those accepted before need the sensor's mark.
    /// </summary>
    public static bool MarksAcceptedSockets(ulong cgroupId) => File.Exists(Path.Join(CgroupLinks(cgroupId), BpfProgramNames.ConfineSockOps));

    /// <summary>
    /// Whether the socket with cookie <paramref name="cookie"/> was judged at its connect by a
    /// cgroup job's programs (confine_verdicts holds it still, an LRU, with SOCK_CONNECTED; one
    /// egress saw first has a verdict without it).
    /// </summary>
    public bool JudgedAtConnect(ulong cookie)
    {
        ulong key = cookie;
        byte* verdict = stackalloc byte[VerdictSize];
        return Libbpf.MapLookup(MapFd(BpfMapNames.ConfineVerdicts), &key, verdict) == 0 && (*(uint*)(verdict + VerdictFlagsOffset) & SockConnected) != 0;
    }

    /// <summary>sizeof(struct confine_verdict) in bpf/confine.bpf.c: a guard_confine_job (24 bytes), the generation, flags and pad.</summary>
    private const int VerdictSize = 40;

    /// <summary>Where struct confine_verdict's flags are.</summary>
    private const int VerdictFlagsOffset = 32;

    /// <summary>SOCK_CONNECTED in bpf/confine.bpf.c.</summary>
    private const uint SockConnected = 16;

    /// <summary>
    /// Marks the socket with cookie <paramref name="cookie"/> accepted (inbound): egress lets
    /// it be from its next packet (a packet egress dropped before is sent again by TCP). For a socket a confined cgroup job accepted before it was
    /// confined; throws <see cref="SensorException"/> when the map refuses it.
    /// </summary>
    public void MarkAccepted(ulong cookie)
    {
        ulong key = cookie;
        byte one = 1;
        Check(Libbpf.MapUpdate(MapFd(BpfMapNames.ConfineInbound), &key, &one, 0), $"mark socket {cookie} accepted");
        // Then the verdict egress gave it before the mark (outbound, from its peer): its next packet reads the mark.
        _ = Libbpf.MapDelete(MapFd(BpfMapNames.ConfineVerdicts), &key);
    }

    /// <summary>
    /// Sets bit <paramref name="bit"/> of confine_levels: a cgroup level the kernel
    /// looks at, or bit 0 (<see cref="TreesBit"/>) so that it looks up tgids at all.
    /// </summary>
    private void SetLevelBit(int bit)
    {
        // Trees: the root instances are attached first, so the bit never says trees are judged where nothing runs.
        if (bit == TreesBit)
            AttachAtRoot();
        uint zero = 0;
        ulong levels = 0;
        _ = Libbpf.MapLookup(LevelsFd, &zero, &levels);
        levels |= 1UL << bit;
        Check(Libbpf.MapUpdate(LevelsFd, &zero, &levels, 0), "record where confined jobs are");
    }

    /// <summary>CONFINE_TREES in bpf/confine.bpf.c: bit 0 of confine_levels, set once a launcher tree may be confined.</summary>
    private const int TreesBit = 0;

    /// <summary>Lets cgroup <paramref name="cgroupId"/> go: nothing there is confined by it any more, and its programs are detached.</summary>
    public void ReleaseCgroup(ulong cgroupId)
    {
        ulong key = cgroupId;
        _ = Libbpf.MapDelete(CgroupsFd, &key);
        Pins.Remove(CgroupLinks(cgroupId));
    }

    /// <summary>
    /// Lets go of every confined job cgroup that is gone (its entry and its links'
    /// pins; the kernel detached the links when the cgroup went), and, once no
    /// launcher is named and no tree member is left, of the root instances: from
    /// then on a process outside every job cgroup runs no confine program.
    /// Returns the cgroups let go. Throws <see cref="SensorException"/> when the cgroup hierarchy cannot be opened.
    /// </summary>
    public List<ulong> ReleaseGone()
    {
        var gone = new List<ulong>();
        using FileDescriptor mount = FileDescriptor.OpenDirectory(rootDirectory ?? KernelMounts.FindCgroup2Root());
        var ids = new HashSet<ulong>(Cgroups().Select(c => c.CgroupId));
        foreach (string dir in Directory.Exists(PinRoot) ? Directory.EnumerateDirectories(PinRoot, CgroupLinksPrefix + "*") : [])
        {
            if (ulong.TryParse(Path.GetFileName(dir)[CgroupLinksPrefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out ulong id))
                ids.Add(id);
        }
        foreach (ulong id in ids)
        {
            using FileDescriptor? cgroup = FileDescriptor.OpenKernfsDirectory(mount, id, out int errno);
            if (cgroup is null && errno is Estale or Enoent)
            {
                ReleaseCgroup(id);
                gone.Add(id);
            }
        }
        if (Directory.Exists(RootLinks) && Libbpf.Entries<GuardName, GuardConfineJob>(LaunchersFd).Count == 0 && Processes().Count == 0)
        {
            uint zero = 0;
            ulong levels = 0;
            _ = Libbpf.MapLookup(LevelsFd, &zero, &levels);
            levels &= ~(1UL << TreesBit);
            Check(Libbpf.MapUpdate(LevelsFd, &zero, &levels, 0), "record that no tree is confined");
            Pins.Remove(RootLinks);
        }
        return gone;
    }

    private const int Enoent = 2;
    private const int Estale = 116;

    /// <summary>
    /// Confines the process <paramref name="tgid"/> started at <paramref name="startTicks"/>
    /// and, from their fork, its children; returns its own rule set in force: the one
    /// it has already when the kernel confined it first (a launcher's exec), else
    /// <paramref name="job"/>'s. Throws <see cref="SensorException"/> when the map refuses it.
    /// </summary>
    public uint ConfineProcess(int tgid, long startTicks, GuardConfineJob job)
    {
        uint key = (uint)tgid;
        job.StartTicks = (ulong)startTicks;
        if (JobOfProcess(tgid, startTicks) is { Job: not 0 } already)
            job.Job = already.Job;
        SetLevelBit(TreesBit);
        Check(Libbpf.MapUpdate(TgidsFd, &key, &job, 0), $"confine process {tgid}");
        return job.Job;
    }

    /// <summary>The entry of confined process <paramref name="tgid"/> started at <paramref name="startTicks"/>; null when it is not confined.</summary>
    public GuardConfineJob? JobOfProcess(int tgid, long startTicks)
    {
        uint key = (uint)tgid;
        GuardConfineJob job;
        return Libbpf.MapLookup(TgidsFd, &key, &job) == 0 && job.StartTicks == (ulong)startTicks ? job : null;
    }

    /// <summary>The entry of confined job cgroup <paramref name="cgroupId"/>; null when it is not confined.</summary>
    public GuardConfineJob? JobOfCgroup(ulong cgroupId)
    {
        ulong key = cgroupId;
        GuardConfineJob job;
        return Libbpf.MapLookup(CgroupsFd, &key, &job) == 0 ? job : null;
    }

    /// <summary>Makes the exec of a program named <paramref name="comm"/> start a confined tree, even while no sensor runs.</summary>
    public void ConfineLauncher(string comm, GuardConfineJob job)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(comm) >= CommCapacity)
            throw new SensorException($"launcher name {comm} is longer than the kernel keeps ({CommCapacity - 1} bytes)");
        var key = new GuardName();
        System.Text.Encoding.UTF8.GetBytes(comm, MemoryMarshal.CreateSpan(ref key.Name[0], CommCapacity - 1));
        job.StartTicks = 0;
        SetLevelBit(TreesBit);
        Check(Libbpf.MapUpdate(LaunchersFd, &key, &job, 0), $"confine launcher {comm}");
    }

    /// <summary>
    /// Makes confine_kinds <paramref name="kinds"/> (indexed by enum guard_confine_kind,
    /// <see cref="GuardConfineKindCount"/> entries; Section 0: the kernel confines no new
    /// job cgroup of that kind). Entry 0 is written last: it tells the kernel to look at all.
    /// Throws <see cref="SensorException"/> when the map refuses an entry.
    /// </summary>
    public void ReplaceKinds(IReadOnlyList<GuardConfineJob> kinds)
    {
        if (kinds.Count != GuardConfineKindCount)
            throw new ArgumentException($"confine_kinds has {GuardConfineKindCount} entries", nameof(kinds));
        int fd = MapFd(BpfMapNames.ConfineKinds);
        for (uint kind = GuardConfineKindCount - 1; ; kind--)
        {
            GuardConfineJob job = kinds[(int)kind];
            job.StartTicks = 0;
            Check(Libbpf.MapUpdate(fd, &kind, &job, 0), $"confine job kind {kind} at its first exec");
            if (kind == 0)
                break;
        }
    }

    /// <summary>GUARD_CONFINE_KINDS in bpf/guard.h: confine_kinds' entries (any, Slurm job, pod, container).</summary>
    public const int GuardConfineKindCount = 4;

    /// <summary>Every confined job cgroup, by id.</summary>
    public List<(ulong CgroupId, GuardConfineJob Job)> Cgroups() => Libbpf.Entries<ulong, GuardConfineJob>(CgroupsFd);

    /// <summary>Every confined process of a launcher tree, by tgid.</summary>
    public List<(uint Tgid, GuardConfineJob Job)> Processes() => Libbpf.EntriesInBatches<uint, GuardConfineJob>(TgidsFd);

    /// <summary>
    /// Makes rule set <paramref name="set"/> exactly <paramref name="entries"/>: new and
    /// changed entries are written first, then stale ones deleted, then the generation
    /// bumped so that connected sockets are judged again. Throws <see cref="SensorException"/> when the trie refuses an entry.
    /// </summary>
    public void ReplaceSet(uint set, IReadOnlyList<ConfineAllowEntry> entries)
    {
        var keep = new HashSet<(int, string)>();
        foreach (ConfineAllowEntry e in entries)
        {
            Put(e);
            keep.Add((e.PrefixLength, Convert.ToHexString(e.Address)));
        }
        foreach (GuardConfineKey key in Keys())
        {
            if (key.Set != set)
                continue;
            byte[] address = ((ReadOnlySpan<byte>)key.Address).ToArray();
            if (!keep.Contains(((int)key.PrefixLength - 32, Convert.ToHexString(address))))
            {
                GuardConfineKey k = key;
                _ = Libbpf.MapDelete(AllowFd, &k);
            }
        }
        BumpGeneration();
    }

    /// <summary>Adds or replaces entries without touching others (DNS answers, approvals); bumps nothing: an added allow denies no socket.</summary>
    public void Add(IEnumerable<ConfineAllowEntry> entries)
    {
        foreach (ConfineAllowEntry e in entries)
            Put(e);
    }

    /// <summary>The entry of a set at exactly this prefix; null when there is none.</summary>
    public GuardConfinePorts? Lookup(uint set, byte[] address, int prefixLength)
    {
        uint bits = 32 + (uint)prefixLength;
        // An LPM lookup finds the longest match, which may be another prefix: read the entries instead.
        foreach ((GuardConfineKey k, GuardConfinePorts ports) in Entries())
        {
            if (k.Set == set && k.PrefixLength == bits && ((ReadOnlySpan<byte>)k.Address).SequenceEqual(address))
                return ports;
        }
        return null;
    }

    /// <summary>Every allow entry, with its set, prefix and ports.</summary>
    public List<(GuardConfineKey Key, GuardConfinePorts Ports)> Entries() => Libbpf.Entries<GuardConfineKey, GuardConfinePorts>(AllowFd);

    private List<GuardConfineKey> Keys() => [.. Entries().Select(e => e.Key)];

    private void Put(ConfineAllowEntry e)
    {
        if (e.Ports.Count > GuardConfinePorts.Capacity)
            throw new SensorException($"{e.Ports.Count} port ranges at one prefix: the kernel keeps {GuardConfinePorts.Capacity}");
        GuardConfineKey key = KeyOf(e.Set, e.Address, e.PrefixLength);
        var value = new GuardConfinePorts { Count = (uint)e.Ports.Count, ExpiresNs = e.ExpiresNs };
        for (int i = 0; i < e.Ports.Count; i++)
            value.Ranges[i] = e.Ports[i];
        Check(Libbpf.MapUpdate(AllowFd, &key, &value, 0), $"allow a destination of rule set {e.Set}");
    }

    private static GuardConfineKey KeyOf(uint set, byte[] address, int prefixLength)
    {
        if (address.Length != 16 || prefixLength is < 0 or > 128)
            throw new ArgumentException("an allow entry is 16 address bytes and a prefix of 0 to 128 bits", nameof(address));
        var key = new GuardConfineKey { PrefixLength = 32 + (uint)prefixLength, Set = set };
        address.CopyTo(key.Address);
        return key;
    }

    /// <summary>Tells the kernel the lists changed: connected sockets are judged again at their next packet.</summary>
    public void BumpGeneration()
    {
        uint zero = 0;
        ulong generation = 0;
        _ = Libbpf.MapLookup(GenerationFd, &zero, &generation);
        generation++;
        Check(Libbpf.MapUpdate(GenerationFd, &zero, &generation, 0), "bump the confinement generation");
    }

    /// <summary>
    /// Makes section set <paramref name="set"/>'s DNS names exactly <paramref name="names"/>
    /// (wire form, <see cref="GuardConfineNameKey.Capacity"/> bytes at most, with the ports an
    /// answer for the name, and for a name under it, allows). Throws <see cref="SensorException"/>
    /// when a name is too long or the map refuses it.
    /// </summary>
    public void ReplaceNames(uint set, IReadOnlyList<(byte[] Wire, IReadOnlyList<GuardPortRange> Exact, IReadOnlyList<GuardPortRange> Under)> names)
    {
        var keep = new HashSet<string>();
        foreach ((byte[] wire, IReadOnlyList<GuardPortRange> exact, IReadOnlyList<GuardPortRange> under) in names)
        {
            if (wire.Length > GuardConfineNameKey.Capacity)
                throw new SensorException($"a DNS name of {wire.Length} bytes: the kernel keys names of up to {GuardConfineNameKey.Capacity}");
            var key = new GuardConfineNameKey { Set = set, Length = (uint)wire.Length };
            wire.CopyTo(key.Name);
            var value = new GuardConfineName { Exact = Ports(exact), Under = Ports(under) };
            Check(Libbpf.MapUpdate(NamesFd, &key, &value, 0), $"allow a DNS name of rule set {set}");
            keep.Add(Convert.ToHexString(wire));
        }
        foreach ((GuardConfineNameKey key, GuardConfineName _) in Libbpf.Entries<GuardConfineNameKey, GuardConfineName>(NamesFd))
        {
            GuardConfineNameKey k = key;
            if (k.Set == set && !keep.Contains(Convert.ToHexString(((ReadOnlySpan<byte>)k.Name)[..(int)Math.Min(k.Length, GuardConfineNameKey.Capacity)])))
                _ = Libbpf.MapDelete(NamesFd, &k);
        }
    }

    /// <summary>Makes section set <paramref name="set"/>'s resolvers exactly <paramref name="addresses"/> (16 bytes each, IPv4 v4-mapped).</summary>
    public void ReplaceResolvers(uint set, IReadOnlyList<byte[]> addresses)
    {
        var keep = new HashSet<string>();
        byte one = 1;
        foreach (byte[] address in addresses)
        {
            var key = new GuardConfineResolverKey { Set = set };
            address.CopyTo(key.Address);
            Check(Libbpf.MapUpdate(ResolversFd, &key, &one, 0), $"name a resolver of rule set {set}");
            keep.Add(Convert.ToHexString(address));
        }
        foreach ((GuardConfineResolverKey key, byte _) in Libbpf.Entries<GuardConfineResolverKey, byte>(ResolversFd))
        {
            GuardConfineResolverKey k = key;
            if (k.Set == set && !keep.Contains(Convert.ToHexString(k.Address)))
                _ = Libbpf.MapDelete(ResolversFd, &k);
        }
    }

    /// <summary>Removes the jobs' own entries (DNS answers) whose time ended before <paramref name="nowNs"/> (CLOCK_BOOTTIME); returns how many.</summary>
    public int RemoveExpired(ulong nowNs, uint firstJobSet)
    {
        int removed = 0;
        foreach ((GuardConfineKey key, GuardConfinePorts ports) in Entries())
        {
            if (key.Set < firstJobSet || ports.ExpiresNs == 0 || ports.ExpiresNs >= nowNs)
                continue;
            GuardConfineKey k = key;
            if (Libbpf.MapDelete(AllowFd, &k) == 0)
                removed++;
        }
        return removed;
    }

    private static GuardConfinePorts Ports(IReadOnlyList<GuardPortRange> ranges)
    {
        var ports = new GuardConfinePorts { Count = (uint)ranges.Count };
        for (int i = 0; i < ranges.Count; i++)
            ports.Ranges[i] = ranges[i];
        return ports;
    }

    /// <summary>Every denial the kernel counted, per job and destination, as the map has them now.</summary>
    public List<(GuardConfineDenialKey Key, GuardConfineDenial Value)> Denials() => Libbpf.EntriesInBatches<GuardConfineDenialKey, GuardConfineDenial>(DenialsFd);

    private static void Check(int rc, string what)
    {
        if (rc != 0)
            throw new SensorException($"cannot {what} in the kernel: {Libc.ErrorText(-rc)}");
    }

    /// <summary>Closes the map descriptors; the pinned confinement stays.</summary>
    public void Dispose()
    {
        foreach (FileDescriptor fd in maps)
            fd.Dispose();
        foreach (FileDescriptor fd in programs.Values)
            fd.Dispose();
    }
}
