using System.Runtime.InteropServices;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>A recorded process and who created it, as the lineage map has it now.</summary>
/// <param name="Process">The process (tgid, start).</param>
/// <param name="Creator">Who forked it (the caller, not the real parent), or the nearest recorded creator above one that exited.</param>
/// <param name="Alive">False once it has exited: the entry stays only as the link to a live descendant.</param>
public readonly record struct LineageLink(GuardProcessId Process, GuardProcessId Creator, bool Alive);

/// <summary>
/// Lineage as the kernel records it at fork (bpf/lineage.bpf.c): who created
/// each process, re-parented or not, kept while a live descendant needs the
/// link; and the members of trees being stopped, below which the kernel stops
/// every fork. Pinned under PIN_ROOT/lineage by the first guard that needs it
/// (`guard watch`, `guard kill --tree`, a tree hold) and left there, so a
/// `guard kill` with no sensor running sees it; `guard detach --all` removes
/// it with everything else under the pin root. Processes forked before it was
/// first attached have no entry: their parent pid in /proc is all there is.
/// An exited creator spliced out of the map leaves its heir (lineage_heirs),
/// so what an exited process left is found by its identity alone.
/// </summary>
public sealed unsafe class LineageKernel : IDisposable
{
    private const string ObjectName = "lineage.bpf.o";

    /// <summary>Attach order: exit first, so no process recorded at fork ends unseen.</summary>
    private static readonly string[] Programs = [BpfProgramNames.LineageExit, BpfProgramNames.LineageFork];

    private readonly FileDescriptor links;
    private readonly FileDescriptor stopping;
    private readonly FileDescriptor lost;
    private readonly FileDescriptor heirs;

    private LineageKernel(FileDescriptor links, FileDescriptor stopping, FileDescriptor lost, FileDescriptor heirs)
    {
        this.links = links;
        this.stopping = stopping;
        this.lost = lost;
        this.heirs = heirs;
    }

    /// <summary>Where the recorder is pinned: its maps, by name, and the links of its two programs.</summary>
    public static string PinRoot => Path.Join(Pins.Root, "lineage");

    /// <summary>Whether the recorder is pinned and attached, heirs included (one an older build pinned without them is attached afresh).</summary>
    public static bool Recording =>
        Programs.All(p => File.Exists(Path.Join(PinRoot, p))) && File.Exists(Path.Join(PinRoot, BpfMapNames.LineageHeirs));

    /// <summary>
    /// The pinned recorder, attached first when it is not (under a lock, so two
    /// guard processes never both attach). Throws <see cref="SensorException"/>
    /// when the object will not load, attach or pin, or the maps cannot be opened.
    /// </summary>
    public static LineageKernel Ensure()
    {
        if (!Recording)
        {
            using FileDescriptor held = RunDirectory.Lock("lineage");
            if (!Recording)
                Attach();
        }
        return Open();
    }

    /// <summary>The pinned recorder, or null when none is attached. Throws <see cref="SensorException"/> when its maps cannot be opened.</summary>
    public static LineageKernel? OpenPinned() => Recording ? Open() : null;

    /// <summary>Detaches and unpins the recorder; what it recorded goes with it.</summary>
    public static void Remove() => Pins.Remove(PinRoot);

