using System.Buffers;
using System.Buffers.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>
/// A process's GPU lines (gpu-open, gpu-first-ioctl, gpu-activity): the
/// device, the ioctl counts, the RM classes allocated and the work they show,
/// under guard.gpu.
/// </summary>
internal sealed class EcsGpuFields(EcsHeader header, EcsProcessFields processes)
{
    /// <summary>guard.gpu.work[]: each flag's name, in the order written.</summary>
    private static readonly (GpuWork Flag, string Name)[] WorkNames =
    [
        (GpuWork.Opened, "opened"), (GpuWork.Memory, "memory"), (GpuWork.Channel, "channel"),
        (GpuWork.Compute, "compute"), (GpuWork.UnifiedMemory, "uvm"),
    ];

    /// <summary>
    /// A GPU line's members after the header's. A process's use of the GPU
    /// driver (its device files and ioctls) is ECS driver activity; ECS keeps
    /// category host for facts about the host itself.
    /// </summary>
    public void Write(JsonLineWriter w, GpuEvent g)
    {
        header.Event(w, g.Sequence, "info"u8, "driver"u8, EventNames.Utf8(EventNames.ActionOf(g.Kind)));
        processes.Process(w, g.Process);
        w.StartObject("guard"u8);
        if (g.Process is { } p)
            EcsProcessFields.GuardMembers(w, p);
        Gpu(w, g);
        w.EndObject();
    }

    /// <summary>guard.gpu.kind of an RM class.</summary>
    private static string KindName(GpuObjectKind kind) => kind switch
    {
        GpuObjectKind.Client => "client",
        GpuObjectKind.Device => "device",
        GpuObjectKind.Memory => "memory",
        GpuObjectKind.AddressSpace => "address-space",
        GpuObjectKind.ChannelGroup => "channel-group",
        GpuObjectKind.Channel => "channel",
        GpuObjectKind.Compute => "compute",
        _ => "copy",
    };

    /// <summary>guard.gpu: the device; the access mode of an open, the command of a first ioctl, the counts of activity.</summary>
    private static void Gpu(JsonLineWriter w, GpuEvent g)
    {
        w.StartObject("gpu"u8);
        w.StartObject("device"u8);
        w.Number("major"u8, g.Major);
        w.Number("minor"u8, g.Minor);
        w.AsciiString("role"u8, g.Role == GpuRole.UnifiedMemory ? "uvm"u8 : "rm"u8);
        w.EndObject();
        if (g.Kind == GpuEventKind.Open)
            w.Number("access"u8, g.Access);
        if (g.Kind == GpuEventKind.FirstIoctl)
            w.Number("ioctl_command"u8, g.Command);
        if (g.Activity is { } a)
            Activity(w, a);
        w.EndObject();
    }

    /// <summary>guard.gpu.ioctls, classes[] (hex id, with name and kind when known) and work[].</summary>
    private static void Activity(JsonLineWriter w, GpuActivity a)
    {
        w.StartObject("ioctls"u8);
        w.Number("rm_alloc"u8, a.Counts[(int)IoctlKind.RmAlloc]);
        w.Number("rm_free"u8, a.Counts[(int)IoctlKind.RmFree]);
        w.Number("rm_control"u8, a.Counts[(int)IoctlKind.RmControl]);
        w.Number("rm_map"u8, a.Counts[(int)IoctlKind.RmMap]);
        w.Number("rm_other"u8, a.Counts[(int)IoctlKind.RmOther]);
        w.Number("uvm"u8, a.Counts[(int)IoctlKind.Uvm]);
        w.EndObject();
        w.StartArray("classes"u8);
        // "0x" and at least four hex digits of a 32-bit class: ten bytes at most.
        Span<byte> hex = stackalloc byte[10];
        foreach ((uint cls, ulong count) in a.Classes)
        {
            w.StartObject();
            hex[0] = (byte)'0';
            hex[1] = (byte)'x';
            Utf8Formatter.TryFormat(cls, hex[2..], out int n, new StandardFormat('x', 4));
            w.AsciiString("class"u8, hex[..(n + 2)]);
            if (GpuClasses.Find(cls) is { } known)
            {
                w.Text("name"u8, known.Name);
                w.Text("kind"u8, KindName(known.Kind));
            }
            w.Number("count"u8, count);
            w.EndObject();
        }
        w.EndArray();
        GpuWork work = a.Work;
        w.StartArray("work"u8);
        foreach ((GpuWork flag, string name) in WorkNames)
        {
            if ((work & flag) != 0)
                w.TextItem(name);
        }
        w.EndArray();
    }
}
