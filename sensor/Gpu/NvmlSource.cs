using System.Text;

namespace Guard.Sensor.Gpu;

/// <summary>
/// GPU samples from NVML, initialised on first use. Without the library, or
/// with NVML failing to start, it says why once in <see cref="Status"/> and
/// samples nothing; it never throws into the sensor.
/// </summary>
public sealed unsafe class NvmlSource : IGpuSource, IDisposable
{
    private const int MaxProcesses = 1024;
    private bool initialised;
    private bool? newUtilization;
    private readonly Dictionary<int, ulong> lastSeen = [];

    private string status = "nvml: not started";
    private bool available;

    /// <summary>Starts NVML on first asking, so the status is what a sample would find.</summary>
    public string Status
    {
        get
        {
            Start();
            return status;
        }
    }

    public bool Available => Start();

    private bool Start()
    {
        if (initialised)
            return available;
        initialised = true;
        try
        {
            int rc = NvmlLibrary.Init();
            uint count = 0;
            if (rc == NvmlLibrary.Success)
                rc = NvmlLibrary.DeviceGetCount(&count);
            available = rc == NvmlLibrary.Success;
            status = available ? $"nvml: {count} device{(count == 1 ? "" : "s")}" : $"nvml: unavailable ({Error(rc)})";
        }
        catch (DllNotFoundException)
        {
            status = "nvml: unavailable (libnvidia-ml.so.1 not found)";
        }
        catch (EntryPointNotFoundException e)
        {
            status = $"nvml: unavailable (the driver's NVML is too old: {e.Message})";
        }
        return available;
    }

    public IReadOnlyList<GpuDeviceSample> Sample()
    {
        if (!Start())
            return [];
        uint count = 0;
        if (NvmlLibrary.DeviceGetCount(&count) != NvmlLibrary.Success)
            return [];
        var devices = new List<GpuDeviceSample>((int)count);
        for (uint i = 0; i < count; i++)
        {
            nint device;
            if (NvmlLibrary.DeviceGetHandleByIndex(i, &device) == NvmlLibrary.Success)
                devices.Add(SampleDevice((int)i, device));
        }
        return devices;
    }

    private GpuDeviceSample SampleDevice(int index, nint device)
    {
        byte* text = stackalloc byte[NvmlLibrary.NameBufferSize];
        string name = NvmlLibrary.DeviceGetName(device, text, NvmlLibrary.NameBufferSize) == NvmlLibrary.Success ? CString(text) : "";
        string uuid = NvmlLibrary.DeviceGetUuid(device, text, NvmlLibrary.UuidBufferSize) == NvmlLibrary.Success ? CString(text) : "";
        NvmlLibrary.Utilization utilization = default;
        _ = NvmlLibrary.DeviceGetUtilizationRates(device, &utilization); // MIG: not supported, reads 0
        NvmlLibrary.Memory memory = default;
        _ = NvmlLibrary.DeviceGetMemoryInfo(device, &memory);
        uint power;
        uint? milliwatts = NvmlLibrary.DeviceGetPowerUsage(device, &power) == NvmlLibrary.Success ? power : null;
        uint current = 0, pending = 0;
        nint currentMode = (nint)(&current), pendingMode = (nint)(&pending);
        bool mig = Optional(() => NvmlLibrary.DeviceGetMigMode(device, (uint*)currentMode, (uint*)pendingMode)) == NvmlLibrary.Success && current == 1;

        var processes = new Dictionary<int, GpuProcessSample>();
        foreach ((int pid, ulong bytes) in ComputeProcesses(device))
            processes[pid] = new GpuProcessSample(pid, bytes, null, null);
        string? note = null;
        if (ProcessUtilization(index, device) is { } utilizations)
        {
            foreach ((int pid, uint sm, uint mem) in utilizations)
                processes[pid] = (processes.GetValueOrDefault(pid) ?? new GpuProcessSample(pid, null, null, null)) with { SmPercent = sm, MemoryPercent = mem };
        }
        else
        {
            note = mig ? "per-process utilisation is not available with MIG on" : "per-process utilisation is not supported by this driver or device";
        }
        return new GpuDeviceSample(index, name, uuid, utilization.Gpu, utilization.Memory, memory.Used, memory.Total, milliwatts, mig, [.. processes.Values])
        {
            UtilizationNote = note,
        };
    }

