using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Reads the confine_acts ring (bpf/confine.bpf.c): one record per exec the
/// kernel killed (or, in audit, let run) and per GPU open it refused. The ring
/// is pinned with the confinement, so records written while no sensor ran are
/// read by the next one, as far as the ring held them.
/// </summary>
public sealed unsafe class ConfineActReader : IDisposable
{
    private readonly nint ring;
    private readonly List<GuardConfineAct> pending = [];
    private GCHandle self;

    /// <summary>Opens the ring of map descriptor <paramref name="mapFd"/>. Throws <see cref="SensorException"/> when libbpf cannot.</summary>
    public ConfineActReader(int mapFd)
    {
        self = GCHandle.Alloc(this);
        ring = Libbpf.RingBufferNew(mapFd, &OnSample, GCHandle.ToIntPtr(self), 0);
        if (ring == 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            self.Free();
            throw new SensorException($"cannot open the confinement's ring: {Libc.ErrorText(errno)}");
        }
    }

    /// <summary>Every record waiting now, oldest first, added to <paramref name="into"/>; never waits.</summary>
    public void Drain(List<GuardConfineAct> into)
    {
        pending.Clear();
        _ = Libbpf.RingBufferConsume(ring);
        into.AddRange(pending);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSample(nint context, void* data, nuint size)
    {
        var reader = (ConfineActReader)GCHandle.FromIntPtr(context).Target!;
        // A record shorter than this build's is from another build's object: skipped.
        if ((int)size >= sizeof(GuardConfineAct))
            reader.pending.Add(*(GuardConfineAct*)data);
        return 0;
    }

    public void Dispose()
    {
        if (!self.IsAllocated)
            return;
        Libbpf.RingBufferFree(ring);
        self.Free();
    }
}
