using Guard.Sensor.Abi;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// argv past the exec record's 1024 bytes, as the kernel's exec_args records
/// bring it (read at exec, before the program's first instruction, up to
/// <see cref="ExecArgsRecord.MaxArgs"/>), kept per process until that
/// process's exec record, which the kernel submits after them, takes it. At
/// most <see cref="Capacity"/> processes wait; the oldest is forgotten first
/// (its exec record was lost to a full ring). Only an exec whose argv is
/// longer than 1024 bytes costs anything here.
/// </summary>
public sealed class ExecArgsTails
{
    /// <summary>How many processes' tails wait at most.</summary>
    public const int Capacity = 64;

    private readonly Dictionary<(uint Pid, ulong StartTimeNs), Tail> tails = [];
    private readonly Queue<(uint Pid, ulong StartTimeNs)> order = new();

    /// <summary>Keeps a record's bytes; a record that does not follow the last one of its process (one was lost) ends that tail there.</summary>
    public void Add(in ExecArgsRecord record)
    {
        var key = (record.Header.Pid, record.Header.StartTimeNs);
        if (!tails.TryGetValue(key, out Tail? tail))
        {
            if (record.Offset != ExecRecord.ArgsCapacity)
                return;
            while (tails.Count >= Capacity && order.TryDequeue(out var oldest))
                tails.Remove(oldest);
            tail = new Tail();
            tails[key] = tail;
            order.Enqueue(key);
        }
        int length = (int)Math.Min(record.Length, (uint)ExecArgsRecord.ChunkCapacity);
        int at = tail.Length;
        if (tail.Broken || record.Offset != ExecRecord.ArgsCapacity + (uint)at || at + length > tail.Bytes.Length)
        {
            tail.Broken = true;
            return;
        }
        ((ReadOnlySpan<byte>)record.Data)[..length].CopyTo(tail.Bytes.AsSpan(at));
        tail.Length = at + length;
    }

    /// <summary>
    /// The whole argv of <paramref name="exec"/> as far as the kernel read it:
    /// its own bytes, then the tail that came before it. <paramref name="whole"/>:
    /// every byte of argv is there (none past <see cref="ExecArgsRecord.MaxArgs"/>, no record lost).
    /// Null when the exec record holds all of argv, or no tail came.
    /// </summary>
    public byte[]? Take(in ExecRecord exec, out bool whole)
    {
        whole = false;
        if ((exec.Flags & ExecRecord.ArgsTruncated) == 0 || !tails.Remove((exec.Header.Pid, exec.Header.StartTimeNs), out Tail? tail))
            return null;
        int head = Math.Min((int)exec.ArgsLength, ExecRecord.ArgsCapacity);
        var args = new byte[head + tail.Length];
        ((ReadOnlySpan<byte>)exec.Args)[..head].CopyTo(args);
        tail.Bytes.AsSpan(0, tail.Length).CopyTo(args.AsSpan(head));
        whole = !tail.Broken && head == ExecRecord.ArgsCapacity && (long)head + tail.Length >= exec.ArgsTotal;
        return args;
    }

    private sealed class Tail
    {
        public byte[] Bytes { get; } = new byte[ExecArgsRecord.MaxArgs - ExecRecord.ArgsCapacity];

        public int Length { get; set; }

        public bool Broken { get; set; }
    }
}
