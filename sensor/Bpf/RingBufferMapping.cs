using System.Runtime.InteropServices;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// A BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) read through its memory, the
/// data pages mapped once. libbpf's reader maps the data twice, back to back,
/// so that a record wrapping past the end reads as one run; the kernel
/// inserts every page at mmap, so that doubles the ring in the reader's
/// resident memory (a 16 MiB ring was 32 MiB of the sensor's VmRSS, half of
/// its 64 MB budget). Here the rare record that wraps is copied into a scratch
/// buffer instead. Our own code rather than libbpf's for that reason only.
/// </summary>
/// <remarks>
/// The layout and protocol are the kernel's (kernel/bpf/ringbuf.c): page 0
/// holds the consumer position (the one page a reader may map writable),
/// page 1 the producer position, then the data; positions are byte counters
/// that only grow; each record starts 8-byte aligned with an 8-byte header
/// whose first word is the length, bit 31 set while the producer still
/// writes (BUSY) and bit 30 when it discarded the record (DISCARD). The
/// consumer position lives in the map, so records left by an earlier reader
/// are read by the next one.
/// </remarks>
public sealed unsafe partial class RingBufferMapping : IDisposable
{
    private const uint BusyBit = 1u << 31;
    private const uint DiscardBit = 1u << 30;
    private const int HeaderBytes = 8;
    private const uint MapTypeRingbuf = 27; // BPF_MAP_TYPE_RINGBUF, include/uapi/linux/bpf.h

    private readonly nuint pageSize;
    private readonly nint consumerPage;
    private readonly nint producerArea;
    private readonly nuint producerAreaBytes;
    private readonly ulong* consumerPosition;
    private readonly ulong* producerPosition;
    private readonly byte* data;
    private readonly ulong mask;
    private ulong position;
    private ulong next;
    private byte[] scratch = [];
    private bool disposed;

    /// <summary>
    /// Maps the ring of map descriptor <paramref name="mapFd"/>, which stays the
    /// caller's. Throws <see cref="SensorException"/> when the descriptor is not a
    /// ring buffer map or the kernel refuses the mapping.
    /// </summary>
    public RingBufferMapping(int mapFd)
    {
        MapFd = mapFd;
        DataBytes = RingBytes(mapFd);
        pageSize = (nuint)Environment.SystemPageSize;
        consumerPage = Map(pageSize, ProtRead | ProtWrite, mapFd, 0);
        producerAreaBytes = pageSize + (nuint)DataBytes;
        try
        {
            producerArea = Map(producerAreaBytes, ProtRead, mapFd, (long)pageSize);
        }
        catch
        {
            _ = Unmap(consumerPage, pageSize);
            throw;
        }
        consumerPosition = (ulong*)consumerPage;
        producerPosition = (ulong*)producerArea;
        data = (byte*)producerArea + pageSize;
        mask = (ulong)DataBytes - 1;
        position = Volatile.Read(ref *consumerPosition);
        next = position;
    }

    /// <summary>The map's descriptor: readable (EPOLLIN) when the kernel wakes readers.</summary>
    public int MapFd { get; }

    /// <summary>Bytes of the ring's data area (the map's max_entries, a power of two).</summary>
    public long DataBytes { get; }

    /// <summary>
    /// The oldest committed record not yet consumed, without consuming it: over
    /// the ring's own memory, or over a scratch copy when it wraps past the
    /// end; valid until <see cref="Consume"/>. Records the producer discarded
    /// are consumed on the way. False when none is ready (the ring is empty, or
    /// the oldest is still being written). Throws <see cref="SensorException"/>
    /// on a length no record can have (a corrupt ring).
    /// </summary>
    public bool TryPeek(out ReadOnlySpan<byte> record)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        while (true)
        {
            ulong produced = Volatile.Read(ref *producerPosition);
            if (position >= produced)
            {
                record = default;
                return false;
            }
            uint header = Volatile.Read(ref *(uint*)(data + (position & mask)));
            if ((header & BusyBit) != 0)
            {
                record = default;
                return false;
            }
            uint length = header & ~(BusyBit | DiscardBit);
            if (length > (ulong)DataBytes - HeaderBytes)
                throw new SensorException($"the ring buffer holds a record of {length} bytes, more than the ring ({DataBytes} bytes): the ring is corrupt");
            next = position + ((HeaderBytes + (ulong)length + 7) & ~7UL);
            if ((header & DiscardBit) != 0)
            {
                Consume();
                continue;
            }
            ulong start = (position + HeaderBytes) & mask;
            if (start + length <= (ulong)DataBytes)
            {
                record = new ReadOnlySpan<byte>(data + start, (int)length);
                return true;
            }
            // It wraps: the part up to the end, then the rest from the start of the data.
            if (scratch.Length < length)
                scratch = new byte[Math.Max(length, 4096)];
            int head = (int)((ulong)DataBytes - start);
            new ReadOnlySpan<byte>(data + start, head).CopyTo(scratch);
            new ReadOnlySpan<byte>(data, (int)length - head).CopyTo(scratch.AsSpan(head));
            record = scratch.AsSpan(0, (int)length);
            return true;
        }
    }

    /// <summary>Gives the record <see cref="TryPeek"/> returned back to the kernel; nothing when none is pending.</summary>
    public void Consume()
    {
        if (next == position)
            return;
        position = next;
        Volatile.Write(ref *consumerPosition, position);
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        _ = Unmap(producerArea, producerAreaBytes);
        _ = Unmap(consumerPage, pageSize);
    }

    /// <summary>The data area's size (max_entries) of ring buffer map <paramref name="mapFd"/>.</summary>
    private static long RingBytes(int mapFd)
    {
        // struct bpf_map_info: type, id, key_size, value_size, max_entries (u32 each), ...
        const int InfoBytes = 128;
        uint* info = stackalloc uint[InfoBytes / sizeof(uint)];
        new Span<uint>(info, InfoBytes / sizeof(uint)).Clear();
        uint length = InfoBytes;
        int error = Libbpf.ObjectInfo(mapFd, info, ref length); // libbpf: -errno
        if (error != 0)
            throw new SensorException($"cannot read the ring buffer map's description: {Libc.ErrorText(-error)}");
        if (info[0] != MapTypeRingbuf)
            throw new SensorException($"map descriptor {mapFd} is not a ring buffer (map type {info[0]})");
        uint bytes = info[4];
        return bytes != 0 && (bytes & (bytes - 1)) == 0 ? bytes : throw new SensorException($"the ring buffer's size {bytes} is not a power of two");
    }

    private static nint Map(nuint length, int protection, int fd, long offset)
    {
        const int MapShared = 1;
        nint address = MapMemory(0, length, protection, MapShared, fd, offset);
        return address != -1 ? address : throw new SensorException($"cannot map the ring buffer ({length} bytes at {offset}): {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    private const int ProtRead = 1;
    private const int ProtWrite = 2;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint MapMemory(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Unmap(nint address, nuint length);
}
