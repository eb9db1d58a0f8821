using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The kernel's stream records through the pipeline: a verdict is judged
/// however late it comes (the head long gone), a hold is reported without a
/// kill, a proxy asked for a pool is a finding and for a pool port weak
/// evidence, and the head is read in user space only when the kernel's own
/// record of a match never came.
/// </summary>
public sealed class StreamFindingsTests
{
    private const int Launcher = 720_000;
    private const int Worker = Launcher + 1;
    private const string Pool = "198.51.100.7";

    private readonly RecordingSink sink = new();
    private readonly ProcessTable table = new(new EntityIds("feedfacecafe"), null, new UserNames());

    private EventPipeline Start(Policy? policy = null)
    {
        EventPipeline pipeline = Pipelines.Over(table, sink, PolicyDetectors.From(policy ?? PolicyLoader.BuiltIn));
        pipeline.OnFork(Records.Fork(Launcher, 0));
        pipeline.OnExec(Records.Exec(Launcher, 0, "/usr/bin/python3 train.py", jobRoot: Launcher));
        pipeline.OnFork(Records.Fork(Worker, Launcher));
        pipeline.OnExec(Records.Exec(Worker, Launcher, "/usr/bin/python3 worker.py", jobRoot: Launcher));
        return pipeline;
    }

