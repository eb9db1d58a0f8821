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
public sealed class ConfineActReader : IDisposable
{
    private readonly RingBufferMapping ring;

    /// <summary>Maps the ring of map descriptor <paramref name="mapFd"/>. Throws <see cref="SensorException"/> when the kernel refuses.</summary>
    public ConfineActReader(int mapFd)
    {
        try
        {
            ring = new RingBufferMapping(mapFd);
        }
        catch (SensorException e)
        {
            throw new SensorException($"cannot open the confinement's ring: {e.Message}");
        }
    }

    /// <summary>Every record waiting now, oldest first, added to <paramref name="into"/>; never waits.</summary>
    public void Drain(List<GuardConfineAct> into)
    {
        while (ring.TryPeek(out ReadOnlySpan<byte> record))
        {
            // A record shorter than this build's is from another build's object: skipped.
            if (record.Length >= Unsafe.SizeOf<GuardConfineAct>())
                into.Add(MemoryMarshal.Read<GuardConfineAct>(record));
            ring.Consume();
        }
    }

    public void Dispose() => ring.Dispose();
}
