using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>A TLS miner names its pool in the ClientHello, before any encryption.</summary>
[Collection(KernelTestGroup.Name)]
public sealed class PoolSniTests
{
    private const string Client = """
        import socket, ssl, sys, threading, time
        l = socket.socket(); l.bind(('127.0.0.1', 14433)); l.listen()
        threading.Thread(target=lambda: (l.accept(), time.sleep(10)), daemon=True).start()
        s = socket.create_connection(('127.0.0.1', 14433))
        s.settimeout(1.5)  # the listener never answers: the ClientHello is all that matters
        ctx = ssl.create_default_context()
        try:
            ctx.wrap_socket(s, server_hostname=sys.argv[1]).do_handshake()
        except Exception:
            time.sleep(1)
        """;

    [Theory]
    [InlineData("gulf.moneroocean.stream", true)]
    [InlineData("pypi.org", false)]
    public void ATlsConnectionNamingAPoolIsFoundAndItsOwnerKilled(string host, bool pool)
    {
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", $"ip link set lo up; exec {Run.Python} -c \"$0\" {host}", Client);
        if (!ns.WaitForExit(10_000))
        {
            ns.Kill(entireProcessTree: true);
            Assert.Fail("the TLS client did not finish");
        }

        if (pool)
        {
            RecordedEvent alert = sensor.WaitFor("pool-sni alert", e => e.Action == "pool-sni");
            JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
            Assert.Equal(host, evidence.GetProperty("server_name").GetString());
            Assert.Equal("moneroocean.stream", evidence.GetProperty("pool_domain").GetString());
            Assert.Equal(ns.Id, alert.Pid);
            Assert.Equal(137, ns.ExitCode);
        }
        else
        {
            Assert.Equal(0, ns.ExitCode);
            sensor.WaitFor("its first bytes", e => e.Action == "payload" && e.Pid == ns.Id);
            Assert.DoesNotContain(sensor.Events, e => e.Action == "pool-sni");
        }
    }

    // Sends the ClientHello in FILE in pieces of STEP bytes, each its own segment (TCP_NODELAY, a pause between).
    private const string SplitClient = """
        import socket, sys, threading, time
        hello, step = open(sys.argv[1], 'rb').read(), int(sys.argv[2])
        l = socket.socket(); l.bind(('127.0.0.1', 14433)); l.listen()
        threading.Thread(target=lambda: (l.accept(), time.sleep(10)), daemon=True).start()
        s = socket.create_connection(('127.0.0.1', 14433))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for at in range(0, len(hello), step):
            s.sendall(hello[at:at + step])
            time.sleep(0.02)
        time.sleep(1.5)
        """;

    [Theory]
    [InlineData("gulf.moneroocean.stream", 0, 40, 50)] // TLS records of 40 bytes, sent 50 bytes at a time
    [InlineData("gulf.moneroocean.stream", 2500, 600, 300)] // the name past 2.5 KB, in records across segments
    [InlineData("pool.supportxmr.com", 6000, 1000, 1400)]
    [InlineData("pypi.org", 2500, 600, 300)]
    public void AClientHelloSplitAcrossRecordsAndSegmentsIsReadWhole(string host, int padding, int recordSize, int step)
    {
        using var dir = new TempDir();
        string hello = Path.Combine(dir.Path, "hello");
        File.WriteAllBytes(hello, Records.TlsClientHello(host, padding, recordSize));
        bool pool = host != "pypi.org";
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", $"ip link set lo up; exec {Run.Python} {dir.File("client.py", SplitClient)} {hello} {step}");
        if (!ns.WaitForExit(15_000))
        {
            ns.Kill(entireProcessTree: true);
            Assert.Fail("the TLS client did not finish");
        }

        if (pool)
        {
            RecordedEvent alert = sensor.WaitFor("pool-sni alert", e => e.Action == "pool-sni" && e.Pid == ns.Id);
            Assert.Equal(host, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("server_name").GetString());
            Assert.Equal(137, ns.ExitCode);
        }
        else
        {
            Assert.Equal(0, ns.ExitCode);
            sensor.WaitFor("its first bytes", e => e.Action == "payload" && e.Pid == ns.Id);
            Assert.DoesNotContain(sensor.Events, e => e.Action == "pool-sni");
        }
    }
}
