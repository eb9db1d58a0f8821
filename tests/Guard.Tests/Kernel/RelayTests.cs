using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A Stratum line sent through a local relay (socat, a unix-socket relay, a
/// tunnel whose handshake the kernel does not read, a chain of them) to a
/// loopback pool, in a private network namespace: the kernel drops the bytes,
/// and the process that sent them through the relay is killed, never the
/// relay. Where the sender cannot be told (it has exited), the finding alerts
/// and acts on no one. Through an HTTP CONNECT proxy the kernel reads the
/// line on the sender's own connection.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class RelayTests
{
    // The pool: accepts every connection on 127.0.0.1:3333 for SECONDS and keeps every byte it got.
    private const string Pool = """
        import socket, sys, threading, time
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', 3333)); l.listen(16); l.settimeout(0.1)
        open(sys.argv[1] + '.ready', 'w').close()
        got = []
        def serve(c):
            c.settimeout(0.2)
            while True:
                try:
                    b = c.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not b:
                    return
                got.append(b)
        end = time.time() + float(sys.argv[2])
        while time.time() < end:
            try:
                c, _ = l.accept()
            except socket.timeout:
                continue
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        open(sys.argv[1], 'wb').write(b''.join(got))
        """;

    // The sender: connects over TCP (a port) or a unix socket (a path), asks an HTTP CONNECT proxy
    // (HOST:PORT) or a tunnel (tunnel:HOST:PORT) for the pool first when given one, sends its Stratum
    // line, then lingers (or, with 'exit', leaves at once).
    private const string Sender = """
        import os, socket, sys, time
        kind, address, linefile, marker, after = sys.argv[1:6]
        open(marker + '.pid', 'w').write(str(os.getpid()))
        line = open(linefile, 'rb').read().rstrip(b'\n') + b'\n'
        for _ in range(500):
            try:
                if kind == 'unix':
                    s = socket.socket(socket.AF_UNIX); s.connect(address)
                else:
                    s = socket.create_connection(('127.0.0.1', int(address)))
                break
            except OSError:
                time.sleep(0.01)
        if len(sys.argv) > 6 and sys.argv[6].startswith('tunnel:'):
            s.sendall(b'TUNNEL ' + sys.argv[6][7:].encode() + b'\n')
            s.recv(4096)
        elif len(sys.argv) > 6:
            s.sendall(b'CONNECT ' + sys.argv[6].encode() + b' HTTP/1.1\r\n\r\n')
            s.recv(4096)
        s.sendall(line)
        if after == 'exit':
            os._exit(0)
        time.sleep(2)
        open(marker + '.survived', 'w').close()
        """;

    // A unix-socket relay: each client to the pool at 127.0.0.1:3333, both ways. With a file
    // named, it holds a client's first bytes until that file exists.
    private const string UnixRelay = """
        import os, socket, sys, threading, time
        path = sys.argv[1]
        wait = sys.argv[2] if len(sys.argv) > 2 else None
        l = socket.socket(socket.AF_UNIX); l.bind(path); l.listen(8)
        def pipe(a, b):
            try:
                while True:
                    d = a.recv(4096)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
        def serve(c):
            first = c.recv(4096)
            if wait:
                while not os.path.exists(wait):
                    time.sleep(0.01)
            u = socket.create_connection(('127.0.0.1', 3333))
            u.sendall(first)
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
            pipe(c, u)
            time.sleep(10)
        while True:
            c, _ = l.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """;

    // An HTTP CONNECT proxy on 127.0.0.1:PORT: many clients at once, each to the host:port it asks for.
    // It creates READY once it listens.
    private const string ConnectProxy = """
        import socket, sys, threading, time
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', int(sys.argv[1]))); l.listen(8)
        open(sys.argv[2], 'w').close()
        def pipe(a, b):
            try:
                while True:
                    d = a.recv(4096)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
        def serve(c):
            head = b''
            while b'\r\n\r\n' not in head:
                d = c.recv(4096)
                if not d:
                    return
                head += d
            request, rest = head.split(b'\r\n\r\n', 1)
            host, port = request.split(b' ')[1].decode().rsplit(':', 1)
            u = socket.create_connection((host, int(port)))
            c.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n')
            if rest:
                u.sendall(rest)
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
            pipe(c, u)
            time.sleep(10)
        while True:
            c, _ = l.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """;

    // A tunnel on 127.0.0.1:PORT whose clients name where to go in a first line of its own
    // ("TUNNEL host:port"), which the kernel's scan does not read as Stratum or a proxy it
    // knows: what it relays is first seen on its own connection to the pool. Many clients at
    // once; it creates READY once it listens.
    private const string TunnelProxy = """
        import socket, sys, threading, time
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', int(sys.argv[1]))); l.listen(8)
        open(sys.argv[2], 'w').close()
        def pipe(a, b):
            try:
                while True:
                    d = a.recv(4096)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
        def serve(c):
            head = b''
            while b'\n' not in head:
                d = c.recv(4096)
                if not d:
                    return
                head += d
            request, rest = head.split(b'\n', 1)
            host, port = request.split(b' ')[1].decode().rsplit(':', 1)
            u = socket.create_connection((host, int(port)))
            c.sendall(b'OK\n')
            if rest:
                u.sendall(rest)
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
            pipe(c, u)
            time.sleep(10)
        while True:
            c, _ = l.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """;

    // A client of the proxy that asks for the pool too, then says nothing: it must be left alone.
    private const string IdleClient = """
        import socket, sys, time
        s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
        s.sendall(b'TUNNEL 127.0.0.1:3333\n' if sys.argv[3] == 'tunnel' else b'CONNECT 127.0.0.1:3333 HTTP/1.1\r\n\r\n')
        s.recv(4096)
        open(sys.argv[2], 'w').close()
        time.sleep(3)
        open(sys.argv[2] + '.survived', 'w').close()
        """;

    private const string Line = "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cgminer/4.12.0\"]}";

    [Fact]
    public void SocatOverTcpLivesAndTheSenderIsKilled()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string output = scene.Run(
            $"socat TCP-LISTEN:4000,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:3333 & relay=$!; "
            + $"{scene.Send("tcp", "4000")}; echo sender=$?; kill -0 $relay && echo relay-alive=1; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        Assert.Equal("python3", alert.Process.GetProperty("name").GetString());
        AssertNothingDoneTo(sensor, "socat");
    }

    [Fact]
    public void SocatOverAUnixSocketLivesAndTheSenderIsKilled()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        string output = scene.Run(
            $"socat UNIX-LISTEN:{socket},fork TCP:127.0.0.1:3333 & relay=$!; "
            + $"{scene.Send("unix", socket)}; echo sender=$?; kill -0 $relay && echo relay-alive=1; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        Assert.Equal("socat", relay.GetProperty("name").GetString());
        Assert.True(relay.GetProperty("sender_found").GetBoolean());
        Assert.Equal("unix:" + socket, relay.GetProperty("connection").GetString());
        Assert.Equal("content", relay.GetProperty("basis").GetString()); // the kernel kept what the sender wrote into socat's end
        Assert.Contains(Responses(alert), r => r.StartsWith("killed", StringComparison.Ordinal));
        AssertNothingDoneTo(sensor, "socat");
    }

    [Fact]
    public void AUnixRelayWithTwoClientsActsOnlyOnTheOneThatWroteTheLine()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        string other = Path.Combine(scene.Dir.Path, "other");
        const string otherClient = """
            import socket, sys, time
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'PING')
            open(sys.argv[2], 'w').close()
            time.sleep(3)
            open(sys.argv[2] + '.survived', 'w').close()
            """;
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("relay.py", UnixRelay)} {socket} & relay=$!; "
            + $"while [ ! -e {socket} ]; do sleep 0.01; done; {Run.Python} {scene.Dir.File("other.py", otherClient)} {socket} {other} & client=$!; "
            + $"while [ ! -e {other} ]; do sleep 0.01; done; "
            + $"{scene.Send("unix", socket)}; echo sender=$?; kill -0 $relay && echo relay-alive=1; wait $client; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        Assert.True(File.Exists(other + ".survived"), "the relay's other client was killed");
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        Assert.Equal("content", RelayOf(alert).GetProperty("basis").GetString());
    }

    [Fact]
    public void APythonUnixRelayLivesAndTheSenderIsKilled()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("relay.py", UnixRelay)} {socket} & relay=$!; "
            + $"{scene.Send("unix", socket)}; echo sender=$?; kill -0 $relay && echo relay-alive=1; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        Assert.True(relay.GetProperty("sender_found").GetBoolean());
        Assert.Equal("unix:" + socket, relay.GetProperty("connection").GetString());
        int relayPid = relay.GetProperty("pid").GetInt32();
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => Dataset(e) == "guard.response" && e.Pid == relayPid);
    }

    [Fact]
    public void AnHttpConnectClientIsCaughtOnItsOwnConnectionAndTheProxyAndItsOtherClientAreLeftAlone()
    {
        // The kernel reads through the CONNECT handshake: the line never reaches the proxy.
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string idle = Path.Combine(scene.Dir.Path, "idle");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("proxy.py", ConnectProxy)} 8080 {idle}.proxy & relay=$!; "
            + $"while [ ! -e {idle}.proxy ]; do sleep 0.01; done; "
            + $"{Run.Python} {scene.Dir.File("idle.py", IdleClient)} 8080 {idle} connect & idle=$!; "
            + $"while [ ! -e {idle} ]; do sleep 0.01; done; "
            + $"{scene.Send("tcp", "8080", connect: "127.0.0.1:3333")}; echo sender=$?; kill -0 $relay && echo relay-alive=1; wait $idle; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        Assert.True(File.Exists(idle + ".survived"), "the idle client of the same proxy was killed");
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        Assert.False(alert.Json.GetProperty("guard").TryGetProperty("relay", out _), $"the sender's own connection needs no relay: {alert}");
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Equal("http-connect 127.0.0.1:3333", evidence.GetProperty("proxy").GetString());
        Assert.Equal("127.0.0.1:8080", evidence.GetProperty("destination").GetString());
    }

    [Fact]
    public void ATunnelWithTwoClientsIsLeftAloneAndOnlyTheClientWhoseStreamCarriedTheLineIsKilled()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string idle = Path.Combine(scene.Dir.Path, "idle");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("proxy.py", TunnelProxy)} 8080 {idle}.proxy & relay=$!; "
            + $"while [ ! -e {idle}.proxy ]; do sleep 0.01; done; "
            + $"{Run.Python} {scene.Dir.File("idle.py", IdleClient)} 8080 {idle} tunnel & idle=$!; "
            + $"while [ ! -e {idle} ]; do sleep 0.01; done; "
            + $"{scene.Send("tcp", "8080", connect: "tunnel:127.0.0.1:3333")}; echo sender=$?; kill -0 $relay && echo relay-alive=1; wait $idle; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        Assert.True(File.Exists(idle + ".survived"), "the idle client of the same proxy was killed");
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        Assert.Equal("content", relay.GetProperty("basis").GetString());
        Assert.Equal("python3", relay.GetProperty("name").GetString());
        Assert.StartsWith("127.0.0.1:8080 <- 127.0.0.1:", relay.GetProperty("connection").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AChainOfRelaysIsWalkedBackToTheSender()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        // sender -> socat (unix) -> tunnel (TCP) -> pool
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("proxy.py", TunnelProxy)} 8080 {socket}.proxy & proxy=$!; "
            + $"while [ ! -e {socket}.proxy ]; do sleep 0.01; done; "
            + $"socat UNIX-LISTEN:{socket},fork TCP:127.0.0.1:8080 & socat=$!; "
            + $"{scene.Send("unix", socket, connect: "tunnel:127.0.0.1:3333")}; echo sender=$?; "
            + "kill -0 $proxy && kill -0 $socat && echo relay-alive=1; kill $proxy $socat");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        string[] chain = [.. relay.GetProperty("chain").EnumerateArray().Select(h => h.GetProperty("name").GetString()!)];
        Assert.Equal(["python3", "socat"], chain);
        Assert.Equal("unix:" + socket, relay.GetProperty("chain")[1].GetProperty("connection").GetString());
        AssertNothingDoneTo(sensor, "socat");
    }

    [Fact]
    public void ARelayWhoseSenderHasExitedAlertsAndNothingIsKilledOrHeld()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        string release = Path.Combine(scene.Dir.Path, "release");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("relay.py", UnixRelay)} {socket} {release} & relay=$!; "
            + $"{scene.Send("unix", socket, after: "exit")}; echo sender=$?; touch {release}; sleep 1; "
            + "kill -0 $relay && echo relay-alive=1; kill $relay");

        Assert.Contains("sender=0", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the relay", e => e.Action == "stratum");
        JsonElement relay = RelayOf(alert);
        Assert.False(relay.GetProperty("sender_found").GetBoolean());
        Assert.Contains("exited", relay.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(relay.GetProperty("pid").GetInt32(), alert.Pid);
        Assert.Contains(Responses(alert), r => r.Contains("nothing killed, nothing held", StringComparison.Ordinal));
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => Dataset(e) == "guard.response");
    }

    [Fact]
    public void ARelayInAServiceCgroupLivesAndTheServiceIsNotFrozen()
    {
        using var cgroups = new TestCgroups();
        using var scene = new Scene();
        string service = cgroups.Make("system.slice/guard-test-relay.service");
        string socket = Path.Combine(scene.Dir.Path, "relay.sock");
        // The service runs the pool and the relay in a network namespace of its own; the sender, in another, reaches it by path.
        using Process unit = cgroups.StartIn(service,
            $"exec unshare --net /bin/sh -c 'ip link set lo up; {Run.Python} {scene.Dir.File("pool.py", Pool)} {scene.Received} 6 & "
            + $"while [ ! -e {scene.Received}.ready ]; do sleep 0.01; done; exec {Run.Python} {scene.Dir.File("relay.py", UnixRelay)} {socket}'");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        TestCgroups.Go(unit);
        Run.WaitFor(() => File.Exists(socket), "the service's relay to listen");
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", $"{scene.Send("unix", socket)}; echo sender=$?");
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(15_000));

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        Assert.True(RelayOf(alert).GetProperty("sender_found").GetBoolean());
        Thread.Sleep(300);
        Assert.False(cgroups.Frozen(service), "the relay's service was frozen");
        Assert.DoesNotContain(sensor.Events, e => e.Action == "quarantine");
        Assert.False(unit.HasExited, "the service's relay was killed");
    }

    // A relay of one kind (seqpacket, dgram, fifo, spool) at PATH to the pool, each sender's bytes on a
    // connection of their own; it also serves a unix stream listener at INNOCENT. READY once both are there.
    private const string KindRelay = """
        import os, socket, sys, threading, time
        kind, path, innocent, ready = sys.argv[1:5]
        def up(first):
            u = socket.create_connection(('127.0.0.1', 3333)); u.sendall(first); return u
        def serve(c):
            first = c.recv(4096)
            if not first:
                return
            u = up(first)
            while True:
                d = c.recv(4096)
                if not d:
                    break
                u.sendall(d)
            time.sleep(10)
        def accept(l):
            while True:
                c, _ = l.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
        l = socket.socket(socket.AF_UNIX); l.bind(innocent); l.listen(8)
        threading.Thread(target=accept, args=(l,), daemon=True).start()
        if kind == 'seqpacket':
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(path); s.listen(8)
            open(ready, 'w').close(); accept(s)
        elif kind == 'dgram':
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path)
            open(ready, 'w').close(); kept = []
            while True:
                kept.append(up(s.recv(65536)))
        elif kind == 'fifo':
            os.mkfifo(path); open(ready, 'w').close()
            f = open(path, 'rb', buffering=0); u = None
            while True:
                d = f.read(65536)
                if not d:
                    time.sleep(10); break
                if u is None:
                    u = up(d)
                else:
                    u.sendall(d)
        elif kind == 'spool':
            open(path, 'ab').close(); f = open(path, 'rb'); u = None
            open(ready, 'w').close()
            while True:
                d = f.read()
                if d:
                    if u is None:
                        u = up(d)
                    else:
                        u.sendall(d)
                time.sleep(0.02)
        """;

    // The miner of the kinds: sends its line into a seqpacket socket, as an unconnected datagram, into
    // a FIFO or appended to a spool file (held open), or, 'pair', through a socketpair to a relay child
    // it forks (the relay's pid in MARKER.relay); then lingers.
    private const string KindSender = """
        import os, socket, sys, time
        kind, path, linefile, marker = sys.argv[1:5]
        open(marker + '.pid', 'w').write(str(os.getpid()))
        line = open(linefile, 'rb').read().rstrip(b'\n') + b'\n'
        if kind == 'seqpacket':
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(path); s.send(line)
        elif kind == 'dgram':
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(line, path)
        elif kind == 'fifo':
            f = open(path, 'wb', buffering=0); f.write(line)
        elif kind == 'spool':
            f = open(path, 'ab', buffering=0); f.write(line)
        elif kind == 'pair':
            a, b = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                b.close()
                first = a.recv(4096)
                u = socket.create_connection(('127.0.0.1', 3333)); u.sendall(first)
                time.sleep(10); os._exit(0)
            open(marker + '.relay', 'w').write(str(pid))
            a.close(); b.sendall(line)
        time.sleep(2)
        open(marker + '.survived', 'w').close()
        """;

    // An innocent client of the relay: PING over a unix stream, a seqpacket connection or a connected datagram socket.
    private const string KindClient = """
        import socket, sys, time
        kind, path, marker = sys.argv[1:4]
        t = {'stream': socket.SOCK_STREAM, 'seqpacket': socket.SOCK_SEQPACKET, 'dgram': socket.SOCK_DGRAM}[kind]
        s = socket.socket(socket.AF_UNIX, t); s.connect(path); s.send(b'PING')
        time.sleep(0.2)
        open(marker, 'w').close()
        time.sleep(3)
        open(marker + '.survived', 'w').close()
        """;

    [Theory]
    [InlineData("seqpacket", "seqpacket", "content")]
    [InlineData("dgram", "dgram", "content")]
    [InlineData("fifo", "stream", "structure")]
    [InlineData("spool", "stream", "content")]
    public void ARelayOfAnyKindLivesWithItsInnocentClientAndTheSenderIsKilled(string kind, string clientKind, string basis)
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string path = Path.Combine(scene.Dir.Path, kind);
        string innocent = Path.Combine(scene.Dir.Path, "innocent.sock");
        string client = Path.Combine(scene.Dir.Path, "client");
        string ready = Path.Combine(scene.Dir.Path, "ready");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("relay.py", KindRelay)} {kind} {path} {innocent} {ready} & relay=$!; "
            + $"while [ ! -e {ready} ]; do sleep 0.01; done; "
            + $"{Run.Python} {scene.Dir.File("client.py", KindClient)} {clientKind} {(clientKind == "stream" ? innocent : path)} {client} & client=$!; "
            + $"while [ ! -e {client} ]; do sleep 0.01; done; "
            + $"{scene.SendKind(kind, path)}; echo sender=$?; kill -0 $relay && echo relay-alive=1; wait $client; kill $relay");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        Assert.True(File.Exists(client + ".survived"), "the relay's innocent client was killed");
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the sender", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        Assert.True(relay.GetProperty("sender_found").GetBoolean());
        Assert.Equal(basis, relay.GetProperty("basis").GetString());
        int relayPid = relay.GetProperty("pid").GetInt32();
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => Dataset(e) == "guard.response" && e.Pid == relayPid);
    }

    [Fact]
    public void ARelayChildOnASocketpairIsTracedToTheParentThatWroteTheLine()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string output = scene.Run($"{scene.SendKind("pair", "-")}; echo sender=$?");

        Assert.Contains("sender=137", output, StringComparison.Ordinal);
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the parent", e => e.Action == "stratum" && e.Pid == scene.SenderPid);
        JsonElement relay = RelayOf(alert);
        Assert.True(relay.GetProperty("sender_found").GetBoolean());
        Assert.Equal("content", relay.GetProperty("basis").GetString());
        Assert.Equal("unix:socketpair", relay.GetProperty("connection").GetString());
        Assert.Equal(scene.RelayChildPid, relay.GetProperty("pid").GetInt32());
    }

    [Fact]
    public void AFifoWithTwoWritersAlertsAndNoWriterIsKilled()
    {
        using var scene = new Scene();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        string path = Path.Combine(scene.Dir.Path, "fifo");
        string innocent = Path.Combine(scene.Dir.Path, "innocent.sock");
        string ready = Path.Combine(scene.Dir.Path, "ready");
        const string holder = """
            import sys, time
            f = open(sys.argv[1], 'wb', buffering=0)
            open(sys.argv[2], 'w').close()
            time.sleep(4)
            open(sys.argv[2] + '.survived', 'w').close()
            """;
        string other = Path.Combine(scene.Dir.Path, "other");
        string output = scene.Run(
            $"{Run.Python} {scene.Dir.File("relay.py", KindRelay)} fifo {path} {innocent} {ready} & relay=$!; "
            + $"while [ ! -e {ready} ]; do sleep 0.01; done; "
            + $"{Run.Python} {scene.Dir.File("holder.py", holder)} {path} {other} & other=$!; "
            + $"while [ ! -e {other} ]; do sleep 0.01; done; "
            + $"{scene.SendKind("fifo", path)}; echo sender=$?; kill -0 $relay && echo relay-alive=1; wait $other; kill $relay");

        Assert.Contains("sender=0", output, StringComparison.Ordinal);
        Assert.Contains("relay-alive=1", output, StringComparison.Ordinal);
        Assert.True(File.Exists(other + ".survived"), "the FIFO's other writer was killed");
        scene.AssertNoCompleteLine();
        RecordedEvent alert = sensor.WaitFor("the stratum alert on the relay", e => e.Action == "stratum");
        JsonElement relay = RelayOf(alert);
        Assert.False(relay.GetProperty("sender_found").GetBoolean());
        Assert.Contains("2 processes hold fifo:", relay.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains(Responses(alert), r => r.Contains("nothing killed, nothing held", StringComparison.Ordinal));
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => Dataset(e) == "guard.response");
    }

    private static JsonElement RelayOf(RecordedEvent alert) =>
        alert.Json.GetProperty("guard").TryGetProperty("relay", out JsonElement relay) ? relay
            : throw new Xunit.Sdk.XunitException($"the alert names no relay: {alert}");

    private static string[] Responses(RecordedEvent alert) =>
        [.. alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").EnumerateArray().Select(r => r.GetString()!)];

    /// <summary>No action (kill, hold) and no alert was about a process named <paramref name="name"/>.</summary>
    private static void AssertNothingDoneTo(SensorHarness sensor, string name)
    {
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => Dataset(e) is "guard.finding" or "guard.response"
            && e.Json.TryGetProperty("process", out JsonElement p) && p.GetProperty("name").GetString() == name);
    }

    private static string? Dataset(RecordedEvent e) =>
        e.Json.GetProperty("event").TryGetProperty("dataset", out JsonElement d) ? d.GetString() : null;

    /// <summary>A private network namespace with the pool listening, a directory, and the sender's script and line.</summary>
    private sealed class Scene : IDisposable
    {
        public Scene()
        {
            Received = Path.Combine(Dir.Path, "received");
            Marker = Path.Combine(Dir.Path, "sender");
            LineFile = Dir.File("line", Line);
            SenderScript = Dir.File("sender.py", Sender);
        }

        public TempDir Dir { get; } = new();

        /// <summary>What the pool got, once it has finished.</summary>
        public string Received { get; }

        private string Marker { get; }

        private string LineFile { get; }

        private string SenderScript { get; }

        public int SenderPid => int.Parse(File.ReadAllText(Marker + ".pid"), CultureInfo.InvariantCulture);

        /// <summary>The relay child the 'pair' sender forked.</summary>
        public int RelayChildPid => int.Parse(File.ReadAllText(Marker + ".relay"), CultureInfo.InvariantCulture);

        /// <summary>The shell command that runs the sender of the kinds (<see cref="KindSender"/>) against <paramref name="path"/>.</summary>
        public string SendKind(string kind, string path) =>
            $"{Support.Run.Python} {Dir.File("kind-sender.py", KindSender)} {kind} {path} {LineFile} {Marker}";

        /// <summary>The shell command that runs the sender against a TCP port or a unix path.</summary>
        public string Send(string kind, string address, string after = "linger", string? connect = null) =>
            $"{Support.Run.Python} {SenderScript} {kind} {address} {LineFile} {Marker} {after}{(connect is null ? "" : " " + connect)}";

        /// <summary>Runs <paramref name="body"/> in a private network namespace once the pool listens; returns its output.</summary>
        public string Run(string body)
        {
            string script = $"ip link set lo up; {Support.Run.Python} {Dir.File("pool.py", Pool)} {Received} 4 & pool=$!; "
                + $"while [ ! -e {Received}.ready ]; do sleep 0.01; done; {body}; wait $pool";
            using Process ns = Support.Run.Start("unshare", "--net", "/bin/sh", "-c", script);
            string output = ns.StandardOutput.ReadToEnd();
            if (!ns.WaitForExit(20_000))
            {
                ns.Kill(entireProcessTree: true);
                throw new Xunit.Sdk.XunitException("the scene did not finish in 20 s");
            }
            return output + ns.StandardError.ReadToEnd();
        }

        /// <summary>The pool never got a whole Stratum line: no newline, no method.</summary>
        public void AssertNoCompleteLine()
        {
            Support.Run.WaitFor(() => File.Exists(Received), "the pool to finish", 10_000);
            byte[] got = File.ReadAllBytes(Received);
            Assert.DoesNotContain((byte)'\n', got);
        }

        public void Dispose() => Dir.Dispose();
    }
}
