using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Stratum as a miner's author would hide it, sent by a python3 stand-in to
/// a loopback "pool" in a private network namespace: before the login, a
/// newline or a byte order mark; the method written with escapes; the key
/// in another case, the method in another case, with a suffix or a NUL; a
/// batch; the method past byte 256; a harmless message first; SOCKS4, 4a and
/// 5 and HTTP CONNECT first (after empty lines, or after other HTTP
/// requests, one with a body); the socket reconnected; TCP Fast Open; the line
/// completed long after its first bytes. Each time none of the method's
/// bytes reach the pool, the sender is killed and there is an alert. Then
/// ordinary traffic shaped like it passes untouched.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class StratumEvasionTests
{
    /// <summary>
    /// The pool: listens on each port given, records every byte of one
    /// connection to OUT.PORT; on its last port it answers the handshake of
    /// the proxy named (one canned reply per message received), so a client
    /// that waits for each reply goes on.
    /// </summary>
    private const string Pool = """
        import socket, sys, threading, time
        out, mode, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(',')]
        ok = b'\x05\x00\x00\x01' + bytes(6)
        replies = {'socks5': [b'\x05\x00', ok], 'socks5auth': [b'\x05\x02', b'\x01\x00', ok],
                   'socks4': [b'\x00\x5a' + bytes(6)], 'http': [b'HTTP/1.1 200 Connection established\r\n\r\n']}
        listeners = []
        for port in ports:
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
            l.bind(('127.0.0.1', port)); l.listen(); l.settimeout(8)
            listeners.append((port, l))
        def serve(port, l):
            got = b''
            answers = list(replies.get(mode, [])) if port == ports[-1] else []
            try:
                c, _ = l.accept(); c.settimeout(0.2)
                end = time.time() + 4
                while time.time() < end:
                    try:
                        b = c.recv(65536)
                        if not b: break
                        got += b
                        if answers: c.sendall(answers.pop(0))
                    except socket.timeout:
                        pass
            except OSError:
                pass
            open(out + '.' + str(port), 'wb').write(got)
        threads = [threading.Thread(target=serve, args=p) for p in listeners]
        for t in threads: t.start()
        open(out + '.ready', 'w').close()
        for t in threads: t.join()
        """;

    /// <summary>
    /// The miner: runs the steps of a JSON file (connect, send and maybe wait
    /// for the reply, sleep, disconnect with connect(AF_UNSPEC), send with TCP
    /// Fast Open), then keeps going as a miner would and says it survived.
    /// </summary>
    private const string Miner = """
        import base64, ctypes, json, os, socket, sys, time
        out, steps = sys.argv[1], json.load(open(sys.argv[2]))
        while not os.path.exists(out + '.ready'): time.sleep(0.01)
        libc = ctypes.CDLL(None, use_errno=True)
        s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for step in steps:
            op = step['op']
            if op == 'connect':
                s.connect(('127.0.0.1', step['port']))
            elif op == 'send':
                s.sendall(base64.b64decode(step['data']))
                if step.get('reply'): s.recv(4096)
            elif op == 'sleep':
                time.sleep(step['s'])
            elif op == 'unspec':
                unspec = ctypes.create_string_buffer(16)
                if libc.connect(s.fileno(), unspec, 16) != 0: sys.exit('connect(AF_UNSPEC): errno %d' % ctypes.get_errno())
            elif op == 'tfo':
                # Non-blocking, sendto returns what the SYN carried (a cookie-less SYN would carry nothing).
                s.setblocking(False)
                sent = s.sendto(base64.b64decode(step['data']), socket.MSG_FASTOPEN, ('127.0.0.1', step['port']))
                open(out + '.syn-data', 'w').write(str(sent))
                s.setblocking(True)
        s.settimeout(5)
        time.sleep(2)
        s.sendall(b'{"id":4,"result":null}\n')
        open(out + '.survived', 'w').close()
        """;

    private const int PoolPort = 3333;
    private const int HarmlessPort = 8080;

    private static byte[] Login(string method = "\"login\"", string prefix = "") =>
        Encoding.UTF8.GetBytes(prefix + "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":" + method + ",\"params\":{\"login\":\"x\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0\"}}\n");

    private static byte[] Bytes(params object[] parts) =>
        [.. parts.SelectMany(p => p switch { string s => Encoding.UTF8.GetBytes(s), byte[] b => b, int i => [(byte)i], _ => throw new ArgumentException("part") })];

    /// <summary>One way of hiding: the pool's mode, the steps, and what the pool's port is sent in all.</summary>
    public sealed record Evasion(string Mode, object[] Steps)
    {
        /// <summary>The ports the steps connect to, the pool's last.</summary>
        public int[] Ports => [.. Steps.Select(s => JsonSerializer.SerializeToElement(s)).Where(s => s.TryGetProperty("port", out _)).Select(s => s.GetProperty("port").GetInt32()).Distinct().OrderBy(p => p == PoolPort)];

        /// <summary>Everything the steps send to the pool's port, in order.</summary>
        public byte[] PoolStream
        {
            get
            {
                var stream = new List<byte>();
                int port = 0;
                foreach (object step in Steps)
                {
                    JsonElement s = JsonSerializer.SerializeToElement(step);
                    string op = s.GetProperty("op").GetString()!;
                    if (op is "connect" or "tfo")
                        port = s.GetProperty("port").GetInt32();
                    if (op is "send" or "tfo" && port == PoolPort)
                        stream.AddRange(Convert.FromBase64String(s.GetProperty("data").GetString()!));
                }
                return [.. stream];
            }
        }
    }

    private static object Connect(int port) => new { op = "connect", port };

    private static object Send(byte[] data, bool reply = false) => new { op = "send", data = Convert.ToBase64String(data), reply };

    private static object Sleep(double s) => new { op = "sleep", s };

    public static TheoryData<string> EvasionNames() => [.. Evasions.Keys];

    private static readonly byte[] SocksLogin = Login();

    private static readonly Dictionary<string, Evasion> Evasions = new()
    {
        ["a newline first"] = new("plain", [Connect(PoolPort), Send(Login(prefix: "\n"))]),
        ["blank and a byte order mark first"] = new("plain", [Connect(PoolPort), Send(Login(prefix: " \r\n\uFEFF\t"))]),
        ["the method escaped"] = new("plain", [Connect(PoolPort), Send(Login("\"log\\u0069n\""))]),
        ["the method's first letter escaped"] = new("plain", [Connect(PoolPort), Send(Login("\"\\u006cogin\""))]),
        ["the key escaped"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"m\\u0065thod\":\"login\",\"params\":{}}\n"))]),
        ["a batch"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("[{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"x\"}}]\n"))]),
        ["the method past byte 256"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",\"params\":{\"login\":\"x\",\"agent\":\"" + new string('a', 3000) + "\"},\"method\":\"login\"}\n"))]),
        ["a harmless message first"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":0,\"method\":\"hello\"}\n")), Sleep(0.1), Send(Login())]),
        ["socks5"] = new("socks5", [Connect(PoolPort), Send([5, 1, 0], reply: true), Send(Bytes(5, 1, 0, 3, 16, "pool.example.org", 0x0D, 0x05), reply: true), Send(SocksLogin)]),
        ["socks5 with a password"] = new("socks5auth", [Connect(PoolPort), Send([5, 2, 0, 2], reply: true), Send(Bytes(1, 4, "user", 4, "pass"), reply: true), Send(Bytes(5, 1, 0, 1, 10, 0, 0, 7, 0x0D, 0x05), reply: true), Send(SocksLogin)]),
        ["socks4"] = new("socks4", [Connect(PoolPort), Send(Bytes(4, 1, 0x0D, 0x05, 10, 0, 0, 7, "miner", 0), reply: true), Send(SocksLogin)]),
        ["socks4a"] = new("socks4", [Connect(PoolPort), Send(Bytes(4, 1, 0x0D, 0x05, 0, 0, 0, 1, 0, "pool.example.org", 0), reply: true), Send(SocksLogin)]),
        ["http connect"] = new("http", [Connect(PoolPort), Send(Bytes("CONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n"), reply: true), Send(SocksLogin)]),
        ["the socket reconnected"] = new("plain", [Connect(HarmlessPort), Send([(byte)'x']), Sleep(0.1), new { op = "unspec" }, Connect(PoolPort), Send(Login())]),
        ["tcp fast open"] = new("plain", [new { op = "tfo", port = PoolPort, data = Convert.ToBase64String(Login()) }]),
        ["completed after 400 ms, the first bytes let through"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",")), Sleep(0.4), Send(Encoding.UTF8.GetBytes("\"method\":\"login\",\"params\":{}}\n"))]),
        // Spellings real pool servers read as the method (Go and Json.NET match keys in any case, ckpool a
        // method's prefix in any case, a C server with strcmp stops at a NUL).
        ["the key in another case"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",\"Method\":\"login\",\"params\":{\"login\":\"x\",\"pass\":\"x\"}}\n"))]),
        ["the method in upper case"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"method\":\"MINING.SUBSCRIBE\",\"params\":[\"cgminer/4.10\"]}\n"))]),
        ["the method with a suffix"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"method\":\"mining.subscribe/cgminer\",\"params\":[\"cgminer/4.10\"]}\n"))]),
        ["a NUL after the method"] = new("plain", [Connect(PoolPort), Send(Login("\"login\\u0000\""))]),
        // HTTP request forms a forward proxy reads before a CONNECT.
        ["an empty line before http connect"] = new("http", [Connect(PoolPort), Send(Bytes("\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n"), reply: true), Send(SocksLogin)]),
        ["a GET, then http connect"] = new("http", [Connect(PoolPort), Send(Bytes("GET http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n"), reply: true), Send(SocksLogin)]),
        ["a request with a body, then http connect"] = new("http", [Connect(PoolPort), Send(Bytes("POST http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\nContent-Length: 5\r\n\r\nhello\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n"), reply: true), Send(SocksLogin)]),
        ["the method split, completed after 400 ms"] = new("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"lo")), Sleep(0.4), Send(Encoding.UTF8.GetBytes("gin\",\"params\":{}}\n"))]),
    };

    /// <summary>Runs the pool and the client in a private network namespace; returns the client's exit status and what each port received.</summary>
    private static (int Exit, bool Survived, Dictionary<int, byte[]> Received) RunInNamespace(TempDir dir, string mode, object[] steps, int[] ports, string before = "")
    {
        string received = Path.Combine(dir.Path, "received");
        string spec = dir.File("steps.json", JsonSerializer.Serialize(steps));
        string script = $"ip link set lo up; {before} {Run.Python} {dir.File("pool.py", Pool)} {received} {mode} {string.Join(',', ports)} & " +
            $"{Run.Python} {dir.File("miner.py", Miner)} {received} {spec}; echo client=$?; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        string error = ns.StandardError.ReadToEnd();
        Assert.True(ns.WaitForExit(20_000), "the namespace's processes did not finish");
        string status = output.Split('\n').LastOrDefault(l => l.StartsWith("client=", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"the client never finished: {output} {error}");
        var got = ports.ToDictionary(p => p, p => File.Exists($"{received}.{p}") ? File.ReadAllBytes($"{received}.{p}") : throw new Xunit.Sdk.XunitException($"the pool never wrote port {p}: {error}"));
        return (int.Parse(status["client=".Length..], System.Globalization.CultureInfo.InvariantCulture), File.Exists(received + ".survived"), got);
    }

    /// <summary>Where the method's value starts (its opening quote) in what the pool is sent.</summary>
    private static int MethodValueStart(byte[] stream)
    {
        var scanner = new StratumScanner(StratumScanner.ForPolicy(PolicyLoader.BuiltIn.Indicators.StratumMethods, drop: true));
        Assert.Equal(StratumVerdict.Drop, scanner.Read(stream)); // the case is Stratum by the rules themselves
        int decided = (int)scanner.DecidedAt;
        int quote = decided - 1;
        while (quote >= 0 && !(stream[quote] == '"' && (quote == 0 || stream[quote - 1] != '\\')))
            quote--;
        return quote;
    }

    [Theory]
    [MemberData(nameof(EvasionNames))]
    public void HiddenStratumNeverReachesThePoolAndTheMinerDies(string name)
    {
        Evasion evasion = Evasions[name];
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // TCP Fast Open, client and server, with no cookie asked: the login rides in the SYN.
        string tfo = name.Contains("fast open", StringComparison.Ordinal) ? "sysctl -qw net.ipv4.tcp_fastopen=519;" : "";
        (int exit, bool survived, Dictionary<int, byte[]> received) = RunInNamespace(dir, evasion.Mode, evasion.Steps, evasion.Ports, tfo);
        if (tfo.Length > 0)
            Assert.Equal(evasion.PoolStream.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir.Path, "received.syn-data"))); // all of it in the SYN

        byte[] sent = evasion.PoolStream;
        byte[] got = received[PoolPort];
        int valueStart = MethodValueStart(sent);
        Assert.True(sent.AsSpan().StartsWith(got), $"the pool got bytes the client never sent: {Encoding.UTF8.GetString(got)}");
        Assert.True(got.Length <= valueStart, $"{got.Length} bytes reached the pool, the method's value starts at {valueStart}: {Encoding.UTF8.GetString(got)}");
        Assert.Equal(137, exit); // SIGKILL
        Assert.False(survived);
        RecordedEvent alert = sensor.WaitFor("stratum alert", e => e.Action == "stratum");
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal($"127.0.0.1:{PoolPort}", evidence.GetProperty("destination").GetString());
        Assert.Equal("python3", alert.Process.GetProperty("name").GetString());
        if (evasion.Mode != "plain")
            Assert.StartsWith(evasion.Mode == "http" ? "http-connect pool.example.org:3333" : evasion.Mode[..6], evidence.GetProperty("proxy").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AProxyAskedForAPoolDomainIsAFindingInItself()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // A SOCKS5 request for a pool domain, then TLS: no Stratum to read, the destination says enough.
        object[] steps = [Connect(PoolPort), Send([5, 1, 0], reply: true), Send(Bytes(5, 1, 0, 3, 19, "pool.supportxmr.com", 0x01, 0xBB), reply: true), Send(Records.TlsClientHello("pool.supportxmr.com"))];
        (int exit, bool survived, _) = RunInNamespace(dir, "socks5", steps, [PoolPort]);
        Assert.Equal(137, exit);
        Assert.False(survived);
        RecordedEvent alert = sensor.WaitFor("pool-sni alert", e => e.Action == "pool-sni");
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal("socks5 pool.supportxmr.com:443", evidence.GetProperty("proxy").GetString());
        Assert.Equal("supportxmr.com", evidence.GetProperty("pool_domain").GetString());
    }

    [Fact]
    public void AnAbsoluteFormRequestForAPoolDomainIsAFindingInItself()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // A forward proxy asked for a pool by an absolute-form target: the destination says enough.
        object[] steps = [Connect(PoolPort), Send(Bytes("GET http://pool.supportxmr.com:3333/ HTTP/1.1\r\nHost: pool.supportxmr.com:3333\r\n\r\n"), reply: true)];
        (int exit, bool survived, _) = RunInNamespace(dir, "http", steps, [PoolPort]);
        Assert.Equal(137, exit);
        Assert.False(survived);
        RecordedEvent alert = sensor.WaitFor("pool-sni alert", e => e.Action == "pool-sni");
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal("http-forward pool.supportxmr.com:3333", evidence.GetProperty("proxy").GetString());
        Assert.Equal("supportxmr.com", evidence.GetProperty("pool_domain").GetString());
    }

    [Fact]
    public void AFirstMessageLongerThanTheScanIsHeldAndReported()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        byte[] line = Encoding.UTF8.GetBytes("{\"id\":1,\"params\":\"" + new string('a', 80_000) + "\",\"method\":\"login\"}\n");
        (_, _, Dictionary<int, byte[]> received) = RunInNamespace(dir, "plain", [Connect(PoolPort), Send(line)], [PoolPort]);
        // Held, not judged: the client is not killed (its writes only queue), nothing past the scan leaves.
        Assert.True(received[PoolPort].Length <= StratumScanner.ScanLimit, $"{received[PoolPort].Length} bytes reached the pool");
        Assert.True(line.AsSpan().StartsWith(received[PoolPort]));
        RecordedEvent alert = sensor.WaitFor("hold alert", e => e.Action == "stratum");
        Assert.Contains("held undecided", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(sensor.Events, e => e.Action == "kill-tree" || e.Action == "kill");
    }

    public static TheoryData<string> BenignNames() => [.. Benign.Keys];

    private static readonly Dictionary<string, (string Mode, object[] Steps)> Benign = new()
    {
        ["a JSON body with \"method\":\"GET\" in an HTTP POST"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("POST /api HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n{\"method\":\"GET\",\"id\":1,\"params\":[\"login\"]}\n"))]),
        ["an LSP message"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("Content-Length: 85\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"processId\":1,\"rootUri\":null}}"))]),
        ["JSON-RPC 2.0 over TCP, a method and a method in params"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server.version\",\"params\":[\"electrum\",\"1.4\"]}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"workspace/executeCommand\",\"params\":{\"method\":\"login\",\"submit\":true}}\n"))]),
        ["a Jupyter kernel's ZeroMQ greeting"] = ("plain", [Connect(PoolPort), Send(Bytes(0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0, "NULL", new byte[16], 0, new byte[31]))]),
        ["a Jupyter server's execute request over a WebSocket upgrade"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("GET /api/kernels/1/channels HTTP/1.1\r\nHost: localhost:8888\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))]),
        ["keep-alive requests to a forward proxy"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("GET http://deb.debian.org/debian/dists/trixie/InRelease HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n\r\nGET http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n"))]),
        ["a JSON-RPC call in another case that no pool names"] = ("plain", [Connect(PoolPort), Send(Encoding.UTF8.GetBytes("{\"jsonrpc\":\"2.0\",\"id\":1,\"Method\":\"eth_blockNumber\",\"params\":[]}\n{\"id\":2,\"method\":\"INITIALIZE/x\"}\n"))]),
        ["HTTPS through HTTP CONNECT"] = ("http", [Connect(PoolPort), Send(Bytes("CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n"), reply: true), Send(Records.TlsClientHello("pypi.org"))]),
        ["HTTP through SOCKS5"] = ("socks5", [Connect(PoolPort), Send([5, 1, 0], reply: true), Send(Bytes(5, 1, 0, 3, 8, "pypi.org", 0, 80), reply: true), Send(Encoding.UTF8.GetBytes("GET /simple/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n"))]),
    };

    [Theory]
    [MemberData(nameof(BenignNames))]
    public void OrdinaryTrafficShapedLikeItPassesUntouched(string name)
    {
        (string mode, object[] steps) = Benign[name];
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        (int exit, bool survived, Dictionary<int, byte[]> received) = RunInNamespace(dir, mode, steps, [PoolPort]);
        Assert.Equal(0, exit);
        Assert.True(survived);
        byte[] sent = new Evasion(mode, steps).PoolStream;
        byte[] tail = Encoding.ASCII.GetBytes("{\"id\":4,\"result\":null}\n");
        Assert.Equal(Convert.ToHexString([.. sent, .. tail]), Convert.ToHexString(received[PoolPort]));
        Thread.Sleep(300); // past the quiet period: the first bytes have been judged
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }
}
