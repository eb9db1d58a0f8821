using System.Runtime.InteropServices;

namespace Guard.Sensor.Gpu;

/// <summary>
/// NVML, bound by source-generated P/Invoke against libnvidia-ml.so.1, which
/// comes with the driver: never linked, resolved on first call, so a host
/// without it fails that call (DllNotFoundException) and nothing else.
/// Layouts from nvml.h.
/// </summary>
internal static unsafe partial class NvmlLibrary
{
    private const string Library = "libnvidia-ml.so.1";

    internal const int Success = 0;
    internal const int NotSupported = 3;
    internal const int InsufficientSize = 7;
    internal const int NotFound = 6;
    internal const int NameBufferSize = 96;
    internal const int UuidBufferSize = 96;

    /// <summary>NVML_STRUCT_VERSION(ProcessesUtilizationInfo, 1): the struct's size with the version in the top byte.</summary>
    internal const uint ProcessesUtilizationInfoV1 = 0x01000018;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Utilization
    {
        public uint Gpu;
        public uint Memory;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Memory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    /// <summary>nvmlProcessInfo_t (the _v2 and _v3 calls).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProcessInfo
    {
        public uint Pid;
        public ulong UsedGpuMemory;
        public uint GpuInstanceId;
        public uint ComputeInstanceId;
    }

    /// <summary>nvmlProcessUtilizationSample_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProcessUtilizationSample
    {
        public uint Pid;
        public ulong TimeStamp;
        public uint SmUtil;
        public uint MemUtil;
        public uint EncUtil;
        public uint DecUtil;
    }

    /// <summary>nvmlProcessUtilizationInfo_v1_t (40 bytes with its padding).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProcessUtilizationInfo
    {
        public ulong TimeStamp;
        public uint Pid;
        public uint SmUtil;
        public uint MemUtil;
        public uint EncUtil;
        public uint DecUtil;
        public uint JpgUtil;
        public uint OfaUtil;
    }

    /// <summary>nvmlProcessesUtilizationInfo_v1_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProcessesUtilizationInfo
    {
        public uint Version;
        public uint ProcessSamplesCount;
        public ulong LastSeenTimeStamp;
        public ProcessUtilizationInfo* ProcUtilArray;
    }

    [LibraryImport(Library, EntryPoint = "nvmlInit_v2")]
    internal static partial int Init();

    [LibraryImport(Library, EntryPoint = "nvmlShutdown")]
    internal static partial int Shutdown();

    [LibraryImport(Library, EntryPoint = "nvmlErrorString")]
    internal static partial byte* ErrorString(int result);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetCount_v2")]
    internal static partial int DeviceGetCount(uint* count);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    internal static partial int DeviceGetHandleByIndex(uint index, nint* device);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetName")]
    internal static partial int DeviceGetName(nint device, byte* name, uint length);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetUUID")]
    internal static partial int DeviceGetUuid(nint device, byte* uuid, uint length);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetUtilizationRates")]
    internal static partial int DeviceGetUtilizationRates(nint device, Utilization* utilization);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    internal static partial int DeviceGetMemoryInfo(nint device, Memory* memory);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetPowerUsage")]
    internal static partial int DeviceGetPowerUsage(nint device, uint* milliwatts);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetMigMode")]
    internal static partial int DeviceGetMigMode(nint device, uint* current, uint* pending);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetComputeRunningProcesses_v3")]
    internal static partial int DeviceGetComputeRunningProcessesV3(nint device, uint* count, ProcessInfo* infos);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetComputeRunningProcesses_v2")]
    internal static partial int DeviceGetComputeRunningProcessesV2(nint device, uint* count, ProcessInfo* infos);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetProcessUtilization")]
    internal static partial int DeviceGetProcessUtilization(nint device, ProcessUtilizationSample* samples, uint* count, ulong lastSeenTimeStamp);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetProcessesUtilizationInfo")]
    internal static partial int DeviceGetProcessesUtilizationInfo(nint device, ProcessesUtilizationInfo* info);
}
