using System.Globalization;
using System.Runtime.InteropServices;
using Guard.Sensor.Abi;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// The kernel side of quarantine (bpf/quarantine.bpf.c): its maps and the
/// links of its deny programs, all pinned under /sys/fs/bpf/guard/quarantine so a hold
/// outlives whoever made it. Opened from the pins to read or undo a hold;
/// loaded from the embedded object to attach programs for a new one.
/// </summary>
public sealed unsafe class QuarantineKernel : IDisposable
{
    private const string ObjectName = "quarantine.bpf.o";
    private const string RecordsMap = BpfMapNames.Quarantines;
    private const string TgidsMap = BpfMapNames.QuarantineTgids;
    private const string SocketsMap = BpfMapNames.QuarantineSocks;
    private const string DevicesMap = BpfMapNames.QuarantineDevices;
    private const string ContinuesMap = BpfMapNames.QuarantineContinues;
    private const string ThreadStopsMap = BpfMapNames.QuarantineThreadStops;
    private const string CgroupLevelsMap = BpfMapNames.QuarantineCgroupLevels;

    /// <summary>Where holds are pinned: their maps, tree/ and cgroup-ID/ links.</summary>
    public static string PinRoot => Path.Join(Pins.Root, "quarantine");

    private static string TreeLinks => Path.Join(PinRoot, "tree");

    /// <summary>Tree mode, attached at the root: each denies only what a live record holds.</summary>
    private static readonly string[] TreePrograms =
    [
        BpfProgramNames.QuarantineTreeSockCreate, BpfProgramNames.QuarantineTreeConnect4, BpfProgramNames.QuarantineTreeConnect6, BpfProgramNames.QuarantineTreeSendMsg4,
        BpfProgramNames.QuarantineTreeSendMsg6, BpfProgramNames.QuarantineTreeEgress, BpfProgramNames.QuarantineTreeDev, BpfProgramNames.QuarantineTreeFork, BpfProgramNames.QuarantineTreeExit,
        BpfProgramNames.QuarantineTreeContinue, BpfProgramNames.QuarantineTreePtrace, BpfProgramNames.QuarantineTreeTcpSend,
        BpfProgramNames.QuarantineTreeMove,
    ];

    /// <summary>The tree programs that attach to tracepoints, not to the cgroup root.</summary>
    private static readonly HashSet<string> TreeTracing =
    [
        BpfProgramNames.QuarantineTreeFork, BpfProgramNames.QuarantineTreeExit, BpfProgramNames.QuarantineTreeContinue, BpfProgramNames.QuarantineTreePtrace,
        BpfProgramNames.QuarantineTreeTcpSend, BpfProgramNames.QuarantineTreeMove,
    ];

    /// <summary>Cgroup mode, attached to the held job's cgroup: each denies everything there.</summary>
    private static readonly string[] CgroupPrograms =
    [
        BpfProgramNames.QuarantineCgroupConnect4, BpfProgramNames.QuarantineCgroupConnect6, BpfProgramNames.QuarantineCgroupSendMsg4, BpfProgramNames.QuarantineCgroupSendMsg6, BpfProgramNames.QuarantineCgroupEgress, BpfProgramNames.QuarantineCgroupDev,
    ];

    private readonly nint obj;
    private readonly int[] ownedFds;
    private bool disposed;

    private QuarantineKernel(nint obj, int[] fds, int[] ownedFds)
    {
        this.obj = obj;
        RecordsFd = fds[0];
        TgidsFd = fds[1];
        SocketsFd = fds[2];
        DevicesFd = fds[3];
        ContinuesFd = fds[4];
        ThreadStopsFd = fds[5];
        CgroupLevelsFd = fds[6];
        this.ownedFds = ownedFds;
    }

    /// <summary>Every map, in the order the constructor takes them; the last three are absent (-1) in pins an older guard made.</summary>
    private static readonly string[] Maps = [RecordsMap, TgidsMap, SocketsMap, DevicesMap, ContinuesMap, ThreadStopsMap, CgroupLevelsMap];

