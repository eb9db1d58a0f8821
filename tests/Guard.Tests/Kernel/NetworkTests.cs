using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

[Collection(KernelTestGroup.Name)]
public sealed class NetworkTests
{
    /// <summary>A loopback listener that accepts and reads everything, so senders are never blocked.</summary>
    private sealed class Listener : IDisposable
    {
        private readonly TcpListener listener;
        private readonly CancellationTokenSource stop = new();

        public Listener(IPAddress address)
        {
            listener = new TcpListener(address, 0);
            listener.Start();
            _ = Task.Run(AcceptLoop);
        }

        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        private async Task AcceptLoop()
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    TcpClient client = await listener.AcceptTcpClientAsync(stop.Token);
                    _ = Task.Run(async () =>
                    {
                        using (client)
                        {
                            var buffer = new byte[4096];
                            while (await client.GetStream().ReadAsync(buffer, stop.Token) > 0)
                            {
                            }
                        }
                    });
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
        }
    }

    private static int ClosedPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private static void RunPython(string script, params string[] args)
    {
        using Process p = Run.PythonScript(script, args);
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"python exited {p.ExitCode}: {error}");
    }

    private static bool IsConnect(RecordedEvent e, int port) =>
        e.Action == "connect" && e.Json.GetProperty("destination").GetProperty("port").GetInt32() == port;

    [Fact]
    public void ConnectsOverIPv4AndIPv6CarryDestinationAndResult()
    {
        using var v4 = new Listener(IPAddress.Loopback);
        using var v6 = new Listener(IPAddress.IPv6Loopback);
        int closed = ClosedPort();
        using SensorHarness sensor = SensorHarness.Start();

        const string script = """
            import socket, sys, os
            for family, host, port in ((socket.AF_INET, '127.0.0.1', int(sys.argv[1])), (socket.AF_INET6, '::1', int(sys.argv[2])), (socket.AF_INET, '127.0.0.1', int(sys.argv[3]))):
                s = socket.socket(family, socket.SOCK_STREAM)
                try:
                    s.connect((host, port))
                except ConnectionRefusedError:
                    pass
                s.close()
            print(os.getpid())
            """;
        using Process python = Run.PythonScript(script, v4.Port.ToString(), v6.Port.ToString(), closed.ToString());
        python.WaitForExit();
        int pid = python.Id;

        RecordedEvent ok4 = sensor.WaitFor("IPv4 connect", e => IsConnect(e, v4.Port));
        Assert.Equal("127.0.0.1", ok4.Json.GetProperty("destination").GetProperty("ip").GetString());
        Assert.Equal("success", ok4.Json.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal("ipv4", ok4.Json.GetProperty("network").GetProperty("type").GetString());
        Assert.Equal(pid, ok4.Pid);

        RecordedEvent ok6 = sensor.WaitFor("IPv6 connect", e => IsConnect(e, v6.Port));
        Assert.Equal("::1", ok6.Json.GetProperty("destination").GetProperty("ip").GetString());
        Assert.Equal("success", ok6.Json.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal("ipv6", ok6.Json.GetProperty("network").GetProperty("type").GetString());
        Assert.Equal(pid, ok6.Pid);

        RecordedEvent refused = sensor.WaitFor("refused connect", e => IsConnect(e, closed));
        Assert.Equal("failure", refused.Json.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(["connection"], refused.Json.GetProperty("event").GetProperty("type").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(pid, refused.Pid);
    }

    /// <summary>
    /// A connect whose SYN is never answered (the listener's accept queue is
    /// full, so the kernel drops it) and that its process closes while it is
    /// still connecting: one connect event, a failure, with its source port;
    /// the connect that filled the queue, one success.
    /// </summary>
    [Fact]
    public void AConnectGivenUpOnWhileConnectingIsOneFailure()
    {
        using SensorHarness sensor = SensorHarness.Start();
        const string script = """
            import socket, sys, time
            l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)
            port = l.getsockname()[1]
            a = socket.create_connection(('127.0.0.1', port))
            time.sleep(0.1)
            b = socket.socket(); b.setblocking(False)
            try:
                b.connect(('127.0.0.1', port))
            except BlockingIOError:
                pass
            time.sleep(0.3)
            print(port, a.getsockname()[1], b.getsockname()[1], flush=True)
            b.close()
            time.sleep(0.3)
            """;
        using Process python = Run.PythonScript(script);
        string[] ports = python.StandardOutput.ReadLine()!.Split(' ');
        python.WaitForExit();
        int port = int.Parse(ports[0], System.Globalization.CultureInfo.InvariantCulture);
        int filled = int.Parse(ports[1], System.Globalization.CultureInfo.InvariantCulture);
        int abandoned = int.Parse(ports[2], System.Globalization.CultureInfo.InvariantCulture);

        static int SourcePort(RecordedEvent e) => e.Json.TryGetProperty("source", out JsonElement source) ? source.GetProperty("port").GetInt32() : 0;
        RecordedEvent failed = sensor.WaitFor("the abandoned connect", e => IsConnect(e, port) && SourcePort(e) == abandoned);
        Assert.Equal("failure", failed.Json.GetProperty("event").GetProperty("outcome").GetString());
        Assert.Equal(python.Id, failed.Pid);
        Assert.Equal("127.0.0.1", failed.Json.GetProperty("destination").GetProperty("ip").GetString());
        RecordedEvent ok = sensor.WaitFor("the connect that filled the queue", e => IsConnect(e, port) && SourcePort(e) == filled);
        Assert.Equal("success", ok.Json.GetProperty("event").GetProperty("outcome").GetString());
        Thread.Sleep(300);
        Assert.Equal(2, sensor.Events.Count(e => IsConnect(e, port)));
    }

    private const string Sender = """
        import socket, sys, os, time
        port, mode = int(sys.argv[1]), sys.argv[2]
        s = socket.create_connection(('127.0.0.1', port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head, tail = b'{"id":1,"method":"first-bytes",', b'"params":["' + mode.encode() + b'"]}\n'
        if mode == 'write':
            os.write(s.fileno(), head + tail)
        elif mode == 'writev':
            os.writev(s.fileno(), [head, tail])
        elif mode == 'sendmsg':
            s.sendmsg([head + tail])
        elif mode == 'split':
            for i in range(0, len(head + tail), 7):
                s.send((head + tail)[i:i + 7])
                time.sleep(0.01)
        elif mode == 'none':
            time.sleep(0.3)
        time.sleep(0.1)
        s.close()
        """;

    [Theory]
    [InlineData("write")]
    [InlineData("writev")]
    [InlineData("sendmsg")]
    [InlineData("split")]
    public void FirstBytesOfAConnectionArriveOnceAttributedToTheSender(string mode)
    {
        using var listener = new Listener(IPAddress.Loopback);
        using SensorHarness sensor = SensorHarness.Start();
        using Process python = Run.PythonScript(Sender, listener.Port.ToString(), mode);
        python.WaitForExit();
        Assert.Equal(0, python.ExitCode);

        RecordedEvent connect = sensor.WaitFor("connect", e => IsConnect(e, listener.Port));
        long cookie = connect.Json.GetProperty("guard").GetProperty("socket").GetProperty("cookie").GetInt64();
        bool SameSocket(RecordedEvent e) => e.Action == "payload" && e.Json.GetProperty("guard").GetProperty("socket").GetProperty("cookie").GetInt64() == cookie;
        RecordedEvent payload = sensor.WaitFor("payload", SameSocket);

        string expected = "{\"id\":1,\"method\":\"first-bytes\",\"params\":[\"" + mode + "\"]}\n";
        JsonElement data = payload.Json.GetProperty("guard").GetProperty("payload");
        Assert.Equal(expected, data.GetProperty("data").GetString());
        Assert.Equal(Encoding.ASCII.GetByteCount(expected), data.GetProperty("length").GetInt32());
        if (mode == "split")
            Assert.True(data.GetProperty("segments").GetInt32() > 1, "a split send arrives in several segments");
        Assert.Equal(python.Id, payload.Pid);
        Thread.Sleep(400); // past the quiet period: no second record may follow
        Assert.Single(sensor.Events, SameSocket);
    }

    [Fact]
    public void AConnectionWithNoSendGivesNoPayload()
    {
        using var listener = new Listener(IPAddress.Loopback);
        using SensorHarness sensor = SensorHarness.Start();
        using Process python = Run.PythonScript(Sender, listener.Port.ToString(), "none");
        python.WaitForExit();
        RecordedEvent connect = sensor.WaitFor("connect", e => IsConnect(e, listener.Port));
        long cookie = connect.Json.GetProperty("guard").GetProperty("socket").GetProperty("cookie").GetInt64();
        Thread.Sleep(500);
        Assert.DoesNotContain(sensor.Events, e => e.Action == "payload" && e.Json.GetProperty("guard").GetProperty("socket").GetProperty("cookie").GetInt64() == cookie);
    }

    [Fact]
    public void ADnsQueryToALoopbackResolverYieldsTheName()
    {
        string name = $"guard-{Guid.NewGuid():N}"[..20] + ".pool.example";
        // A resolver and its client in a private network namespace: nothing leaves the host.
        const string script = """
            import socket, struct, subprocess, sys, os
            subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
            resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            resolver.bind(('127.0.0.1', 53))
            query = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0)
            for label in sys.argv[1].split('.'):
                query += bytes([len(label)]) + label.encode()
            query += b'\x00' + struct.pack('>HH', 28, 1)
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.sendto(query, ('127.0.0.1', 53))
            resolver.recvfrom(512)
            print(os.getpid())
            """;
        using SensorHarness sensor = SensorHarness.Start();
        using Process p = Run.Start("unshare", "--net", Run.Python, "-c", script, name);
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"resolver script failed: {error}");
        int pid = int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);

        RecordedEvent dns = sensor.WaitFor("DNS query", e => e.Action == "dns-query" && e.Json.GetProperty("dns").GetProperty("question").GetProperty("name").GetString() == name);
        Assert.Equal("AAAA", dns.Json.GetProperty("dns").GetProperty("question").GetProperty("type").GetString());
        Assert.Equal("16962", dns.Json.GetProperty("dns").GetProperty("id").GetString()); // 0x4242: a keyword in ECS
        Assert.Equal("dns", dns.Json.GetProperty("network").GetProperty("protocol").GetString());
        Assert.Equal(53, dns.Json.GetProperty("destination").GetProperty("port").GetInt32());
        Assert.Equal(pid, dns.Pid);
    }
}