    private static List<(int Pid, ulong Bytes)> ComputeProcesses(nint device)
    {
        var infos = new NvmlLibrary.ProcessInfo[MaxProcesses];
        uint count = MaxProcesses;
        int rc;
        fixed (NvmlLibrary.ProcessInfo* p = infos)
        {
            nint c = (nint)(&count), array = (nint)p;
            rc = Optional(() => NvmlLibrary.DeviceGetComputeRunningProcessesV3(device, (uint*)c, (NvmlLibrary.ProcessInfo*)array));
            if (rc == -1)
            {
                count = MaxProcesses;
                rc = Optional(() => NvmlLibrary.DeviceGetComputeRunningProcessesV2(device, (uint*)c, (NvmlLibrary.ProcessInfo*)array));
            }
        }
        var found = new List<(int, ulong)>();
        if (rc != NvmlLibrary.Success)
            return found;
        for (int i = 0; i < count && i < MaxProcesses; i++)
            found.Add(((int)infos[i].Pid, infos[i].UsedGpuMemory));
        return found;
    }

    /// <summary>Per-process SM and memory utilisation since the last sample: the newer call where the driver has it, else the older one; null when neither works.</summary>
    private List<(int Pid, uint Sm, uint Memory)>? ProcessUtilization(int index, nint device)
    {
        ulong since = lastSeen.GetValueOrDefault(index);
        var found = new List<(int, uint, uint)>();
        if (newUtilization != false)
        {
            var entries = new NvmlLibrary.ProcessUtilizationInfo[MaxProcesses];
            fixed (NvmlLibrary.ProcessUtilizationInfo* p = entries)
            {
                var info = new NvmlLibrary.ProcessesUtilizationInfo
                {
                    Version = NvmlLibrary.ProcessesUtilizationInfoV1,
                    ProcessSamplesCount = MaxProcesses,
                    LastSeenTimeStamp = since,
                    ProcUtilArray = p,
                };
                nint infoAddress = (nint)(&info);
                int rc = Optional(() => NvmlLibrary.DeviceGetProcessesUtilizationInfo(device, (NvmlLibrary.ProcessesUtilizationInfo*)infoAddress));
                newUtilization = rc is not (-1 or NvmlLibrary.NotSupported);
                if (rc == NvmlLibrary.Success || rc == NvmlLibrary.NotFound)
                {
                    for (int i = 0; i < info.ProcessSamplesCount && i < MaxProcesses; i++)
                    {
                        found.Add(((int)entries[i].Pid, entries[i].SmUtil, entries[i].MemUtil));
                        lastSeen[index] = Math.Max(lastSeen.GetValueOrDefault(index), entries[i].TimeStamp);
                    }
                    return found;
                }
            }
        }
        var samples = new NvmlLibrary.ProcessUtilizationSample[MaxProcesses];
        uint count = MaxProcesses;
        int old;
        fixed (NvmlLibrary.ProcessUtilizationSample* p = samples)
        {
            nint c = (nint)(&count), array = (nint)p;
            old = Optional(() => NvmlLibrary.DeviceGetProcessUtilization(device, (NvmlLibrary.ProcessUtilizationSample*)array, (uint*)c, since));
        }
        // NOT_FOUND: no process ran on it since the last sample.
        if (old == NvmlLibrary.NotFound)
            return found;
        if (old != NvmlLibrary.Success)
            return null;
        for (int i = 0; i < count && i < MaxProcesses; i++)
        {
            found.Add(((int)samples[i].Pid, samples[i].SmUtil, samples[i].MemUtil));
            lastSeen[index] = Math.Max(lastSeen.GetValueOrDefault(index), samples[i].TimeStamp);
        }
        return found;
    }

    /// <summary>Calls an NVML function the driver may not export; -1 when it does not.</summary>
    private static int Optional(Func<int> call)
    {
        try
        {
            return call();
        }
        catch (EntryPointNotFoundException)
        {
            return -1;
        }
    }

    private static string Error(int rc)
    {
        try
        {
            byte* text = NvmlLibrary.ErrorString(rc);
            return text == null ? $"error {rc}" : $"{CString(text)} ({rc})";
        }
        catch (EntryPointNotFoundException)
        {
            return $"error {rc}";
        }
    }

    private static string CString(byte* text) => Encoding.UTF8.GetString(new ReadOnlySpan<byte>(text, new ReadOnlySpan<byte>(text, 256).IndexOf((byte)0) is var n and >= 0 ? n : 256));

    public void Dispose()
    {
        if (available)
            _ = NvmlLibrary.Shutdown();
        available = false;
    }
}
