using Guard.Sensor.Abi;

namespace Guard.Sensor.Processes;

/// <summary>Per-process GPU driver activity as the kernel counted it.</summary>
public sealed class GpuActivity
{
    public const int KindCount = (int)IoctlKind.Count;

    public ulong[] Counts { get; } = new ulong[KindCount];

    /// <summary>RM classes allocated, with how often.</summary>
    public Dictionary<uint, ulong> Classes { get; } = [];

    public bool Opened { get; internal set; }

    /// <summary>The device of its latest first touch (open or ioctl).</summary>
    public uint Major { get; private set; }

    public uint Minor { get; private set; }

    public GpuRole Role { get; private set; }

    /// <summary>What the counts say it did: opened a GPU, allocated memory, made channels, compute objects, used UVM.</summary>
    public Gpu.GpuWork Work
    {
        get
        {
            Gpu.GpuWork work = Opened || Counts.Any(c => c > 0) ? Gpu.GpuWork.Opened : Gpu.GpuWork.None;
            if (Counts[(int)IoctlKind.Uvm] > 0)
                work |= Gpu.GpuWork.UnifiedMemory;
            foreach (uint id in Classes.Keys)
            {
                work |= Gpu.GpuClasses.Find(id)?.Kind switch
                {
                    Gpu.GpuObjectKind.Memory => Gpu.GpuWork.Memory,
                    Gpu.GpuObjectKind.Channel or Gpu.GpuObjectKind.ChannelGroup => Gpu.GpuWork.Channel,
                    Gpu.GpuObjectKind.Compute => Gpu.GpuWork.Compute,
                    _ => Gpu.GpuWork.None,
                };
            }
            return work;
        }
    }

    internal void Touched(uint major, uint minor, GpuRole role)
    {
        Major = major;
        Minor = minor;
        Role = role;
    }
}
