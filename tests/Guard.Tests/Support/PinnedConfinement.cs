using Guard.Sensor.Bpf;

namespace Guard.Tests.Support;

/// <summary>What the pinned confinement holds now, as a test waiting on a sensor asks it.</summary>
internal static class PinnedConfinement
{
    /// <summary>Whether the pinned confine_cgroups map holds the job cgroup <paramref name="cgroupId"/> (its inode number); false when nothing is pinned.</summary>
    public static bool Confines(ulong cgroupId)
    {
        using ConfineKernel? kernel = ConfineKernel.OpenPinned();
        return kernel is not null && kernel.Cgroups().Any(c => c.CgroupId == cgroupId);
    }
}
