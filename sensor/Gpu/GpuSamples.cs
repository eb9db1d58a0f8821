namespace Guard.Sensor.Gpu;

/// <summary>One process on a device as NVML sees it: its GPU memory (compute processes) and utilisation (samples), each when known.</summary>
public sealed record GpuProcessSample(int Pid, ulong? UsedMemoryBytes, uint? SmPercent, uint? MemoryPercent);

/// <summary>One device at one sampling: identity, utilisation, memory, power, and the processes on it.</summary>
public sealed record GpuDeviceSample(
    int Index, string Name, string Uuid, uint GpuPercent, uint MemoryPercent, ulong MemoryUsedBytes, ulong MemoryTotalBytes,
    uint? PowerMilliwatts, bool Mig, IReadOnlyList<GpuProcessSample> Processes)
{
    /// <summary>Why per-process utilisation is missing, when it is (MIG, an old driver): said, never guessed.</summary>
    public string? UtilizationNote { get; init; }
}

/// <summary>Where GPU samples come from: NVML on a real host, a script in tests.</summary>
public interface IGpuSource
{
    /// <summary>"nvml: 8 devices, driver ..." or "nvml: unavailable (libnvidia-ml.so.1 not found)".</summary>
    string Status { get; }

    bool Available { get; }

    /// <summary>Every device now; empty when unavailable.</summary>
    IReadOnlyList<GpuDeviceSample> Sample();
}
