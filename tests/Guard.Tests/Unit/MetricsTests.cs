using System.Net;
using System.Net.Sockets;
using System.Text;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The metrics endpoint's parts: the Prometheus text format, the bounded
/// counters, the ring-drop alert, and the HTTP server against real loopback
/// clients, hostile ones included.
/// </summary>
public sealed class MetricsTests
{
    [Fact]
    public void EachFamilyHasOneHelpAndOneTypeLineBeforeItsSamples()
    {
        var m = new PrometheusText();
        m.Counter("guard_events_total", "Events written, by type.").Sample("type", "exec", 3).Sample("type", "exit", 2);
        m.Gauge("guard_processes", "Processes in the table.").Sample(12);
        m.Counter("guard_never_counted_total", "Shown before it first counts.");

        Assert.Equal(
            "# HELP guard_events_total Events written, by type.\n" +
            "# TYPE guard_events_total counter\n" +
            "guard_events_total{type=\"exec\"} 3\n" +
            "guard_events_total{type=\"exit\"} 2\n" +
            "# HELP guard_processes Processes in the table.\n" +
            "# TYPE guard_processes gauge\n" +
            "guard_processes 12\n" +
            "# HELP guard_never_counted_total Shown before it first counts.\n" +
            "# TYPE guard_never_counted_total counter\n",
            m.ToString());
    }

    [Fact]
    public void LabelValuesEscapeBackslashQuoteAndNewlineAndHelpEscapesBackslashAndNewline()
    {
        var m = new PrometheusText();
        m.Gauge("guard_x", "a \\ b\nc \"d\"").Sample("path", "C:\\dir\n\"q\"", "b", "ü", 1);

        string[] lines = m.ToString().Split('\n');
        Assert.Equal("# HELP guard_x a \\\\ b\\nc \"d\"", lines[0]); // HELP leaves quotes alone
        Assert.Equal("guard_x{path=\"C:\\\\dir\\n\\\"q\\\"\",b=\"ü\"} 1", lines[2]);
    }

    [Fact]
    public void NumbersAreWrittenAsTheFormatReadsThem()
    {
        Assert.Equal("NaN", PrometheusText.Number(double.NaN));
        Assert.Equal("+Inf", PrometheusText.Number(double.PositiveInfinity));
        Assert.Equal("-Inf", PrometheusText.Number(double.NegativeInfinity));
        Assert.Equal("0.25", PrometheusText.Number(0.25));
        Assert.Equal("1.8446744073709552E+19", PrometheusText.Number(ulong.MaxValue)); // Go's ParseFloat reads it
        Assert.Equal("1234567", PrometheusText.Number(1_234_567));
    }

    [Fact]
    public void BadNamesAndRepeatedFamiliesAreRefused()
    {
        var m = new PrometheusText();
        Assert.Throws<ArgumentException>(() => m.Counter("9lives", "x"));
        Assert.Throws<ArgumentException>(() => m.Counter("guard-dash", "x"));
        Assert.Throws<InvalidOperationException>(() => m.Sample(1));
        m.Counter("guard_ok:total", "x");
        Assert.Throws<ArgumentException>(() => m.Sample("__reserved", "v", 1));
        Assert.Throws<ArgumentException>(() => m.Sample("a:b", "v", 1));
        Assert.Throws<ArgumentException>(() => m.Counter("guard_ok:total", "again"));
    }

    [Fact]
    public void LabeledCountersKeepAtMostMaxSeriesAndCountTheRestAsOther()
    {
        var counters = new LabeledCounters();
        for (int i = 0; i < LabeledCounters.MaxSeries + 50; i++)
            counters.Add($"rule-{i}", "success");
        counters.Add("rule-0", "success", 4);

        IReadOnlyList<(string Value, string Second, long Count)> series = counters.Snapshot();
        Assert.True(series.Count <= LabeledCounters.MaxSeries + 1, $"{series.Count} series");
        Assert.Equal(LabeledCounters.MaxSeries + 54, series.Sum(s => s.Count));
        Assert.Equal(5, counters.Get("rule-0", "success"));
        Assert.Contains(series, s => s.Value == LabeledCounters.Other && s.Count >= 50);
    }

