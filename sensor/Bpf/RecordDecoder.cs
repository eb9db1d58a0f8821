using System.Runtime.InteropServices;
using Guard.Sensor.Abi;

namespace Guard.Sensor.Bpf;

/// <summary>Receives each record, decoded in place; the reference is valid only during the call.</summary>
public interface IRecordHandler
{
    void OnExec(in ExecRecord record);

    void OnFork(in ForkRecord record);

    void OnExit(in ExitRecord record);

    void OnConnect(in ConnectRecord record);

    void OnPayload(in PayloadRecord record);

    void OnDns(in DnsRecord record);

    void OnGpuOpen(in GpuOpenRecord record);

    void OnGpuIoctl(in GpuIoctlRecord record);

    void OnStream(in StreamRecord record);

    void OnExecArgs(in ExecArgsRecord record);
}

public enum DecodeFailure
{
    TooShort,
    UnknownKind,
    VersionMismatch,
    Count,
}

/// <summary>
/// Checks each record's kind, version and size, then dispatches it through a
/// table of handlers. Failures are typed and counted, never thrown: one bad
/// record must not stop the stream.
/// </summary>
public sealed class RecordDecoder
{
    private delegate void Dispatch(ReadOnlySpan<byte> bytes, IRecordHandler handler);

    private static readonly (int Size, Dispatch Dispatch)[] Table = BuildTable();

    private readonly long[] decoded = new long[(int)RecordKind.Count];
    private readonly long[] failures = new long[(int)DecodeFailure.Count];

    public ReadOnlySpan<long> Decoded => decoded;

    public ReadOnlySpan<long> Failures => failures;

    public long TotalFailures => failures.Sum();

    private static (int, Dispatch)[] BuildTable()
    {
        var table = new (int, Dispatch)[(int)RecordKind.Count];
        table[(int)RecordKind.Exec] = (Marshal.SizeOf<ExecRecord>(), static (b, h) => h.OnExec(in MemoryMarshal.AsRef<ExecRecord>(b)));
        table[(int)RecordKind.Fork] = (Marshal.SizeOf<ForkRecord>(), static (b, h) => h.OnFork(in MemoryMarshal.AsRef<ForkRecord>(b)));
        table[(int)RecordKind.Exit] = (Marshal.SizeOf<ExitRecord>(), static (b, h) => h.OnExit(in MemoryMarshal.AsRef<ExitRecord>(b)));
        table[(int)RecordKind.Connect] = (Marshal.SizeOf<ConnectRecord>(), static (b, h) => h.OnConnect(in MemoryMarshal.AsRef<ConnectRecord>(b)));
        table[(int)RecordKind.Payload] = (Marshal.SizeOf<PayloadRecord>(), static (b, h) => h.OnPayload(in MemoryMarshal.AsRef<PayloadRecord>(b)));
        table[(int)RecordKind.Dns] = (Marshal.SizeOf<DnsRecord>(), static (b, h) => h.OnDns(in MemoryMarshal.AsRef<DnsRecord>(b)));
        table[(int)RecordKind.GpuOpen] = (Marshal.SizeOf<GpuOpenRecord>(), static (b, h) => h.OnGpuOpen(in MemoryMarshal.AsRef<GpuOpenRecord>(b)));
        table[(int)RecordKind.GpuIoctl] = (Marshal.SizeOf<GpuIoctlRecord>(), static (b, h) => h.OnGpuIoctl(in MemoryMarshal.AsRef<GpuIoctlRecord>(b)));
        table[(int)RecordKind.Stream] = (Marshal.SizeOf<StreamRecord>(), static (b, h) => h.OnStream(in MemoryMarshal.AsRef<StreamRecord>(b)));
        table[(int)RecordKind.ExecArgs] = (Marshal.SizeOf<ExecArgsRecord>(), static (b, h) => h.OnExecArgs(in MemoryMarshal.AsRef<ExecArgsRecord>(b)));
        return table;
    }

    public void Decode(ReadOnlySpan<byte> bytes, IRecordHandler handler)
    {
        if (bytes.Length < Marshal.SizeOf<RecordHeader>())
        {
            failures[(int)DecodeFailure.TooShort]++;
            return;
        }
        ref readonly RecordHeader header = ref MemoryMarshal.AsRef<RecordHeader>(bytes);
        int kind = (int)header.Kind;
        if (kind <= 0 || kind >= Table.Length || Table[kind].Dispatch is null)
        {
            failures[(int)DecodeFailure.UnknownKind]++;
            return;
        }
        if (header.Version != RecordHeader.AbiVersion)
        {
            failures[(int)DecodeFailure.VersionMismatch]++;
            return;
        }
        (int size, Dispatch dispatch) = Table[kind];
        if (bytes.Length < size)
        {
            failures[(int)DecodeFailure.TooShort]++;
            return;
        }
        decoded[kind]++;
        dispatch(bytes, handler);
    }
}
