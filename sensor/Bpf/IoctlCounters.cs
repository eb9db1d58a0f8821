using Guard.Sensor.Abi;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Reads the kernel's per-process GPU ioctl counters (by kind and by RM class).
/// The kernel only counts; the sensor reads on its own schedule and at exit.
/// </summary>
public sealed unsafe class IoctlCounters
{
    private readonly int kindsFd;
    private readonly int classesFd;

    public IoctlCounters(int kindsFd, int classesFd)
    {
        this.kindsFd = kindsFd;
        this.classesFd = classesFd;
    }

    /// <summary>Appends every (pid, kind, count) the kernel holds.</summary>
    public void ReadKinds(List<(uint Pid, uint Slot, ulong Count)> into) => ReadAll(kindsFd, into);

    /// <summary>Appends every (pid, RM class, count) the kernel holds.</summary>
    public void ReadClasses(List<(uint Pid, uint Slot, ulong Count)> into) => ReadAll(classesFd, into);

    /// <summary>Forgets a process's counters once its final counts are out.</summary>
    public void Forget(uint pid)
    {
        Forget(kindsFd, pid);
        Forget(classesFd, pid);
    }

    private static void ReadAll(int fd, List<(uint, uint, ulong)> into)
    {
        GpuCountKey key = default, next = default;
        ulong value = 0;
        GpuCountKey* previous = null;
        while (Libbpf.MapNextKey(fd, previous, &next) == 0)
        {
            if (Libbpf.MapLookup(fd, &next, &value) == 0)
                into.Add((next.Pid, next.Slot, value));
            key = next;
            previous = &key;
        }
    }

    private static void Forget(int fd, uint pid)
    {
        // Keys are (pid, slot): walk and delete this pid's. Deleting while
        // walking restarts the walk at the first key, so collect first.
        Span<GpuCountKey> doomed = stackalloc GpuCountKey[64];
        int n = 0;
        GpuCountKey key = default, next = default;
        GpuCountKey* previous = null;
        while (n < doomed.Length && Libbpf.MapNextKey(fd, previous, &next) == 0)
        {
            if (next.Pid == pid)
                doomed[n++] = next;
            key = next;
            previous = &key;
        }
        for (int i = 0; i < n; i++)
        {
            GpuCountKey k = doomed[i];
            _ = Libbpf.MapDelete(fd, &k); // already gone (LRU) is fine
        }
    }
}
