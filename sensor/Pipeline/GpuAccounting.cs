using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// Keeps each process's GPU use in the process table: device opens and first
/// ioctls from the ring, the kernel's per-process counters (by ioctl kind and
/// by RM class) read on the sensor's schedule and at exit, and NVML's samples.
/// Says which processes' counts moved; emitting and judging is the pipeline's.
/// </summary>
public sealed class GpuAccounting
{
    private readonly ProcessTable table;
    private readonly IoctlCounters? counters;
    private readonly List<(uint Pid, uint Slot, ulong Count)> counts = [];
    private readonly HashSet<ProcessEntry> changed = [];

    /// <param name="table">Where the activity is kept.</param>
    /// <param name="counters">The kernel's counters; null when the ioctl program is not loaded.</param>
    public GpuAccounting(ProcessTable table, IoctlCounters? counters)
    {
        this.table = table;
        this.counters = counters;
    }

    /// <summary>A device open or first ioctl by <paramref name="owner"/>.</summary>
    public static void Touched(ProcessEntry? owner, uint major, uint minor, GpuRole role, bool opened)
    {
        if (owner is null)
            return;
        owner.GpuActivity ??= new GpuActivity();
        if (opened)
            owner.GpuActivity.Opened = true;
        owner.GpuActivity.Touched(major, minor, role);
    }

    /// <summary>
    /// Reads the kernel's counters into the table; returns the processes whose
    /// counts moved (valid until the next call). <paramref name="onlyPid"/>
    /// limits it to one process (its last word, at exit).
    /// </summary>
    public IReadOnlyCollection<ProcessEntry> Flush(uint? onlyPid = null)
    {
        changed.Clear();
        if (counters is null)
            return changed;
        counts.Clear();
        counters.ReadKinds(counts);
        foreach ((uint pid, uint slot, ulong count) in counts)
        {
            if ((onlyPid is uint only && pid != only) || slot >= GpuActivity.KindCount || table.Find((int)pid) is not { } entry)
                continue;
            entry.GpuActivity ??= new GpuActivity();
            if (entry.GpuActivity.Counts[slot] != count)
            {
                entry.GpuActivity.Counts[slot] = count;
                changed.Add(entry);
            }
        }
        counts.Clear();
        counters.ReadClasses(counts);
        foreach ((uint pid, uint cls, ulong count) in counts)
        {
            if ((onlyPid is uint only && pid != only) || table.Find((int)pid) is not { GpuActivity: { } gpu } entry)
                continue;
            if (!gpu.Classes.TryGetValue(cls, out ulong old) || old != count)
            {
                gpu.Classes[cls] = count;
                changed.Add(entry);
            }
        }
        return changed;
    }

    /// <summary>Whether an exiting process has counts the kernel must report before it forgets them.</summary>
    public bool HasFinalCounts(ProcessEntry? entry) => entry?.GpuActivity is not null && counters is not null;

    /// <summary>The kernel may forget an exited process's counters once its last counts are out.</summary>
    public void Forget(ProcessEntry entry) => counters?.Forget((uint)entry.Pid);

    /// <summary>Keeps NVML's latest sample beside the process's lineage; returns the process, or null when /proc no longer has it.</summary>
    public ProcessEntry? Sampled(GpuDeviceSample device, GpuProcessSample sample)
    {
        ProcessEntry? entry = table.Find(sample.Pid) ?? table.Load(sample.Pid);
        if (entry is not null)
            (entry.GpuUsage ??= [])[device.Index] = sample;
        return entry;
    }
}
