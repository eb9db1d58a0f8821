using System.Diagnostics;
using System.Text;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Stratum hidden below the bytes, in how the segments carry them: one byte
/// sent as urgent data (MSG_OOB), which the pool's kernel takes out of the
/// stream, so the sensor read a key the pool never sees; and IPv6 extension
/// headers a TCP socket's own options add (IPV6_DSTOPTS, IPV6_HOPOPTS) in
/// front of the TCP header. A python3 pool and client in a private network
/// namespace; the client is a process of its own, so a kill ends only it.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class StreamHeaderEvasionTests
{
    /// <summary>Listens on HOST 3333, records every byte of one connection to OUT (as a pool without SO_OOBINLINE reads them).</summary>
    private const string Pool = """
        import socket, sys, time
        out, host = sys.argv[1], sys.argv[2]
        l = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((host, 3333)); l.listen(); l.settimeout(8)
        open(out + '.ready', 'w').close()
        got = b''
        try:
            c, _ = l.accept(); c.settimeout(0.2)
            end = time.time() + 3
            while time.time() < end:
                try:
                    b = c.recv(65536)
                    if not b: break
                    got += b
                except socket.timeout:
                    pass
        except OSError:
            pass
        open(out, 'wb').write(got)
        """;

    /// <summary>Connects to HOST 3333 (with the IPv6 option named, if any), sends each part (a part "!X" is X sent with MSG_OOB), then says it survived.</summary>
    private const string Client = """
        import base64, os, socket, sys, time
        out, host, option, parts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
        while not os.path.exists(out + '.ready'): time.sleep(0.01)
        s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if option != 'none':
            # Pad1 padding to 8 bytes; the kernel writes the next header field.
            s.setsockopt(socket.IPPROTO_IPV6, {'dstopts': socket.IPV6_DSTOPTS, 'hopopts': socket.IPV6_HOPOPTS}[option], bytes(8))
        s.connect((host, 3333))
        for part in parts:
            urgent = part.startswith('!')
            s.send(base64.b64decode(part[1:] if urgent else part), socket.MSG_OOB if urgent else 0)
            time.sleep(0.05)
        time.sleep(1)
        open(out + '.survived', 'w').close()
        """;

    private static readonly string Login = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"x\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0\"}}\n";

    /// <summary>Runs the pool and the client in a private network namespace: the client's exit status, whether it said it survived, what the pool read.</summary>
    private static (int Exit, bool Survived, byte[] Received) Run(TempDir dir, string host, string option, params (string Text, bool Urgent)[] parts) =>
        Run(dir, host, option, [.. parts.Select(p => (Encoding.UTF8.GetBytes(p.Text), p.Urgent))]);

    private static (int Exit, bool Survived, byte[] Received) Run(TempDir dir, string host, string option, (byte[] Data, bool Urgent)[] parts)
    {
        string received = Path.Combine(dir.Path, "received");
        string args = string.Join(' ', parts.Select(p => (p.Urgent ? "!" : "") + Convert.ToBase64String(p.Data)));
        string script = $"ip link set lo up; {Support.Run.Python} {dir.File("pool.py", Pool)} {received} {host} & " +
            $"{Support.Run.Python} {dir.File("client.py", Client)} {received} {host} {option} {args}; echo client=$?; wait";
        using Process ns = Support.Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        string error = ns.StandardError.ReadToEnd();
        Assert.True(ns.WaitForExit(20_000), "the namespace's processes did not finish");
        string status = output.Split('\n').LastOrDefault(l => l.StartsWith("client=", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"the client never finished: {output} {error}");
        if (!File.Exists(received))
            throw new Xunit.Sdk.XunitException($"the pool never wrote what it read: {error}");
        return (int.Parse(status["client=".Length..], System.Globalization.CultureInfo.InvariantCulture), File.Exists(received + ".survived"), File.ReadAllBytes(received));
    }

    [Fact]
    public void AByteSentAsUrgentDataHoldsTheStreamBeforeItsKeyLeaves()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // The sensor would read "meXthod"; the pool reads "method" (the urgent byte is taken out).
        string before = "{\"id\":1,\"jsonrpc\":\"2.0\",\"me";
        (_, _, byte[] got) = Run(dir, "127.0.0.1", "none", (before, false), ("X", true), (Login[(Login.IndexOf("\"method\"", StringComparison.Ordinal) + 3)..], false));
        Assert.Equal(before, Encoding.UTF8.GetString(got));
        RecordedEvent alert = sensor.WaitFor("hold alert", e => e.Action == "stratum");
        Assert.Contains("urgent data", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AByteSentAsUrgentDataInsideAClientHelloHoldsIt()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // One urgent byte inside the server name: the sensor would read pool.supportxQmr.com, the server pool.supportxmr.com.
        byte[] hello = Records.TlsClientHello("pool.supportxmr.com");
        int cut = hello.AsSpan().IndexOf("xmr"u8);
        (_, _, byte[] got) = Run(dir, "127.0.0.1", "none", [(hello[..cut], false), ("Q"u8.ToArray(), true), (hello[cut..], false)]);
        Assert.Equal(Convert.ToHexString(hello[..cut]), Convert.ToHexString(got));
        RecordedEvent alert = sensor.WaitFor("hold alert", e => e.Action == "stratum");
        Assert.Contains("urgent data", alert.Json.GetProperty("rule").GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void UrgentDataOfAStreamTheScanHasLeftPassesUntouched()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // A telnet session interrupting its program within its first bytes: IAC IP, then the Synch, its DM byte
        // sent as urgent data (RFC 854), which the server takes out of the stream. (An FTP session's ABOR early in
        // its control connection is held instead: "USER name" reads as the start of an HTTP request head.)
        byte[] commands = [0xFF, 0xFB, 0x18, .. "ls\r\n"u8];
        byte[] abort = "exit\r\n"u8.ToArray();
        (int exit, bool survived, byte[] got) = Run(dir, "127.0.0.1", "none", [(commands, false), ([0xFF, 0xF4, 0xFF, 0xF2], true), (abort, false)]);
        Assert.Equal(0, exit);
        Assert.True(survived);
        Assert.Equal(Convert.ToHexString([.. commands, 0xFF, 0xF4, 0xFF, .. abort]), Convert.ToHexString(got));
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }

    [Theory]
    [InlineData("dstopts")]
    [InlineData("hopopts")]
    public void ALoginBehindAnIpv6ExtensionHeaderNeverReachesThePoolAndTheMinerDies(string option)
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        (int exit, bool survived, byte[] got) = Run(dir, "::1", option, (Login, false));
        int valueStart = Login.IndexOf("\"login\"", StringComparison.Ordinal);
        Assert.True(got.Length <= valueStart, $"{got.Length} bytes reached the pool, the method's value starts at {valueStart}: {Encoding.UTF8.GetString(got)}");
        Assert.Equal(137, exit); // SIGKILL
        Assert.False(survived);
        RecordedEvent alert = sensor.WaitFor("stratum alert", e => e.Action == "stratum");
        Assert.Equal("[::1]:3333", alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence").GetProperty("destination").GetString());
    }

    [Fact]
    public void OrdinaryTrafficBehindAnIpv6ExtensionHeaderPassesUntouched()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        const string request = "GET /simple/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n";
        (int exit, bool survived, byte[] got) = Run(dir, "::1", "dstopts", (request, false));
        Assert.Equal(0, exit);
        Assert.True(survived);
        Assert.Equal(request, Encoding.UTF8.GetString(got));
        Thread.Sleep(300);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }
}
