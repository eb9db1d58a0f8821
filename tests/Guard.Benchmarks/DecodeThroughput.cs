using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;

namespace Guard.Benchmarks;

/// <summary>
/// User-space cost alone: records decoded, the table updated, ECS JSON encoded
/// to a null stream, on one thread. Two workloads: whole process lives (fork,
/// exec, connect, payload, DNS, exit), whose table entries must allocate, and
/// the steady state of network records on known processes, which must not.
/// </summary>
internal static class DecodeThroughput
{
    private const int Processes = 2000;
    private const int ParentPid = 900_000;

    public sealed record Result(string Workload, double RecordsPerSecond, double BytesPerRecord);

    public static IEnumerable<Result> Measure()
    {
        var table = new ProcessTable(new EntityIds("0123456789abcdef"), null, new UserNames());
        var sink = new JsonLinesSink(Stream.Null, new EcsEncoder(RunInfo.ForThisHost("bench"), new ArgumentRedactor()));
        var emitter = new EventEmitter(table, sink, new EventFilter { Types = new HashSet<EventType>(Enum.GetValues<EventType>()) });
        var pipeline = new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, null), judge: null);
        var decoder = new RecordDecoder();

        byte[] root = Bytes(Fork(ParentPid, 0));
        decoder.Decode(root, pipeline);
        byte[][] births = [.. Enumerable.Range(1, Processes).SelectMany(i => Birth(ParentPid + i))];
        byte[][] lives = [.. Enumerable.Range(1, Processes).SelectMany(i => Life(ParentPid + i))];
        byte[][] steady = [.. Enumerable.Range(1, Processes).SelectMany(i => Network(ParentPid + i))];

        yield return Run("process lives (fork, exec, connect, payload, dns, exit)", lives, decoder, pipeline, sink, rounds: 5);
        // Known processes, live in the table, sending: no allocation expected.
        foreach (byte[] r in births)
            decoder.Decode(r, pipeline);
        yield return Run("steady state (connect, dns on known processes)", steady, decoder, pipeline, sink, rounds: 20);
    }

    /// <summary>
    /// Decode, table, encode and the file output's write, on one core: every
    /// thread of this process (the file's writer too, made after) pinned to
    /// one CPU, the clock stopped once the file holds every line. The file
    /// rotates at 256 MiB, keeping no backup (the disk is not the measure).
    /// </summary>
    public static Result MeasureFileOutput(string work)
    {
        ulong[] before = PinToOneCpu();
        try
        {
            string path = Path.Combine(work, "fileout", "events.jsonl");
            var set = new OutputSet(new EcsEncoder(RunInfo.ForThisHost("bench"), new ArgumentRedactor()));
            QueuedOutput file = set.Add(new QueuedOutput("file", new FileTarget(new RotatingFile(path, new FileRotation(256 << 20, null, 0))), 64 << 20), OutputFormat.Json);
            var table = new ProcessTable(new EntityIds("0123456789abcdef"), null, new UserNames());
            var emitter = new EventEmitter(table, set, new EventFilter { Types = new HashSet<EventType>(Enum.GetValues<EventType>()) });
            var pipeline = new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, null), judge: null);
            var decoder = new RecordDecoder();
            decoder.Decode(Bytes(Fork(ParentPid, 0)), pipeline);
            byte[][] lives = [.. Enumerable.Range(1, Processes).SelectMany(i => Life(ParentPid + i))];

            void Round()
            {
                foreach (byte[] r in lives)
                    decoder.Decode(r, pipeline);
                pipeline.Tick(long.MaxValue / 4);
                set.Flush();
            }

            void Drained()
            {
                while (file.Queue.Pending > 0)
                    Thread.Sleep(1);
            }

            var warm = Stopwatch.StartNew();
            while (warm.Elapsed < TimeSpan.FromSeconds(3))
            {
                Round();
                Drained();
            }
            OutputHealth start = file.Health;
            const int Rounds = 10;
            var clock = Stopwatch.StartNew();
            for (int round = 0; round < Rounds; round++)
                Round();
            Drained();
            clock.Stop();
            OutputHealth end = file.Health;
            set.Dispose();
            long n = (long)lives.Length * Rounds;
            return new Result(
                $"process lives to a rotating file on one core ({end.Written - start.Written} lines written, {end.Lost - start.Lost} lost)",
                n / clock.Elapsed.TotalSeconds, 0);
        }
        finally
        {
            Repin(before);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int tid, nint size, ref ulong mask);

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_getaffinity(int tid, nint size, out ulong mask);

    /// <summary>Pins every thread of this process to the first CPU it may use; returns the masks before.</summary>
    private static ulong[] PinToOneCpu()
    {
        int[] tids = [.. Directory.GetDirectories("/proc/self/task").Select(d => int.Parse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture))];
        var before = new ulong[tids.Length + 1];
        _ = sched_getaffinity(0, sizeof(ulong), out ulong all);
        ulong one = all & (ulong)-(long)all; // lowest set bit
        before[0] = all;
        foreach (int tid in tids)
            _ = sched_setaffinity(tid, sizeof(ulong), ref one);
        return before;
    }

    private static void Repin(ulong[] before)
    {
        ulong all = before[0];
        foreach (string d in Directory.GetDirectories("/proc/self/task"))
            _ = sched_setaffinity(int.Parse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture), sizeof(ulong), ref all);
    }

    private static Result Run(string name, byte[][] records, RecordDecoder decoder, EventPipeline pipeline, JsonLinesSink sink, int rounds)
    {
        // Warm-up past tiered JIT (the native binary is compiled ahead of time), table growth and buffers.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed < TimeSpan.FromSeconds(3))
        {
            foreach (byte[] r in records)
                decoder.Decode(r, pipeline);
            pipeline.Tick(long.MaxValue / 4);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        for (int round = 0; round < rounds; round++)
        {
            foreach (byte[] r in records)
                decoder.Decode(r, pipeline);
            pipeline.Tick(long.MaxValue / 4);
            sink.Flush();
        }
        clock.Stop();
        long n = (long)records.Length * rounds;
        return new Result(name, n / clock.Elapsed.TotalSeconds, (double)(GC.GetAllocatedBytesForCurrentThread() - allocated) / n);
    }

    private static ulong ns = 1_000_000_000;

    private static RecordHeader Header(RecordKind kind, int pid, ulong start) =>
        new() { Kind = kind, Version = RecordHeader.AbiVersion, Pid = (uint)pid, TimeNs = ns += 1000, StartTimeNs = start };

    private static ulong StartOf(int pid) => 500_000_000UL * (ulong)(pid % 1000 + 1);

    private static ForkRecord Fork(int pid, int parent)
    {
        var f = new ForkRecord { Header = Header(RecordKind.Fork, pid, StartOf(pid)), ParentPid = (uint)parent, ParentStartTimeNs = parent == 0 ? 0 : StartOf(parent) };
        "python3"u8.CopyTo(f.Comm);
        return f;
    }

    private static IEnumerable<byte[]> Life(int pid)
    {
        foreach (byte[] r in Birth(pid))
            yield return r;
        foreach (byte[] r in Network(pid))
            yield return r;
        var p = new PayloadRecord { Header = Header(RecordKind.Payload, pid, StartOf(pid)), Cookie = (ulong)pid, Family = 2, DestinationPort = 443, Segments = 1, Flags = PayloadRecord.Final };
        byte[] data = "{\"id\":1,\"method\":\"hello\"}\n"u8.ToArray();
        data.CopyTo(p.Data);
        p.Length = (ushort)data.Length;
        yield return Bytes(p);
        yield return Bytes(new ExitRecord { Header = Header(RecordKind.Exit, pid, StartOf(pid)) });
    }

    private static IEnumerable<byte[]> Birth(int pid)
    {
        yield return Bytes(Fork(pid, ParentPid));
        var e = new ExecRecord { Header = Header(RecordKind.Exec, pid, StartOf(pid)), Ppid = ParentPid, ParentStartTimeNs = StartOf(ParentPid) };
        byte[] path = "/usr/bin/python3"u8.ToArray();
        byte[] args = Encoding.ASCII.GetBytes("python3\0train.py\0--epochs\03\0--lr\03e-4\0--token=abc");
        path.CopyTo(e.Path);
        e.PathLength = (ushort)path.Length;
        args.CopyTo(e.Args);
        e.ArgsLength = (ushort)args.Length;
        "python3"u8.CopyTo(e.Comm);
        yield return Bytes(e);
    }

    private static IEnumerable<byte[]> Network(int pid)
    {
        var c = new ConnectRecord { Header = Header(RecordKind.Connect, pid, StartOf(pid)), Cookie = (ulong)pid, Family = 2, Protocol = 6, DestinationPort = 443, SourcePort = 40000, Result = ConnectResult.Established };
        c.DestinationAddress[0] = 10;
        c.DestinationAddress[3] = 7;
        yield return Bytes(c);
        var d = new DnsRecord { Header = Header(RecordKind.Dns, pid, StartOf(pid)), Cookie = (ulong)pid, Family = 2, DestinationPort = 53 };
        byte[] query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, (byte)'p', (byte)'o', (byte)'o', (byte)'l', 7, (byte)'e', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 0, 0, 1, 0, 1];
        query.CopyTo(d.Message);
        d.Length = (ushort)query.Length;
        yield return Bytes(d);
    }

    private static byte[] Bytes<T>(T record) where T : struct
    {
        var bytes = new byte[Marshal.SizeOf<T>()];
        MemoryMarshal.Write(bytes, in record);
        return bytes;
    }
}
