using Guard.Sensor.Abi;

namespace Guard.Sensor.Events;

/// <summary>Record kinds as they appear in health output and summaries.</summary>
public static class RecordNames
{
    public static string Of(RecordKind kind) => kind switch
    {
        RecordKind.Exec => "exec",
        RecordKind.Fork => "fork",
        RecordKind.Exit => "exit",
        RecordKind.Connect => "connect",
        RecordKind.Payload => "payload",
        RecordKind.Dns => "dns",
        RecordKind.GpuOpen => "gpu_open",
        RecordKind.GpuIoctl => "gpu_ioctl",
        _ => "unknown",
    };

    public static ReadOnlySpan<byte> Utf8(RecordKind kind) => kind switch
    {
        RecordKind.Exec => "exec"u8,
        RecordKind.Fork => "fork"u8,
        RecordKind.Exit => "exit"u8,
        RecordKind.Connect => "connect"u8,
        RecordKind.Payload => "payload"u8,
        RecordKind.Dns => "dns"u8,
        RecordKind.GpuOpen => "gpu_open"u8,
        RecordKind.GpuIoctl => "gpu_ioctl"u8,
        _ => "unknown"u8,
    };
}