    [Fact]
    public void DropsOverTheRateAlertOnceAMinuteWithEveryDropSinceTheLastAlert()
    {
        var sink = new KeepingSink();
        var emitter = new EventEmitter(new ProcessTable(new EntityIds("feedfacecafe"), null, new UserNames()), sink, new EventFilter());
        var alerts = new RingDropAlerts(100, emitter);
        const long S = 1_000_000_000;

        alerts.Sample(Drops(0, 0), 0);
        alerts.Sample(Drops(50, 0), 1 * S); // 50/s: under the rate
        Assert.Empty(sink.Events);
        alerts.Sample(Drops(350, 10), 2 * S); // 310/s: over
        AlertEvent first = Assert.IsType<AlertEvent>(Assert.Single(sink.Events));
        Assert.Equal(RingDropAlerts.Rule, first.Rule);
        Assert.True(first.AboutSensor);
        Assert.Null(first.Process);
        Assert.Equal("360", Evidence(first, "dropped")); // everything since the start, the 50 under the rate too
        Assert.Equal("exec 350, fork 10", Evidence(first, "dropped_by_kind"));
        Assert.Equal("310", Evidence(first, "peak_per_second"));

        // Another flood within the minute: kept, not sent.
        alerts.Sample(Drops(1350, 10), 3 * S);
        alerts.Sample(Drops(1350, 10), 30 * S);
        Assert.Single(sink.Events);
        // The minute is up and the flood is over: what it lost still goes out, once.
        alerts.Sample(Drops(1350, 10), 62 * S);
        Assert.Equal(2, sink.Events.Count);
        AlertEvent second = Assert.IsType<AlertEvent>(sink.Events[1]);
        Assert.Equal("1000", Evidence(second, "dropped"));
        Assert.Equal("60", Evidence(second, "window_seconds"));
        alerts.Sample(Drops(1350, 10), 200 * S);
        Assert.Equal(2, sink.Events.Count);
        Assert.Equal(2, alerts.Sent);
    }