    private static void Attach()
    {
        // Maps without their programs hold links nobody kept up: start afresh.
        Remove();
        KernelMounts.EnsureBpfFs();
        Directory.CreateDirectory(PinRoot);
        LibbpfLog.Install();
        LibbpfLog.Clear();
        nint obj = KernelSession.OpenEmbedded(ObjectName, PinRoot);
        try
        {
            int err = Libbpf.ObjectLoad(obj);
            if (err != 0)
                throw new SensorException(KernelSession.LoadFailure(-err));
            foreach (string name in Programs)
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

    private static LineageKernel Open()
    {
        FileDescriptor? links = null, stopping = null, lost = null;
        try
        {
            links = OpenMap(BpfMapNames.Lineage);
            stopping = OpenMap(BpfMapNames.LineageStopping);
            lost = OpenMap(BpfMapNames.LineageLost);
            return new LineageKernel(links, stopping, lost, OpenMap(BpfMapNames.LineageHeirs));
        }
        catch
        {
            links?.Dispose();
            stopping?.Dispose();
            lost?.Dispose();
            throw;
        }
    }

    private static FileDescriptor OpenMap(string name)
    {
        string path = Path.Join(PinRoot, name);
        int fd = Libbpf.ObjectGet(path);
        return fd >= 0 ? new FileDescriptor(fd) : throw new SensorException($"cannot open the pinned map {path}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>
    /// Every recorded process with its creator, exited links included, as the
    /// maps have them now; and for each exited creator spliced out of the map,
    /// a link from it to its heir (the descendant whose entry took its place),
    /// alive unless the heir's own entry says it exited. Descent is history: an heir
    /// stays below what it replaced, however the maps change after.
    /// </summary>
    public List<LineageLink> Links()
    {
        List<LineageLink> all = [.. Libbpf.EntriesInBatches<GuardProcessId, GuardLineage>(links.Fd).Select(e => new LineageLink(e.Value.Self, e.Value.Creator, e.Value.Alive != 0))];
        var alive = new Dictionary<(uint, ulong), bool>(all.Count);
        foreach (LineageLink link in all)
            alive[(link.Process.Tgid, link.Process.StartTimeNs)] = link.Alive;
        // An heir the map read before did not hold yet (forked since) counts as alive: a link that says
        // exited is followed but never enlisted, so a wrong "exited" would hide a live process for good.
        foreach ((GuardProcessId gone, GuardProcessId heir) in Heirs())
            all.Add(new LineageLink(heir, gone, alive.GetValueOrDefault((heir.Tgid, heir.StartTimeNs), true)));
        return all;
    }

    /// <summary>Each exited creator spliced out of the lineage map, with its heir: the descendant whose entry named it when it went.</summary>
    public List<(GuardProcessId Gone, GuardProcessId Heir)> Heirs() =>
        [.. Libbpf.EntriesInBatches<GuardProcessId, GuardProcessId>(heirs.Fd).Select(e => (e.Key, e.Value))];

    /// <summary>Forks not recorded since the recorder was attached, because the map was full (65,536 entries).</summary>
    public ulong Lost
    {
        get
        {
            uint key = 0;
            ulong value = 0;
            return Libbpf.MapLookup(lost.Fd, &key, &value) == 0 ? value : 0;
        }
    }

    /// <summary>
    /// Lists a stopped member of the stop that lapses at <paramref name="untilBootNs"/>
    /// (CLOCK_BOOTTIME): from now on the kernel stops any process that forks below it,
    /// and the child. False when the map refused it (full).
    /// </summary>
    public bool MarkStopping(int tgid, long startTicks, ulong untilBootNs)
    {
        uint key = (uint)tgid;
        var value = new GuardMember { Id = untilBootNs, StartTicks = (ulong)startTicks };
        return Libbpf.MapUpdate(stopping.Fd, &key, &value, 0) == 0;
    }

    /// <summary>Takes every member of the stop that lapses at <paramref name="untilBootNs"/> off the list, those the kernel added included.</summary>
    public void ForgetStopping(ulong untilBootNs)
    {
        foreach ((uint tgid, GuardMember member) in Libbpf.Entries<uint, GuardMember>(stopping.Fd))
        {
            if (member.Id != untilBootNs)
                continue;
            uint key = tgid;
            _ = Libbpf.MapDelete(stopping.Fd, &key);
        }
    }

    /// <summary>Closes the map descriptors; the pinned recorder stays.</summary>
    public void Dispose()
    {
        links.Dispose();
        stopping.Dispose();
        lost.Dispose();
        heirs.Dispose();
    }
}
