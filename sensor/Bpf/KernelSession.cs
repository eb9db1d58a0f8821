using System.Runtime.InteropServices;
using Guard.Sensor.Abi;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>A program that is attached, and how.</summary>
public sealed record AttachedProgram(ProgramSpec Spec, string Target);

/// <summary>A program that is not running, and why: the summary lists these.</summary>
public sealed record MissingProgram(ProgramSpec Spec, string Reason);

/// <summary>
/// The loaded object and every link it holds: the one owner of Guard's kernel
/// state for a `guard watch`. The loader's steps stay visible in
/// <see cref="Open"/>: open, configure read-only data, load, attach.
/// Dispose detaches everything and closes the object.
/// </summary>
public sealed unsafe class KernelSession : IDisposable
{
    private readonly nint obj;
    private readonly List<(string Program, nint Link)> links = [];
    private readonly List<AttachedProgram> attached = [];
    private readonly List<MissingProgram> missing = [];
    private readonly List<string> warnings = [];
    private int jobMembersFd = -1;
    private int roundingSwitchesFd = -1;
    private int roundingExitedFd = -1;
    private int sockOwnersFd = -1;
    private int sockOwnerSize;
    private int unixHeadsFd = -1;
    private int unixDgramHeadsFd = -1;
    private int heldTgidsFd = -1;
    private int heldGpuIoctlsFd = -1;
    private int execUnrecordedFd = -1;
    private int execUnrecordedLostFd = -1;
    private ulong[] dropsPerCpu = [];
    private bool disposed;

    private KernelSession(nint obj) => this.obj = obj;

    public IReadOnlyList<AttachedProgram> Attached => attached;

    public IReadOnlyList<MissingProgram> Missing => missing;

    /// <summary>Optional programs that could not attach, one line each, for stderr.</summary>
    public IReadOnlyList<string> Warnings => warnings;

    public int RingBufferFd { get; private set; }

    public int DropsFd { get; private set; }

    public int GpuIoctlCountsFd { get; private set; }

    public int GpuClassCountsFd { get; private set; }