    private const int RequiredMaps = 4;

    private int RecordsFd { get; }

    private int TgidsFd { get; }

    private int SocketsFd { get; }

    private int DevicesFd { get; }

    private int ContinuesFd { get; }

    private int ThreadStopsFd { get; }

    private int CgroupLevelsFd { get; }

    /// <summary>The held-members map (quarantine_tgids), for guard.bpf.c's GPU ioctl check to look into.</summary>
    internal int MembersFd => TgidsFd;

    /// <summary>Whether any quarantine state is pinned on this host.</summary>
    public static bool Pinned => File.Exists(Path.Join(PinRoot, RecordsMap));

    /// <summary>The pinned maps, or null when nothing is held (nothing pinned).</summary>
    public static QuarantineKernel? OpenPinned()
    {
        if (!Pinned)
            return null;
        var fds = new int[Maps.Length];
        try
        {
            for (int i = 0; i < Maps.Length; i++)
                fds[i] = GetPinned(Maps[i], required: i < RequiredMaps);
        }
        catch (SensorException)
        {
            foreach (int fd in fds.Where(fd => fd > 0))
                new FileDescriptor(fd).Dispose();
            throw;
        }
        return new QuarantineKernel(0, fds, [.. fds.Where(fd => fd >= 0)]);
    }

