using System.Net;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Tests.Support;

/// <summary>
/// Kernel records made up for the user-space pipeline: a process is its pid
/// and a start time derived from it, so records about it find the same entry.
/// Pids are high (700000 and up) and their start times made up: no process in
/// /proc is ever mistaken for one.
/// </summary>
public static class Records
{
    public static ulong StartOf(int pid) => 1_000_000_000UL * (ulong)(pid % 100 + 1);

    public static RecordHeader Header(RecordKind kind, int pid, ulong timeNs) =>
        new() { Kind = kind, Version = RecordHeader.AbiVersion, Pid = (uint)pid, TimeNs = timeNs, StartTimeNs = StartOf(pid) };

    /// <summary>A fork of <paramref name="pid"/> from <paramref name="parent"/> (0: none known).</summary>
    public static ForkRecord Fork(int pid, int parent, ulong timeNs = 1) =>
        new() { Header = Header(RecordKind.Fork, pid, timeNs), ParentPid = (uint)parent, ParentStartTimeNs = parent == 0 ? 0 : StartOf(parent) };

    /// <summary>
    /// <paramref name="pid"/> (a child of <paramref name="parent"/>) executes <paramref name="commandLine"/>,
    /// split at spaces: the first word is the path, its file name the comm. <paramref name="jobRoot"/>
    /// is the job root the kernel found (0: in no job); <paramref name="flags"/> are <see cref="ExecRecord"/>'s.
    /// The file that ran is what the path names here, as the kernel would name it; none (0, 0) when it names nothing.
    /// </summary>
    public static ExecRecord Exec(int pid, int parent, string commandLine, ulong timeNs = 10, int jobRoot = 0, uint flags = 0)
    {
        string path = commandLine.Split(' ')[0];
        FileId file = ExecutedFile.KernelIdOf(path) ?? default;
        var e = new ExecRecord
        {
            Header = Header(RecordKind.Exec, pid, timeNs),
            Ppid = (uint)parent,
            ParentStartTimeNs = parent == 0 ? 0 : StartOf(parent),
            JobRootPid = (uint)jobRoot,
            Flags = jobRoot == 0 ? flags : flags | ExecRecord.InJob, // the kernel names a root only for a process in its job
            FileDevice = file.Device,
            FileInode = file.Inode,
        };
        byte[] pathBytes = Encoding.UTF8.GetBytes(path);
        pathBytes.CopyTo(e.Path);
        e.PathLength = (ushort)pathBytes.Length;
        byte[] comm = Encoding.UTF8.GetBytes(Path.GetFileName(path));
        comm.AsSpan(0, Math.Min(comm.Length, 15)).CopyTo(e.Comm);
        byte[] args = Encoding.UTF8.GetBytes(commandLine.Replace(' ', '\0'));
        args.CopyTo(e.Args);
        e.ArgsLength = (ushort)args.Length;
        return e;
    }

    /// <summary>
    /// An exec whose argv (<paramref name="argv"/>, NUL-separated as the kernel keeps it) may be
    /// longer than the exec record holds: the record with its first 1024 bytes, and the
    /// exec_args records the kernel sends before it with the rest, up to 64 KiB.
    /// </summary>
    public static (ExecRecord Exec, ExecArgsRecord[] Tail) LongExec(int pid, int parent, string path, byte[] argv, ulong timeNs = 10, int jobRoot = 0)
    {
        ExecRecord e = Exec(pid, parent, path, timeNs, jobRoot);
        int head = Math.Min(argv.Length, ExecRecord.ArgsCapacity);
        ((Span<byte>)e.Args).Clear();
        argv.AsSpan(0, head).CopyTo(e.Args);
        e.ArgsLength = (ushort)head;
        e.ArgsTotal = (uint)argv.Length;
        if (argv.Length > ExecRecord.ArgsCapacity)
            e.Flags |= ExecRecord.ArgsTruncated;
        var tail = new List<ExecArgsRecord>();
        for (int at = ExecRecord.ArgsCapacity; at < Math.Min(argv.Length, ExecArgsRecord.MaxArgs); at += ExecArgsRecord.ChunkCapacity)
        {
            int n = Math.Min(ExecArgsRecord.ChunkCapacity, Math.Min(argv.Length, ExecArgsRecord.MaxArgs) - at);
            var a = new ExecArgsRecord { Header = Header(RecordKind.ExecArgs, pid, timeNs), Offset = (uint)at, Length = (uint)n };
            argv.AsSpan(at, n).CopyTo(a.Data);
            tail.Add(a);
        }
        return (e, [.. tail]);
    }

    public static ExitRecord Exit(int pid, ulong timeNs) => new() { Header = Header(RecordKind.Exit, pid, timeNs) };

    /// <summary>An established TCP connect by <paramref name="pid"/> to <paramref name="address"/> (IPv4) and <paramref name="port"/>.</summary>
    public static ConnectRecord Connect(int pid, ulong cookie, string address = "0.0.0.0", ushort port = 443, ulong timeNs = 20)
    {
        var c = new ConnectRecord { Header = Header(RecordKind.Connect, pid, timeNs), Cookie = cookie, Family = 2, Protocol = 6, DestinationPort = port, Result = ConnectResult.Established };
        IPAddress.Parse(address).GetAddressBytes().CopyTo(c.DestinationAddress);
        return c;
    }