    private RecordedEvent[] Alerts => [.. sink.Snapshot().Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert")];

    private static JsonElement Finding(RecordedEvent alert) => alert.Json.GetProperty("guard").GetProperty("finding");

    /// <summary>An evidence value as text: a string's own, a number's digits.</summary>
    private static string Evidence(RecordedEvent alert, string key) => Finding(alert).GetProperty("evidence").GetProperty(key) is { ValueKind: JsonValueKind.String } text
        ? text.GetString()!
        : Finding(alert).GetProperty("evidence").GetProperty(key).GetRawText();

    [Fact]
    public void AVerdictLongAfterTheFirstBytesWentOutIsStillAFinding()
    {
        EventPipeline pipeline = Start();
        pipeline.OnPayload(Records.Payload(Worker, 7, "{\"id\":1,\"jsonrpc\":\"2.0\","u8, 40, address: Pool));
        pipeline.Tick(40 + PayloadAssembly.QuietNs); // quiet: the head is out, judged, forgotten
        Assert.Empty(Alerts);

        pipeline.OnStream(Records.Stream(Worker, 7, "login", 40 + (3 * PayloadAssembly.QuietNs), address: Pool, offset: 37));
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal(("stratum", Worker), (alert.Action, alert.Pid));
        Assert.Equal("login", Evidence(alert, "method"));
        Assert.Equal("37", Evidence(alert, "stream_offset"));
        Assert.Equal($"{Pool}:3333", Evidence(alert, "destination"));
        Assert.Contains("dropped at egress", Finding(alert).GetProperty("response")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AVerdictWhileTheHeadIsGatheredCarriesItAndTheHeadIsNotJudgedAgain()
    {
        EventPipeline pipeline = Start();
        byte[] line = "{\"id\":1,\"method\":\"login\"}\n"u8.ToArray();
        pipeline.OnPayload(Records.Payload(Worker, 7, line, 40, PayloadRecord.Stratum | PayloadRecord.Dropped | PayloadRecord.Final, address: Pool));
        pipeline.OnStream(Records.Stream(Worker, 7, "login", 41, address: Pool));
        RecordedEvent alert = Assert.Single(Alerts); // the head, read in user space too, adds nothing
        Assert.Equal("stratum", alert.Action);
        Assert.Equal(1, Finding(alert).GetProperty("count").GetInt32());
    }

    [Fact]
    public void TheHeadIsReadInUserSpaceWhenTheKernelsRecordWasLost()
    {
        EventPipeline pipeline = Start();
        // The segment's flags and its stream record were lost with a full ring: only the bytes came.
        pipeline.OnPayload(Records.Payload(Worker, 7, "\n[{\"id\":1,\"method\":\"mining.subscr\\u0069be\"}]\n"u8, 40, address: Pool));
        pipeline.Tick(40 + PayloadAssembly.QuietNs);
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("stratum", alert.Action);
        Assert.Equal("mining.subscribe", Evidence(alert, "method"));
        Assert.Contains("read in user space", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AFlaggedHeadWhoseStreamRecordWasLostIsReadInUserSpace()
    {
        EventPipeline pipeline = Start();
        byte[] line = "{\"id\":1,\"method\":\"login\"}\n"u8.ToArray();
        pipeline.OnPayload(Records.Payload(Worker, 7, line, 40, PayloadRecord.Stratum | PayloadRecord.Dropped | PayloadRecord.Final, address: Pool));
        Assert.Empty(Alerts); // the head waits for its verdict's stream record
        Assert.DoesNotContain(sink.Snapshot(), e => e.Action == "payload");
        pipeline.Tick(40 + PayloadAssembly.QuietNs); // it never came: a full ring lost it
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("stratum", alert.Action);
        Assert.Contains("read in user space", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ASplitClientHelloPastTheFirst256BytesIsJudgedOnceWhole()
    {
        EventPipeline pipeline = Start();
        byte[] hello = Records.TlsClientHello("gulf.moneroocean.stream", padding: 1500, recordSize: 90);
        // The kernel reports a TLS stream's head in records of 256 bytes, none final before 8 KiB.
        for (int at = 0; at < hello.Length; at += PayloadRecord.Capacity)
        {
            Assert.Empty(Alerts);
            int n = Math.Min(PayloadRecord.Capacity, hello.Length - at);
            pipeline.OnPayload(Records.Payload(Worker, 7, hello.AsSpan(at, n), 40 + (ulong)at, offset: at, address: Pool, port: 443));
        }
        RecordedEvent alert = Assert.Single(Alerts); // whole: judged at once, not when quiet
        Assert.Equal("pool-sni", alert.Action);
        Assert.Equal("gulf.moneroocean.stream", Evidence(alert, "server_name"));
        RecordedEvent payload = sink.Snapshot().Single(e => e.Action == "payload");
        Assert.Equal(PayloadRecord.Capacity, payload.Json.GetProperty("guard").GetProperty("payload").GetProperty("length").GetInt32());
    }

    [Fact]
    public void AHoldIsReportedWithWhatTheKernelHeld()
    {
        EventPipeline pipeline = Start();
        pipeline.OnStream(Records.Stream(Worker, 7, "", 40, StreamRecord.Hold, address: Pool, offset: StreamRecord.ScanLimit));
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("stratum", alert.Action);
        Assert.Contains("held undecided", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.False(Finding(alert).GetProperty("evidence").TryGetProperty("method", out _));
    }

    [Fact]
    public void AProxyAskedForAPoolDomainIsAPoolSniFinding()
    {
        EventPipeline pipeline = Start();
        pipeline.OnStream(Records.Proxy(Worker, 7, StreamProxy.Socks5, ProxyAddress.Name, "gulf.moneroocean.stream"u8.ToArray(), 10128, address: "10.0.0.2"));
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("pool-sni", alert.Action);
        Assert.Equal("socks5 gulf.moneroocean.stream:10128", Evidence(alert, "proxy"));
        Assert.Equal("moneroocean.stream", Evidence(alert, "pool_domain"));
        Assert.Equal("10.0.0.2:1080", Evidence(alert, "proxy_address"));

        // HTTP CONNECT's authority is read for its host the same way.
        pipeline.OnFork(Records.Fork(Worker + 1, Launcher));
        pipeline.OnExec(Records.Exec(Worker + 1, Launcher, "/usr/bin/python3 other.py", jobRoot: Launcher));
        pipeline.OnStream(Records.Proxy(Worker + 1, 8, StreamProxy.HttpConnect, ProxyAddress.Authority, "pool.supportxmr.com:443"u8.ToArray(), 0));
        Assert.Equal("http-connect pool.supportxmr.com:443", Evidence(Alerts.Single(a => a.Pid == Worker + 1), "proxy"));
    }

    [Fact]
    public void AProxyAskedForAPoolPortIsWeakEvidenceAndOrdinaryProxyingNothing()
    {
        EventPipeline pipeline = Start();
        pipeline.OnStream(Records.Proxy(Worker, 7, StreamProxy.HttpConnect, ProxyAddress.Authority, "pypi.org:443"u8.ToArray(), 0));
        pipeline.OnStream(Records.Proxy(Worker, 8, StreamProxy.Socks4, ProxyAddress.IPv4, [10, 0, 0, 7], 3333));
        Assert.Empty(Alerts); // a private address on a pool port is no evidence; pypi none at all

        pipeline.OnStream(Records.Proxy(Worker, 9, StreamProxy.Socks5, ProxyAddress.Name, "rigs.example.net"u8.ToArray(), 3333));
        Assert.Empty(Alerts); // one weak signal, kept
        pipeline.OnDns(Records.Dns(Worker, "gulf.moneroocean.stream"));
        RecordedEvent alert = Assert.Single(Alerts);
        Assert.Equal("rigs.example.net:3333 (through a proxy)", Evidence(alert, "pool-port_0"));
    }

    [Fact]
    public void AStreamRecordOfAnAllowedProcessOrToAnAllowedDestinationIsNoFinding()
    {
        Policy allow = Policies.Over("[allow]\nexecutables = [\"/usr/bin/env\"]\ndestinations = [\"203.0.113.0/24\"]\n");
        EventPipeline pipeline = Start(allow);
        pipeline.OnStream(Records.Stream(Worker, 7, "login", 40, (byte)GuardMethod.Alert, address: "203.0.113.9"));
        pipeline.OnFork(Records.Fork(Worker + 1, Launcher));
        pipeline.OnExec(Records.Exec(Worker + 1, Launcher, "/usr/bin/env --x", jobRoot: Launcher));
        pipeline.OnStream(Records.Stream(Worker + 1, 8, "login", 40, address: Pool));
        pipeline.OnStream(Records.Proxy(Worker + 1, 9, StreamProxy.Socks5, ProxyAddress.Name, "pool.supportxmr.com"u8.ToArray(), 443));
        Assert.Empty(Alerts);
    }

    [Theory]
    [InlineData(StreamProxy.Socks5, ProxyAddress.IPv6, new byte[] { 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, 3333, "socks5 [2001:db8::1]:3333")]
    [InlineData(StreamProxy.Socks4, ProxyAddress.IPv4, new byte[] { 192, 0, 2, 1 }, 80, "socks4 192.0.2.1:80")]
    [InlineData(StreamProxy.HttpConnect, ProxyAddress.Authority, new byte[] { (byte)'[', (byte)':', (byte)':', (byte)'1', (byte)']', (byte)':', (byte)'9' }, 0, "http-connect [::1]:9")]
    public void AProxysDestinationReadsAsTheClientAskedIt(StreamProxy proxy, ProxyAddress kind, byte[] host, int port, string text)
    {
        StreamRecord record = Records.Proxy(Worker, 1, proxy, kind, host, (ushort)port);
        Assert.Equal(text, StratumFindings.ProxyText(record));
        if (kind == ProxyAddress.Authority)
        {
            Assert.Equal(9, StratumFindings.ProxyPort(record));
            Assert.Equal("::1", StratumFindings.ProxyHostAddress(record)!.ToString());
            Assert.Null(StratumFindings.ProxyHostName(record));
        }
    }

    [Fact]
    public void HostileProxyBytesNeverThrow()
    {
        var random = new Random(3);
        for (int i = 0; i < 2000; i++)
        {
            byte[] host = new byte[random.Next(0, 65)];
            random.NextBytes(host);
            StreamRecord record = Records.Proxy(Worker, 1, (StreamProxy)random.Next(6), (ProxyAddress)random.Next(6), host, (ushort)random.Next(65536));
            record.ProxyHostLength = (byte)random.Next(256);
            _ = StratumFindings.ProxyText(record);
            _ = StratumFindings.ProxyHostName(record);
            _ = StratumFindings.ProxyPort(record);
            _ = StratumFindings.ProxyHostAddress(record);
        }
        // The text is UTF-8, invalid bytes replaced.
        Assert.Equal("socks5 \uFFFD:1", StratumFindings.ProxyText(Records.Proxy(Worker, 1, StreamProxy.Socks5, ProxyAddress.Name, [0xFF], 1)));
    }
}