    private static int GetPinned(string map, bool required)
    {
        string path = Path.Join(PinRoot, map);
        if (!required && !File.Exists(path))
            return -1;
        int fd = Libbpf.ObjectGet(path);
        return fd >= 0 ? fd : throw new SensorException($"cannot open the pinned map {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>Loads the quarantine programs; their maps are the pinned ones, pinned now if this is the first hold.</summary>
    public static QuarantineKernel Load()
    {
        KernelMounts.EnsureBpfFs();
        Directory.CreateDirectory(PinRoot);
        LibbpfLog.Install();
        LibbpfLog.Clear();
        nint obj = KernelSession.OpenEmbedded(ObjectName, PinRoot);
        int err = Libbpf.ObjectLoad(obj);
        if (err != 0)
        {
            Libbpf.ObjectClose(obj);
            throw new SensorException(KernelSession.LoadFailure(-err));
        }
        return new QuarantineKernel(obj, [.. Maps.Select(m => KernelSession.MapFd(obj, m))], []);
    }

    /// <summary>Attaches the root programs (tree mode's, and the socket marks every hold uses) and pins their links, unless they are pinned already.</summary>
    public void EnsureTreeLinks(string cgroupRoot)
    {
        using FileDescriptor root = FileDescriptor.OpenDirectory(cgroupRoot);
        foreach (string name in TreePrograms)
        {
            string pin = Path.Join(TreeLinks, name);
            if (!File.Exists(pin))
                AttachAndPin(name, TreeTracing.Contains(name) ? null : root, pin);
        }
    }

    /// <summary>Where the link of root program <paramref name="name"/> is pinned (unpinning it detaches the program).</summary>
    public static string TreeLinkOf(string name) => Path.Join(TreeLinks, name);

    /// <summary>Whether the programs of the cgroup hold on cgroup <paramref name="cgroupId"/> are still pinned (attached): a release detaches them before it thaws.</summary>
    public static bool CgroupLinksPinned(ulong cgroupId) => Directory.Exists(CgroupLinks(cgroupId));

    /// <summary>Attaches the cgroup-mode deny programs to one cgroup and pins their links.</summary>
    public void AttachToCgroup(ulong cgroupId, string cgroupDirectory)
    {
        using FileDescriptor cgroup = FileDescriptor.OpenDirectory(cgroupDirectory);
        string dir = CgroupLinks(cgroupId);
        foreach (string name in CgroupPrograms)
            AttachAndPin(name, cgroup, Path.Join(dir, name));
    }

    /// <summary>Unpins (so detaches) the cgroup-mode programs of the hold on cgroup <paramref name="cgroupId"/>; nothing when there are none.</summary>
    public static void DetachFromCgroup(ulong cgroupId) => Pins.Remove(CgroupLinks(cgroupId));

    /// <summary>Removes every pin of quarantine: the maps go with the last reference.</summary>
    public static void RemoveAll() => Pins.Remove(PinRoot);

    /// <summary>
    /// Removes every pin once no hold is left. While any hold is, the root
    /// programs stay: a cgroup hold needs their egress drop and TCP send mark
    /// for sockets made outside its cgroup.
    /// </summary>
    public void RemoveUnneededPins()
    {
        if (Records().Count > 0)
            return;
        // Asked again of the pins as they are now, under the lock a new hold is written
        // under: these descriptors may be of maps another guard's release unpinned since.
        using FileDescriptor pinsLock = LockPins();
        try
        {
            using QuarantineKernel? now = OpenPinned();
            if (now is not null && now.Records().Count == 0)
                RemoveAll();
        }
        catch (SensorException)
        {
            // Pins half gone: whoever removes them is at it.
        }
    }

    /// <summary>
    /// The lock every guard process takes to write a new hold or remove the
    /// quarantine pins (flock on the run directory's quarantine.lock), waited for;
    /// dispose to release. Throws <see cref="SensorException"/> when it cannot be taken.
    /// </summary>
    public static FileDescriptor LockPins() => RunDirectory.Lock("quarantine");

    private static string CgroupLinks(ulong cgroupId) => Path.Join(PinRoot, "cgroup-" + cgroupId.ToString(CultureInfo.InvariantCulture));

    private void AttachAndPin(string name, FileDescriptor? cgroup, string pin)
    {
        if (obj == 0)
            throw new InvalidOperationException("attaching needs the loaded object, not the pins");
        Pins.AttachAndPin(obj, name, cgroup, pin);
    }

    /// <summary>Writes the record of hold <paramref name="id"/>; from then on the kernel denies what it holds. Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void Put(ulong id, in GuardQuarantine record)
    {
        ulong key = id;
        fixed (GuardQuarantine* value = &record)
            Check(Libbpf.MapUpdate(RecordsFd, &key, value, 0), "write the quarantine record");
    }

    /// <summary>Deletes the record of hold <paramref name="id"/>, if there is one: from then on the kernel denies none of its members.</summary>
    public void Remove(ulong id)
    {
        ulong key = id;
        _ = Libbpf.MapDelete(RecordsFd, &key);
    }

    /// <summary>Every hold's record, by id.</summary>
    public List<(ulong Id, GuardQuarantine Record)> Records() => Libbpf.Entries<ulong, GuardQuarantine>(RecordsFd);

    /// <summary>
    /// Holds the process <paramref name="tgid"/> started at <paramref name="startTicks"/>
    /// for hold <paramref name="id"/>: the kernel denies it, and holds its children from
    /// fork. Should the pid change hands, the start keeps the entry from holding the
    /// newcomer. Throws <see cref="SensorException"/> when the map refuses it.
    /// </summary>
    public void HoldTgid(int tgid, long startTicks, ulong id)
    {
        uint key = (uint)tgid;
        var value = new GuardMember { Id = id, StartTicks = (ulong)startTicks };
        Check(Libbpf.MapUpdate(TgidsFd, &key, &value, 0), $"hold process {tgid}");
    }

    /// <summary>
    /// Whether the process <paramref name="tgid"/> started at <paramref name="startTicks"/>
    /// is in the tgid map (an entry with another start is not it), and for which hold
    /// (its record may be gone).
    /// </summary>
    public bool IsHeld(int tgid, long startTicks, out ulong id)
    {
        uint key = (uint)tgid;
        GuardMember value = default;
        bool found = Libbpf.MapLookup(TgidsFd, &key, &value) == 0 && value.StartTicks == (ulong)startTicks;
        id = found ? value.Id : 0;
        return found;
    }

    /// <summary>The processes hold <paramref name="id"/> holds as processes now (every member of a tree hold; of a cgroup hold, those it had, made or was given), by tgid and start (the kernel drops them at exit).</summary>
    public List<(int Tgid, long StartTicks)> HeldBy(ulong id) =>
        [.. Libbpf.Entries<uint, GuardMember>(TgidsFd).Where(e => e.Value.Id == id).Select(e => ((int)e.Key, (long)e.Value.StartTicks))];

    /// <summary>Takes <paramref name="tgid"/> out of the tgid map if it is there for hold <paramref name="id"/>; nothing otherwise.</summary>
    public void ForgetTgid(int tgid, ulong id)
    {
        uint key = (uint)tgid;
        GuardMember value = default;
        if (Libbpf.MapLookup(TgidsFd, &key, &value) == 0 && value.Id == id)
            _ = Libbpf.MapDelete(TgidsFd, &key);
    }

    /// <summary>
    /// Marks an open socket (by a descriptor of ours for it) for hold <paramref name="id"/>
    /// so egress drops its packets; true when it was not marked for that hold before
    /// (a mark left by an ended hold is replaced).
    /// </summary>
    public bool MarkSocket(int socketFd, ulong id)
    {
        int key = socketFd;
        ulong value = 0;
        if (Libbpf.MapLookup(SocketsFd, &key, &value) == 0 && value == id)
            return false;
        value = id;
        return Libbpf.MapUpdate(SocketsFd, &key, &value, 0) == 0;
    }

    /// <summary>
    /// What tried to let each held process run (tree mode), per hold and process,
    /// as the kernel counted it (quarantine_continues); empty in pins made by a
    /// guard without the map.
    /// </summary>
    public List<(GuardContinueKey Key, GuardContinue Value)> Continues() =>
        ContinuesFd < 0 ? [] : Libbpf.Entries<GuardContinueKey, GuardContinue>(ContinuesFd);

    /// <summary>Removes the counts of hold <paramref name="id"/> (its record is gone or going).</summary>
    public void ForgetContinues(ulong id)
    {
        foreach ((GuardContinueKey key, _) in Continues())
        {
            if (key.HoldId != id)
                continue;
            GuardContinueKey k = key;
            _ = Libbpf.MapDelete(ContinuesFd, &k);
        }
    }

    /// <summary>Cancels the stops the kernel left pending on the threads <paramref name="tids"/> (quarantine_thread_stops), if any.</summary>
    public void ForgetThreadStops(IEnumerable<int> tids)
    {
        if (ThreadStopsFd < 0)
            return;
        foreach (int tid in tids)
        {
            uint key = (uint)tid;
            _ = Libbpf.MapDelete(ThreadStopsFd, &key);
        }
    }

    /// <summary>
    /// Tells the kernel a cgroup is held <paramref name="level"/> levels below the
    /// cgroup2 root, so a TCP send from in or below it marks its socket. Throws
    /// <see cref="SensorException"/> when the map refuses it; nothing on pins
    /// made by a guard without the map.
    /// </summary>
    public void AddCgroupLevel(int level)
    {
        if (CgroupLevelsFd < 0 || level is < 1 or > 63)
            return;
        uint key = 0;
        ulong levels = 0;
        _ = Libbpf.MapLookup(CgroupLevelsFd, &key, &levels);
        levels |= 1UL << level;
        Check(Libbpf.MapUpdate(CgroupLevelsFd, &key, &levels, 0), "record the held cgroup's level");
    }

    /// <summary>Adds a device (major, and minor or every minor) to those no held process may open. Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void DenyDevice(GpuDevice device)
    {
        var key = new GuardDeviceKey { Major = device.Major, Minor = device.Minor ?? -1 };
        byte one = 1;
        Check(Libbpf.MapUpdate(DevicesFd, &key, &one, 0), $"deny GPU device {device}");
    }

    private static void Check(int rc, string what)
    {
        if (rc != 0)
            throw new SensorException($"cannot {what} in the kernel: {Libc.ErrorText(-rc)}");
    }

    /// <summary>Closes the map descriptors and the loaded object; pinned state stays.</summary>
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        foreach (int fd in ownedFds)
            new FileDescriptor(fd).Dispose();
        if (obj != 0)
            Libbpf.ObjectClose(obj);
    }
}
