using System.Text;
using Guard.Sensor.Abi;

namespace Guard.Sensor.Events;

/// <summary>
/// The fixed values of ECS <c>event.action</c>: one for each kind of line whose
/// name does not depend on its content. An alert is named by its rule and an
/// action by what was done, so neither has a member here.
/// </summary>
public enum EventAction
{
    /// <summary>A program started (<c>exec</c>).</summary>
    Exec,

    /// <summary>A new process (<c>fork</c>).</summary>
    Fork,

    /// <summary>A process ended (<c>exit</c>).</summary>
    Exit,

    /// <summary>An outbound connection's outcome (<c>connect</c>).</summary>
    Connect,

    /// <summary>The first bytes of an outbound TCP connection (<c>payload</c>).</summary>
    Payload,

    /// <summary>A DNS query over UDP to port 53 (<c>dns-query</c>).</summary>
    DnsQuery,

    /// <summary>A process's first open of a GPU device file (<c>gpu-open</c>).</summary>
    GpuOpen,

    /// <summary>A process's first GPU driver ioctl (<c>gpu-first-ioctl</c>).</summary>
    GpuFirstIoctl,

    /// <summary>A process's GPU ioctl counts moved (<c>gpu-activity</c>).</summary>
    GpuActivity,

    /// <summary>A GPU device's NVML sample (<c>gpu-sample</c>).</summary>
    GpuSample,

    /// <summary>One process's share of a GPU in an NVML sample (<c>gpu-process-sample</c>).</summary>
    GpuProcessSample,

    /// <summary>The periodic health metric (<c>heartbeat</c>).</summary>
    Heartbeat,
}

/// <summary>
/// Every name an event goes by, in one place: the type names that
/// <c>guard watch --type</c> accepts and the text line and the exit summary
/// print (<see cref="EventType"/>), the ECS <c>event.action</c> of each kind of
/// line (<see cref="EventAction"/>, also the text line's name for a GPU open
/// or first ioctl), and the kernel record kinds that the health metric and the
/// exit summary count drops by (<see cref="RecordKind"/>).
/// </summary>
public static class EventNames
{
    /// <summary>Type names, indexed by <see cref="EventType"/>: the member's own name in lower case.</summary>
    private static readonly string[] TypeNames = [.. Enum.GetNames<EventType>().Select(n => n.ToLowerInvariant())];

    /// <summary>UTF-8 of <see cref="Action(EventAction)"/>, indexed by <see cref="EventAction"/>, encoded once.</summary>
    private static readonly byte[][] ActionUtf8 = [.. Enum.GetValues<EventAction>().Select(a => Encoding.UTF8.GetBytes(Action(a)))];

    /// <summary>
    /// UTF-8 of <see cref="Of(RecordKind)"/>, indexed by <see cref="RecordKind"/>,
    /// encoded once; the last, at <see cref="RecordKind.Count"/>, is "unknown".
    /// </summary>
    private static readonly byte[][] RecordUtf8 = [.. Enumerable.Range(0, (int)RecordKind.Count + 1).Select(k => Encoding.UTF8.GetBytes(Of((RecordKind)k)))];

    /// <summary>
    /// The types <c>guard watch --type</c> selects, in <see cref="EventType"/>
    /// order: every type but heartbeat and action, whose lines no filter drops.
    /// </summary>
    public static IReadOnlyList<EventType> SelectableTypes { get; } =
        [.. Enum.GetValues<EventType>().Where(t => t is not (EventType.Heartbeat or EventType.Action))];

    /// <summary>The name of an event type: "exec", "dns", "gpu", ...</summary>
    public static string Of(EventType type) => TypeNames[(int)type];

    /// <summary>The type a <c>--type</c> name selects: the name of one of <see cref="SelectableTypes"/>, exactly (lower case).</summary>
    public static bool TryParseSelectable(string name, out EventType type)
    {
        foreach (EventType t in SelectableTypes)
        {
            if (string.Equals(Of(t), name, StringComparison.Ordinal))
            {
                type = t;
                return true;
            }
        }
        type = default;
        return false;
    }

    /// <summary>The ECS <c>event.action</c> of a kind of line, as README's table of events lists it.</summary>
    public static string Action(EventAction action) => action switch
    {
        EventAction.Exec => "exec",
        EventAction.Fork => "fork",
        EventAction.Exit => "exit",
        EventAction.Connect => "connect",
        EventAction.Payload => "payload",
        EventAction.DnsQuery => "dns-query",
        EventAction.GpuOpen => "gpu-open",
        EventAction.GpuFirstIoctl => "gpu-first-ioctl",
        EventAction.GpuActivity => "gpu-activity",
        EventAction.GpuSample => "gpu-sample",
        EventAction.GpuProcessSample => "gpu-process-sample",
        _ => "heartbeat",
    };

    /// <summary><see cref="Action(EventAction)"/> as UTF-8, for the JSON writer: no allocation.</summary>
    public static ReadOnlySpan<byte> Utf8(EventAction action) => ActionUtf8[(int)action];

    /// <summary>The action of a GPU event of this kind.</summary>
    public static EventAction ActionOf(GpuEventKind kind) => kind switch
    {
        GpuEventKind.Open => EventAction.GpuOpen,
        GpuEventKind.FirstIoctl => EventAction.GpuFirstIoctl,
        _ => EventAction.GpuActivity,
    };

    /// <summary>The name of a kernel record kind, as drops are counted in the health metric (guard.health.drops.*) and the exit summary.</summary>
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
        RecordKind.Stream => "stream",
        RecordKind.ExecArgs => "exec_args",
        _ => "unknown",
    };

    /// <summary><see cref="Of(RecordKind)"/> as UTF-8, for the JSON writer: no allocation; "unknown" for a kind out of range.</summary>
    public static ReadOnlySpan<byte> Utf8(RecordKind kind) => RecordUtf8[Math.Min((int)kind, (int)RecordKind.Count)];
}
