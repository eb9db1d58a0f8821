namespace Guard.Sensor.Gpu;

/// <summary>What an RM object class makes a process do on a GPU.</summary>
public enum GpuObjectKind
{
    Client,
    Device,
    Memory,
    AddressSpace,
    ChannelGroup,
    Channel,
    Compute,
    Copy,
}

/// <summary>An RM object class: its id (the NVOS21/NVOS64 hClass), the open driver's name for it, and what it is.</summary>
public sealed record GpuClass(uint Id, string Name, GpuObjectKind Kind);

/// <summary>
/// The RM classes that say what a process does on a GPU, from the open
/// driver's published numbers (open-gpu-kernel-modules,
/// src/common/sdk/nvidia/inc/class/clXXXX.h: the file name is the id). A
/// CUDA context allocates a channel group, GPFIFO channels, a compute object
/// and a copy engine; nvidia-smi and NVML stop at the device and subdevice.
/// </summary>
public static class GpuClasses
{
    public static readonly IReadOnlyList<GpuClass> All =
    [
        new(0x0000, "NV01_ROOT", GpuObjectKind.Client),
        new(0x0041, "NV01_ROOT_CLIENT", GpuObjectKind.Client),
        new(0x0080, "NV01_DEVICE_0", GpuObjectKind.Device),
        new(0x2080, "NV20_SUBDEVICE_0", GpuObjectKind.Device),
        new(0x003E, "NV01_MEMORY_SYSTEM", GpuObjectKind.Memory),
        new(0x0040, "NV01_MEMORY_LOCAL_USER", GpuObjectKind.Memory),
        new(0x0070, "NV01_MEMORY_VIRTUAL", GpuObjectKind.Memory),
        new(0x50A0, "NV50_MEMORY_VIRTUAL", GpuObjectKind.Memory),
        new(0x90F1, "FERMI_VASPACE_A", GpuObjectKind.AddressSpace),
        new(0xA06C, "KEPLER_CHANNEL_GROUP_A", GpuObjectKind.ChannelGroup),
        new(0xC46F, "TURING_CHANNEL_GPFIFO_A", GpuObjectKind.Channel),
        new(0xC56F, "AMPERE_CHANNEL_GPFIFO_A", GpuObjectKind.Channel),
        new(0xC86F, "HOPPER_CHANNEL_GPFIFO_A", GpuObjectKind.Channel),
        new(0xC96F, "BLACKWELL_CHANNEL_GPFIFO_A", GpuObjectKind.Channel),
        new(0xCA6F, "BLACKWELL_CHANNEL_GPFIFO_B", GpuObjectKind.Channel),
        new(0xC5C0, "TURING_COMPUTE_A", GpuObjectKind.Compute),
        new(0xC6C0, "AMPERE_COMPUTE_A", GpuObjectKind.Compute),
        new(0xC7C0, "AMPERE_COMPUTE_B", GpuObjectKind.Compute),
        new(0xC9C0, "ADA_COMPUTE_A", GpuObjectKind.Compute),
        new(0xCBC0, "HOPPER_COMPUTE_A", GpuObjectKind.Compute),
        new(0xCDC0, "BLACKWELL_COMPUTE_A", GpuObjectKind.Compute),
        new(0xCEC0, "BLACKWELL_COMPUTE_B", GpuObjectKind.Compute),
        new(0xC6B5, "AMPERE_DMA_COPY_A", GpuObjectKind.Copy),
        new(0xC7B5, "AMPERE_DMA_COPY_B", GpuObjectKind.Copy),
        new(0xC8B5, "HOPPER_DMA_COPY_A", GpuObjectKind.Copy),
    ];

    private static readonly Dictionary<uint, GpuClass> ById = All.ToDictionary(c => c.Id);

    public static GpuClass? Find(uint id) => ById.GetValueOrDefault(id);
}

/// <summary>What a process did on a GPU, decoded from the kernel's counts.</summary>
[Flags]
public enum GpuWork
{
    None = 0,
    Opened = 1,
    Memory = 2,
    Channel = 4,
    Compute = 8,
    UnifiedMemory = 16,
}