    private static byte[] EmbeddedObject(string name)
    {
        using Stream stream = typeof(KernelSession).Assembly.GetManifestResourceStream(name)
            ?? throw new SensorException($"the BPF object is not embedded in this build ({name} resource missing)");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Opens an embedded object (not loaded yet); maps it pins by name go under <paramref name="pinRoot"/>.</summary>
    internal static nint OpenEmbedded(string name, string? pinRoot = null)
    {
        byte[] image = EmbeddedObject(name);
        byte[]? root = pinRoot is null ? null : System.Text.Encoding.UTF8.GetBytes(pinRoot + "\0");
        nint obj;
        fixed (byte* p = image)
        fixed (byte* r = root)
        {
            var options = new Libbpf.ObjectOpenOptions { Size = (nuint)sizeof(Libbpf.ObjectOpenOptions), PinRootPath = r };
            obj = Libbpf.ObjectOpenMem(p, (nuint)image.Length, &options);
        }
        return obj != 0 ? obj : throw new SensorException($"cannot open the embedded BPF object {name}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    public static KernelSession Open(KernelOptions options)
    {
        if (!File.Exists("/sys/kernel/btf/vmlinux"))
            throw new SensorException("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): Guard's CO-RE programs need CONFIG_DEBUG_INFO_BTF=y");
        if (options.RingBufferBytes < Environment.SystemPageSize || !int.IsPow2(options.RingBufferBytes))
            throw new SensorException($"ring buffer size {options.RingBufferBytes} must be a power of two of at least {Environment.SystemPageSize} bytes");
        LibbpfLog.Install();
        LibbpfLog.Clear();

        // 1. open
        nint obj = OpenEmbedded("guard.bpf.o");
        var session = new KernelSession(obj);
        try
        {
            // 2. configure: sizes and the read-only config, before load
            session.Configure(options);
            bool wantIoctl = options.GpuDevices.Count > 0;
            ProgramSpec ioctlSpec = GuardPrograms.Observation.First(s => s.Name == BpfProgramNames.Ioctl);
            if (!wantIoctl)
            {
                Libbpf.ProgramSetAutoload(session.Program(BpfProgramNames.Ioctl), false);
                session.missing.Add(new MissingProgram(ioctlSpec, "no GPU device present or configured"));
            }
            else
            {
                KernelMounts.EnsureTraceFs();
            }

            // 3. load
            int err = Libbpf.ObjectLoad(obj);
            if (err != 0)
                throw new SensorException(LoadFailure(-err));

            session.RingBufferFd = session.MapFd(BpfMapNames.Events);
            session.roundingSwitchesFd = session.MapFd(BpfMapNames.RoundingSwitches);
            session.roundingExitedFd = session.MapFd(BpfMapNames.RoundingExited);
            // Rules before attach: no exec is judged against empty maps.
            session.WriteExecRules(options.InKernelRules);
            session.DropsFd = session.MapFd(BpfMapNames.Drops);
            session.GpuIoctlCountsFd = session.MapFd(BpfMapNames.GpuIoctlCounts);
            session.GpuClassCountsFd = session.MapFd(BpfMapNames.GpuClassCounts);
            session.sockOwnersFd = session.MapFd(BpfMapNames.SockOwners);
            session.sockOwnerSize = (int)Libbpf.MapValueSize(Libbpf.FindMap(obj, BpfMapNames.SockOwners));
            session.unixHeadsFd = session.MapFd(BpfMapNames.UnixHeads);
            session.unixDgramHeadsFd = session.MapFd(BpfMapNames.UnixDgramHeads);
            session.heldTgidsFd = session.MapFd(BpfMapNames.HeldTgids);
            session.heldGpuIoctlsFd = session.MapFd(BpfMapNames.HeldGpuIoctls);
            session.execUnrecordedFd = session.MapFd(BpfMapNames.ExecUnrecorded);
            session.execUnrecordedLostFd = session.MapFd(BpfMapNames.ExecUnrecordedLost);
            session.dropsPerCpu = new ulong[Math.Max(Libbpf.PossibleCpus(), 1)];

            // 4. attach
            string cgroupRoot = options.CgroupRoot ?? KernelMounts.FindCgroup2Root();
            session.AttachAll(cgroupRoot, wantIoctl);
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private void Configure(KernelOptions options)
    {
        nint ring = Libbpf.FindMap(obj, BpfMapNames.Events);
        if (ring == 0 || Libbpf.MapSetMaxEntries(ring, (uint)options.RingBufferBytes) != 0)
            throw new SensorException($"cannot size the ring buffer map '{BpfMapNames.Events}'");

        nint rodata = Libbpf.FindMap(obj, BpfMapNames.ReadOnlyData);
        if (rodata == 0)
            throw new SensorException($"the BPF object has no {BpfMapNames.ReadOnlyData} section (guard_config missing)");
        void* initial = Libbpf.MapInitialValue(rodata, out nuint size);
        // Exactly guard_config: anything else in .rodata would sit where the sensor writes.
        if (initial == null || size != (nuint)sizeof(GuardConfig))
            throw new SensorException($"the BPF object's .rodata is {size} bytes; guard_config needs {sizeof(GuardConfig)}: sensor and object disagree");
        if (options.GpuDevices.Count > GuardConfig.MaxGpuDevices)
            throw new SensorException($"at most {GuardConfig.MaxGpuDevices} GPU device entries can be configured, got {options.GpuDevices.Count}");

        ref GuardConfig config = ref *(GuardConfig*)initial;
        config = default;
        config.AbiVersion = RecordHeader.AbiVersion;
        config.SelfPid = (uint)Environment.ProcessId;
        config.GpuDeviceCount = (uint)options.GpuDevices.Count;
        config.WakeupBytes = (uint)(options.RingBufferBytes / 16);
        for (int i = 0; i < options.GpuDevices.Count; i++)
        {
            GpuDevice d = options.GpuDevices[i];
            config.GpuDevices[i] = new GuardGpuDevice { Major = d.Major, Minor = d.Minor ?? -1, Role = (uint)d.Role };
        }
    }

    private void WriteExecRules(InKernelRules rules)
    {
        PolicyMaps.Write(obj, rules);
        jobMembersFd = MapFd(BpfMapNames.JobMembers);
    }

    /// <summary>
    /// Brings what the kernel judges itself to <paramref name="rules"/> in place
    /// (a policy reload): the attached programs keep running and see the new
    /// entries at their next lookup; nothing both rules name is ever missing
    /// (<see cref="PolicyMaps"/>). When the job units changed, the kernel's
    /// record of which cgroups are jobs is dropped, to be judged again.
    /// </summary>
    /// <exception cref="SensorException">The kernel refused an update.</exception>
    public void UpdateExecRules(InKernelRules rules)
    {
        if (PolicyMaps.Write(obj, rules))
            PolicyMaps.Clear<ulong>(obj, BpfMapNames.CgroupJobs);
    }

    /// <summary>
    /// Pins the links of the attached programs named in <paramref name="programs"/>
    /// under <paramref name="dir"/>, so they stay attached if this process dies.
    /// Remove them with <see cref="Pins.Remove"/>. Throws <see cref="SensorException"/>
    /// when a pin cannot be made (the ones made are removed again).
    /// </summary>
    public void PinLinks(IReadOnlySet<string> programs, string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
            foreach ((string program, nint link) in links)
            {
                if (!programs.Contains(program))
                    continue;
                int err = Libbpf.LinkPin(link, Path.Join(dir, program));
                if (err != 0)
                    throw new SensorException($"cannot pin {program} under {dir}: {Libc.ErrorText(-err)}");
            }
        }
        catch
        {
            Pins.Remove(dir);
            throw;
        }
    }

    private const ulong BpfNoexist = 1;

    /// <summary>
    /// Tells the kernel a process found in /proc is inside a job: its children
    /// then inherit that at fork. Never over what the kernel decided itself (an
    /// exec since the process was read).
    /// </summary>
    public void MarkJobMember(int pid, GuardJobMember member)
    {
        uint key = (uint)pid;
        _ = Libbpf.MapUpdate(jobMembersFd, &key, &member, BpfNoexist); // one the kernel has, or one gone meanwhile, is no loss
    }

    /// <summary>The job cgroup id the kernel keeps for process <paramref name="pid"/> (job_members); 0 when it keeps none.</summary>
    public ulong JobCgroupOf(int pid)
    {
        uint key = (uint)pid;
        GuardJobMember member;
        return Libbpf.MapLookup(jobMembersFd, &key, &member) == 0 ? member.CgroupId : 0;
    }

    internal static string LoadFailure(int errno)
    {
        // libbpf names the program and prints the verifier log above its verdict.
        string? verdict = LibbpfLog.Last("failed to load");
        string? program = verdict is null ? null : Between(verdict, "prog '", "'");
        string? verifierLast = LibbpfLog.Snapshot().LastOrDefault(l => !l.StartsWith("libbpf:", StringComparison.Ordinal) && !l.StartsWith("--", StringComparison.Ordinal) && !l.StartsWith("processed", StringComparison.Ordinal));
        if (program is not null)
            return $"BPF program {program} failed to load: {Libc.ErrorText(errno)}" + (verifierLast is null ? "" : $" (verifier: {verifierLast.Trim()})");
        string? cause = LibbpfLog.Snapshot().LastOrDefault(l => l.Contains("failed", StringComparison.Ordinal) && !l.Contains("failed to load object", StringComparison.Ordinal));
        string? detail = cause ?? LibbpfLog.Last();
        return $"the BPF object failed to load: {Libc.ErrorText(errno)}" + (detail is null ? "" : $" ({detail.Trim()})");
    }

    private static string? Between(string text, string start, string end)
    {
        int i = text.IndexOf(start, StringComparison.Ordinal);
        if (i < 0)
            return null;
        i += start.Length;
        int j = text.IndexOf(end, i, StringComparison.Ordinal);
        return j < 0 ? null : text[i..j];
    }

    private void AttachAll(string cgroupRoot, bool wantIoctl)
    {
        using FileDescriptor cgroup = FileDescriptor.OpenDirectory(cgroupRoot);
        foreach (ProgramSpec spec in GuardPrograms.Observation)
        {
            if (spec.Name == BpfProgramNames.Ioctl && !wantIoctl)
                continue;
            nint program = Program(spec.Name);
            LibbpfLog.Clear();
            nint link = spec.Attach == AttachPoint.CgroupRoot
                ? Libbpf.ProgramAttachCgroup(program, cgroup.Fd)
                : Libbpf.ProgramAttach(program);
            if (link == 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                string reason = $"attach failed: {Libc.ErrorText(errno)}";
                if (spec.Required)
                    throw new SensorException($"BPF program {spec.Name} ({spec.Purpose}) could not attach: {Libc.ErrorText(errno)}");
                missing.Add(new MissingProgram(spec, reason));
                warnings.Add($"{spec.Name} ({spec.Purpose}) is not running: {reason}");
                continue;
            }
            links.Add((spec.Name, link));
            attached.Add(new AttachedProgram(spec, spec.Attach == AttachPoint.CgroupRoot ? cgroupRoot : spec.Purpose));
        }
    }

    private nint Program(string name)
    {
        nint program = Libbpf.FindProgram(obj, name);
        return program != 0 ? program : throw new SensorException($"the BPF object has no program {name}: sensor and object disagree");
    }

    private int MapFd(string name) => MapFd(obj, name);

    /// <summary>A map of a loaded object by name; its absence means sensor and object were built apart.</summary>
    internal static int MapFd(nint obj, string name)
    {
        nint map = Libbpf.FindMap(obj, name);
        int fd = map == 0 ? -1 : Libbpf.MapFd(map);
        return fd >= 0 ? fd : throw new SensorException($"the BPF object has no map {name}: sensor and object disagree");
    }

    /// <summary>
    /// Who connected <paramref name="socketFd"/> (a descriptor of ours) while this
    /// session watched, as the kernel recorded it at connect; null when the
    /// kernel recorded no one: the socket was accepted, or connected before.
    /// Safe from any thread.
    /// </summary>
    public GuardSockOwner? ConnectedBy(int socketFd)
    {
        if (sockOwnersFd < 0 || sockOwnerSize < sizeof(GuardSockOwner) || sockOwnerSize > 1024)
            return null;
        byte* value = stackalloc byte[sockOwnerSize];
        return Libbpf.MapLookup(sockOwnersFd, &socketFd, value) == 0 ? *(GuardSockOwner*)value : null;
    }

    /// <summary>
    /// What was first written into the unix stream socket <paramref name="socketFd"/>
    /// (a descriptor of ours, the receiving end) while this session watched,
    /// and by whom; null when nothing was. Safe from any thread.
    /// </summary>
    public GuardUnixHead? UnixHeadOf(int socketFd)
    {
        if (unixHeadsFd < 0)
            return null;
        GuardUnixHead head;
        return Libbpf.MapLookup(unixHeadsFd, &socketFd, &head) == 0 ? head : null;
    }

    /// <summary>
    /// What each sender first sent to the unix datagram socket <paramref name="socketFd"/>
    /// (a descriptor of ours) while this session watched; null when nothing was. Safe from any thread.
    /// </summary>
    public GuardUnixDgramHeads? UnixDgramHeadsOf(int socketFd)
    {
        if (unixDgramHeadsFd < 0)
            return null;
        GuardUnixDgramHeads heads;
        return Libbpf.MapLookup(unixDgramHeadsFd, &socketFd, &heads) == 0 ? heads : null;
    }

    /// <summary>Every process the kernel has inside a job, with its job root.</summary>
    public List<(uint Tgid, GuardJobMember Member)> ReadJobMembers() => Libbpf.Entries<uint, GuardJobMember>(jobMembersFd);

    /// <summary>
    /// The kernel's rounding-mode counts: of processes that ended since the
    /// last call first (each read once, then deleted: a life shorter than a
    /// sampling period still counts), then of the living.
    /// </summary>
    public void ReadRoundingSwitches(List<(int Pid, GuardRounding Switches)> into)
    {
        foreach ((GuardRoundingKey key, GuardRounding switches) in Libbpf.Entries<GuardRoundingKey, GuardRounding>(roundingExitedFd))
        {
            GuardRoundingKey k = key;
            _ = Libbpf.MapDelete(roundingExitedFd, &k); // gone already: the LRU let it go
            into.Add(((int)key.Tgid, switches));
        }
        foreach ((uint pid, GuardRounding switches) in Libbpf.Entries<uint, GuardRounding>(roundingSwitchesFd))
            into.Add(((int)pid, switches));
    }

    /// <summary>
    /// Lets the GPU ioctl program see who tree holds hold: puts the pinned member
    /// map of <paramref name="holds"/> in held_tgids (each new first hold pins a new
    /// one, so it is followed, not shared at load); null empties the slot. Returns
    /// whether the slot changed.
    /// </summary>
    public bool FollowHolds(QuarantineKernel? holds)
    {
        uint slot = 0;
        uint current = 0;
        bool filled = Libbpf.MapLookup(heldTgidsFd, &slot, &current) == 0;
        if (holds is null)
            return filled && Libbpf.MapDelete(heldTgidsFd, &slot) == 0;
        int members = holds.MembersFd;
        if (filled && current == MapId(members))
            return false;
        return Libbpf.MapUpdate(heldTgidsFd, &slot, &members, 0) == 0;
    }

    /// <summary>The id the kernel gives the map behind <paramref name="fd"/>; 0 when it cannot be read.</summary>
    private static uint MapId(int fd)
    {
        // struct bpf_map_info starts with __u32 type, __u32 id (uapi bpf.h).
        uint* info = stackalloc uint[2];
        uint length = 2 * sizeof(uint);
        return Libbpf.ObjectInfo(fd, info, ref length) == 0 ? info[1] : 0;
    }

    /// <summary>GPU ioctls issued by held processes (each one stopped again), per hold and process, as guard_ioctl counted them.</summary>
    public List<(GuardContinueKey Key, GuardContinue Value)> HeldGpuIoctls() => Libbpf.Entries<GuardContinueKey, GuardContinue>(heldGpuIoctlsFd);

    /// <summary>Records lost to a full ring buffer, per record kind, summed over CPUs.</summary>
    public ulong[] ReadDrops()
    {
        int cpus = Libbpf.PossibleCpus();
        var perCpu = new ulong[Math.Max(cpus, 1)];
        var totals = new ulong[(int)RecordKind.Count];
        fixed (ulong* values = perCpu)
        {
            for (uint kind = 0; kind < totals.Length; kind++)
            {
                if (Libbpf.MapLookup(DropsFd, &kind, values) != 0)
                    continue;
                foreach (ulong v in perCpu)
                    totals[kind] += v;
            }
        }
        return totals;
    }

    /// <summary>
    /// Records of the process lifecycle (exec, fork, exit) lost to a full ring
    /// since load, summed over CPUs: three lookups, nothing allocated, so it
    /// can be asked every poll.
    /// </summary>
    public ulong LifecycleDrops()
    {
        ulong total = 0;
        fixed (ulong* values = dropsPerCpu)
        {
            for (uint kind = (uint)RecordKind.Exec; kind <= (uint)RecordKind.Exit; kind++)
            {
                if (Libbpf.MapLookup(DropsFd, &kind, values) != 0)
                    continue;
                foreach (ulong v in dropsPerCpu)
                    total += v;
            }
        }
        return total;
    }

    /// <summary>
    /// Takes up to <paramref name="max"/> processes out of the kernel's list of
    /// those whose exec record the full ring lost (exec_unrecorded: pid and
    /// start, CLOCK_BOOTTIME ns), into <paramref name="into"/>; returns how
    /// many. Three syscalls each, nothing allocated beyond the list's growth.
    /// </summary>
    public int TakeUnrecordedExecs(List<(int Pid, ulong StartTimeNs)> into, int max)
    {
        int taken = 0;
        uint key;
        ulong start;
        // Each taken key is deleted, so the first key is asked for every time.
        while (taken < max && Libbpf.MapNextKey(execUnrecordedFd, null, &key) == 0)
        {
            bool found = Libbpf.MapLookup(execUnrecordedFd, &key, &start) == 0;
            if (Libbpf.MapDelete(execUnrecordedFd, &key) != 0 && !found)
                break; // neither readable nor deletable: leave it rather than spin
            if (found)
            {
                into.Add(((int)key, start));
                taken++;
            }
        }
        return taken;
    }

    /// <summary>Execs whose record was lost and that exec_unrecorded had no room for, since load: each may be any process.</summary>
    public ulong UnrecordedExecsLost
    {
        get
        {
            uint key = 0;
            ulong value = 0;
            return Libbpf.MapLookup(execUnrecordedLostFd, &key, &value) == 0 ? value : 0;
        }
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        foreach ((_, nint link) in links)
            _ = Libbpf.LinkDestroy(link); // destroy detaches; its errors leave nothing to undo
        links.Clear();
        Libbpf.ObjectClose(obj);
    }
}