    [Fact]
    public void AddressesAreAPortOnLoopbackOrAnIpAndPort()
    {
        Assert.True(MetricsServer.TryParseAddress("9464", out IPEndPoint e));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 9464), e);
        Assert.True(MetricsServer.TryParseAddress("0.0.0.0:9100", out e));
        Assert.Equal(new IPEndPoint(IPAddress.Any, 9100), e);
        Assert.True(MetricsServer.TryParseAddress("[::1]:9464", out e));
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 9464), e);
        foreach (string bad in (string[])["", "0", "70000", "localhost:9464", "127.0.0.1", "::1", "127.0.0.1:0", "abc"])
            Assert.False(MetricsServer.TryParseAddress(bad, out _), bad);
    }

    [Fact]
    public async Task MetricsAndHealthzAreServedAndAnUnhealthySensorSaysWhyWith503()
    {
        string? unhealthy = null;
        using var server = new MetricsServer(new IPEndPoint(IPAddress.Loopback, 0), () => "guard_up 1\n", () => unhealthy);

        (string head, string body) = await Get(server.Endpoint, "/metrics");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
        Assert.Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", head, StringComparison.Ordinal);
        Assert.Equal("guard_up 1\n", body);

        Assert.Equal("ok\n", (await Get(server.Endpoint, "/healthz")).Body);
        unhealthy = "drain stalled: the ring has not been drained for 31.0 s (limit 30.0 s)";
        (head, body) = await Get(server.Endpoint, "/healthz?verbose");
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable\r\n", head, StringComparison.Ordinal);
        Assert.Equal(unhealthy + "\n", body);

        Assert.StartsWith("HTTP/1.1 404 ", (await Get(server.Endpoint, "/")).Head, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 405 ", (await Send(server.Endpoint, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")).Head, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 400 ", (await Send(server.Endpoint, "hello\r\n\r\n")).Head, StringComparison.Ordinal);
        (head, body) = await Send(server.Endpoint, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Contains("Content-Length: 11\r\n", head, StringComparison.Ordinal);
        Assert.Equal("", body);
    }

    [Fact]
    public async Task AMegabyteRequestLineIsRefusedWithoutBeingRead()
    {
        using var server = new MetricsServer(new IPEndPoint(IPAddress.Loopback, 0), () => "guard_up 1\n", () => null);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(server.Endpoint);
        byte[] line = Encoding.ASCII.GetBytes("GET /" + new string('a', 1 << 20) + " HTTP/1.1\r\n\r\n");
        // The server stops reading at 8 KiB: the send may fail once it has closed.
        try
        {
            await client.SendAsync(line).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (SocketException)
        {
        }
        var buffer = new byte[4096];
        int n = 0;
        try
        {
            n = await client.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (SocketException)
        {
            // Reset after the answer: the answer may be lost with it; the count below says what happened.
        }
        Assert.True(n == 0 || Encoding.ASCII.GetString(buffer, 0, n).StartsWith("HTTP/1.1 431 ", StringComparison.Ordinal), Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal(1, server.Refused);
        Assert.Equal("guard_up 1\n", (await Get(server.Endpoint, "/metrics")).Body);
    }

    [Fact]
    public async Task ClientsThatNeverSendOrNeverReadCannotKeepAScrapeOut()
    {
        using var server = new MetricsServer(new IPEndPoint(IPAddress.Loopback, 0), () => new string('x', 4 << 20), () => null);
        var idle = new List<Socket>();
        try
        {
            // Many more connections than it serves, each sending nothing or asking and never reading its 4 MB answer.
            for (int i = 0; i < 300; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
                idle.Add(s);
                try
                {
                    await s.ConnectAsync(server.Endpoint);
                    if (i % 2 == 0)
                        await s.SendAsync(Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\n\r\n"));
                }
                catch (SocketException)
                {
                    // One the server closed at once: it was over the limit.
                }
            }
            Thread.Sleep(200);
            Assert.True(server.Rejected >= 300 - MetricsServer.MaxConnections, $"only {server.Rejected} refused");
            // Once the stuck ones time out, a scrape gets through.
            DateTime deadline = DateTime.UtcNow + MetricsServer.ConnectionTimeout + TimeSpan.FromSeconds(10);
            while (true)
            {
                try
                {
                    (string head, string body) = await Get(server.Endpoint, "/healthz");
                    if (head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal) && body == "ok\n")
                        break;
                }
                catch (Exception e) when (e is SocketException or IOException)
                {
                }
                Assert.True(DateTime.UtcNow < deadline, "no scrape got through once the stuck connections timed out");
                await Task.Delay(200);
            }
            Assert.True(server.TimedOut >= 1, "the stuck connections were never timed out");
        }
        finally
        {
            foreach (Socket s in idle)
                s.Dispose();
        }
    }

    [Fact]
    public void APolicysDigestIsTheSha256OfItsFileAsRead()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "policy.toml");
        byte[] bytes = Encoding.UTF8.GetBytes("mode = \"audit\"\n");
        File.WriteAllBytes(path, bytes);
        PolicyLoader.Load(path, out string sha256);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), sha256);
        PolicyLoader.Load(null, out string builtIn);
        Assert.Matches("^[0-9a-f]{64}$", builtIn);
    }

    [Fact]
    public void ASighupReachesEveryRegisteredHandlerEvenPastOneThatThrows()
    {
        int first = 0, second = 0;
        using (HangupSignal.Add(() => first++))
        using (HangupSignal.Add(() => throw new IOException("its file is gone")))
        using (HangupSignal.Add(() => second++))
            HangupSignal.Raise();
        HangupSignal.Raise(); // nobody registered: nobody told
        Assert.Equal((1, 1), (first, second));
    }

    /// <summary>Keeps the events themselves (the drop alert makes a new one each time).</summary>
    private sealed class KeepingSink : IEventSink
    {
        public List<SensorEvent> Events { get; } = [];

        public void Write(SensorEvent e) => Events.Add(e);

        public void Flush()
        {
        }

        public void Dispose()
        {
        }
    }

    private static ulong[] Drops(ulong exec, ulong fork) => [0, exec, fork, 0, 0, 0, 0, 0, 0];

    private static string Evidence(AlertEvent alert, string name) => alert.Evidence.Single(e => e.Key == name).Value;

    private static Task<(string Head, string Body)> Get(IPEndPoint endpoint, string target) =>
        Send(endpoint, $"GET {target} HTTP/1.1\r\nHost: guard\r\nAccept: */*\r\n\r\n");

    /// <summary>Sends a raw request and reads the answer to the server's close; the head and body apart.</summary>
    private static async Task<(string Head, string Body)> Send(IPEndPoint endpoint, string request)
    {
        using var client = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await client.ConnectAsync(endpoint, timeout.Token);
        await client.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None, timeout.Token);
        var answer = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            answer.Write(buffer, 0, n);
        string text = Encoding.UTF8.GetString(answer.ToArray());
        int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return split < 0 ? (text, "") : (text[..(split + 2)], text[(split + 4)..]);
    }
}