    /// <summary>A segment of a connection's first bytes, at <paramref name="offset"/>; <paramref name="flags"/> are <see cref="PayloadRecord"/>'s.</summary>
    public static PayloadRecord Payload(int pid, ulong cookie, ReadOnlySpan<byte> segment, ulong timeNs, byte flags = 0, int offset = 0, string address = "0.0.0.0", ushort port = 3333)
    {
        var p = new PayloadRecord
        {
            Header = Header(RecordKind.Payload, pid, timeNs),
            Cookie = cookie,
            Family = 2,
            DestinationPort = port,
            Offset = (ushort)offset,
            Length = (ushort)segment.Length,
            Segments = 1,
            Flags = flags,
        };
        IPAddress.Parse(address).GetAddressBytes().CopyTo(p.DestinationAddress);
        segment.CopyTo(p.Data);
        return p;
    }

    /// <summary>
    /// The kernel's Stratum verdict on <paramref name="pid"/>'s connection <paramref name="cookie"/>
    /// (<see cref="GuardMethod.Drop"/>, <see cref="GuardMethod.Alert"/> or <see cref="StreamRecord.Hold"/>),
    /// decided by <paramref name="method"/> at <paramref name="offset"/>.
    /// </summary>
    public static StreamRecord Stream(int pid, ulong cookie, string method, ulong timeNs, byte verdict = (byte)GuardMethod.Drop, string address = "0.0.0.0", ushort port = 3333, uint offset = 40)
    {
        var r = new StreamRecord { Header = Header(RecordKind.Stream, pid, timeNs), Cookie = cookie, Family = 2, DestinationPort = port, Offset = offset, Verdict = verdict };
        IPAddress.Parse(address).GetAddressBytes().CopyTo(r.DestinationAddress);
        Encoding.UTF8.GetBytes(method).CopyTo(r.Method);
        return r;
    }

    /// <summary>A proxy handshake on <paramref name="pid"/>'s connection to the proxy at <paramref name="address"/>: the client asked for <paramref name="host"/> (as <paramref name="kind"/> writes it) and <paramref name="proxyPort"/>.</summary>
    public static StreamRecord Proxy(int pid, ulong cookie, StreamProxy proxy, ProxyAddress kind, byte[] host, ushort proxyPort, ulong timeNs = 30, string address = "0.0.0.0", ushort port = 1080)
    {
        var r = new StreamRecord
        {
            Header = Header(RecordKind.Stream, pid, timeNs),
            Cookie = cookie,
            Family = 2,
            DestinationPort = port,
            Proxy = proxy,
            ProxyAddress = kind,
            ProxyHostLength = (byte)host.Length,
            ProxyPort = proxyPort,
        };
        IPAddress.Parse(address).GetAddressBytes().CopyTo(r.DestinationAddress);
        host.CopyTo(r.ProxyHost);
        return r;
    }

    /// <summary>A DNS query by <paramref name="pid"/> for <paramref name="name"/> (type A), sent to a resolver on port 53.</summary>
    public static DnsRecord Dns(int pid, string name, ulong timeNs = 30)
    {
        var message = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 }; // id, recursion desired, one question
        foreach (string label in name.Split('.'))
        {
            message.Add((byte)label.Length);
            message.AddRange(Encoding.ASCII.GetBytes(label));
        }
        message.AddRange([0, 0, 1, 0, 1]); // end of name, type A, class IN
        var d = new DnsRecord { Header = Header(RecordKind.Dns, pid, timeNs), Cookie = 1, Family = 2, DestinationPort = 53, Length = (ushort)message.Count };
        IPAddress.Parse("192.168.0.53").GetAddressBytes().CopyTo(d.DestinationAddress);
        message.ToArray().CopyTo(d.Message);
        return d;
    }

    /// <summary>The start of a TLS 1.2 ClientHello naming <paramref name="serverName"/> (SNI), as a client's first bytes.</summary>
    /// <summary>
    /// A TLS 1.3 ClientHello naming <paramref name="serverName"/>, with a padding extension of
    /// <paramref name="padding"/> bytes before the name (a key share as big as a post-quantum one
    /// pushes it as far), in handshake records of <paramref name="recordSize"/> bytes each (0: one record).
    /// </summary>
    public static byte[] TlsClientHello(string serverName, int padding = 0, int recordSize = 0)
    {
        byte[] name = Encoding.ASCII.GetBytes(serverName);
        var extensions = new List<byte>();
        if (padding > 0)
        {
            extensions.AddRange([0, 21]); // padding (RFC 7685)
            extensions.AddRange(BigEndian16(padding));
            extensions.AddRange(new byte[padding]);
        }
        extensions.AddRange([0, 0]); // server_name
        extensions.AddRange(BigEndian16(name.Length + 5));
        extensions.AddRange(BigEndian16(name.Length + 3)); // the list
        extensions.Add(0); // host name
        extensions.AddRange(BigEndian16(name.Length));
        extensions.AddRange(name);
        var body = new List<byte> { 3, 3 }; // client version
        body.AddRange(new byte[32]); // random
        body.Add(0); // no session id
        body.AddRange([0, 2, 0x13, 0x01]); // one cipher suite
        body.AddRange([1, 0]); // null compression
        body.AddRange(BigEndian16(extensions.Count));
        body.AddRange(extensions);
        var message = new List<byte> { 1, (byte)(body.Count >> 16) }; // ClientHello, 24-bit length
        message.AddRange(BigEndian16(body.Count & 0xFFFF));
        message.AddRange(body);
        int size = recordSize > 0 ? recordSize : message.Count;
        var records = new List<byte>();
        for (int at = 0; at < message.Count; at += size)
        {
            int n = Math.Min(size, message.Count - at);
            records.AddRange([22, 3, 1]); // handshake record
            records.AddRange(BigEndian16(n));
            records.AddRange(message.GetRange(at, n));
        }
        return [.. records];
    }

    private static byte[] BigEndian16(int value) => [(byte)(value >> 8), (byte)value];
}
