using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A renamed miner speaking Stratum to a loopback pool, in a private network
/// namespace: the kernel drops the segment that completes the method and all
/// after it, and the owner recorded at connect is killed.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class StratumTests
{
    // The pool: accepts one connection, records every byte for 3 s.
    internal const string Pool = """
        import socket, sys, time
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', 3333)); l.listen()
        open(sys.argv[1] + '.ready', 'w').close()
        c, _ = l.accept(); c.settimeout(0.2)
        got = b''
        end = time.time() + 3
        while time.time() < end:
            try:
                b = c.recv(4096)
                if not b: break
                got += b
            except socket.timeout:
                pass
        open(sys.argv[1], 'wb').write(got)
        """;

    // The miner: connects, says its first line whole or a byte at a time, then keeps going.
    // The line comes from a file: on the command line, a wallet in it would be found at exec.
    internal const string Miner = """
        import os, socket, sys, time
        while not os.path.exists(sys.argv[1] + '.ready'): time.sleep(0.01)
        s = socket.create_connection(('127.0.0.1', 3333))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = open(sys.argv[3], 'rb').read().rstrip(b'\n') + b'\n'
        if sys.argv[2] == 'whole':
            s.sendall(line)
        else:
            for b in line:
                s.send(bytes([b])); time.sleep(0.005)
        time.sleep(2)
        s.sendall(b'{"id":4,"result":null}\n')
        open(sys.argv[1] + '.survived', 'w').close()
        """;

    public static TheoryData<string, string> Variants()
    {
        var data = new TheoryData<string, string>();
        string[] lines = [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).Where(l => l.StartsWith('{'))];
        foreach (string line in lines)
            data.Add("whole", line);
        data.Add("split", lines[0]);
        data.Add("split", lines[1]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void StratumNeverReachesThePoolAndTheMinerDies(string mode, string line)
    {
        using var dir = new TempDir();
        string received = Path.Combine(dir.Path, "received");
        string pool = dir.File("pool.py", Pool);
        string miner = dir.File("miner.py", Miner);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

        string first = dir.File("first-line", line);
        string script = $"ip link set lo up; {Run.Python} {pool} {received} & {Run.Python} {miner} {received} {mode} {first}; echo miner=$?; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(15_000));

        Assert.Contains("miner=137", output, StringComparison.Ordinal); // SIGKILL
        Assert.False(File.Exists(received + ".survived"));
        byte[] got = File.ReadAllBytes(received);
        if (mode == "whole")
            Assert.Empty(got);
        else
            Assert.DoesNotContain((byte)'\n', got); // a prefix at most: never a complete message
        RecordedEvent alert = sensor.WaitFor("stratum alert", e => e.Action == "stratum");
        JsonElement finding = alert.Json.GetProperty("guard").GetProperty("finding");
        Assert.Equal("127.0.0.1:3333", finding.GetProperty("evidence").GetProperty("destination").GetString());
        // Captured before the kill: the miner's own connection to the pool.
        Assert.Contains("127.0.0.1:3333 (established)", finding.GetProperty("evidence").GetProperty("connections").GetString(), StringComparison.Ordinal);
        string[] response = [.. finding.GetProperty("response").EnumerateArray().Select(r => r.GetString()!)];
        Assert.Contains(response, r => r.Contains("dropped at egress", StringComparison.Ordinal));
        Assert.Contains(response, r => r.StartsWith("killed", StringComparison.Ordinal));
        Assert.Equal("python3", alert.Process.GetProperty("name").GetString());
    }

    [Fact]
    public void AnAllowedDestinationIsNeitherDroppedNorActedOn()
    {
        using var dir = new TempDir();
        string received = Path.Combine(dir.Path, "received");
        Policy policy = Policies.Over("[allow]\ndestinations = [\"127.0.0.1:3333\"]\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = policy });
        string line = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).First(l => l.StartsWith('{'));
        string first = dir.File("first-line", line);
        string script = $"ip link set lo up; {Run.Python} {dir.File("pool.py", Pool)} {received} & {Run.Python} {dir.File("miner.py", Miner)} {received} whole {first}; echo miner=$?; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(15_000));

        Assert.Contains("miner=0", output, StringComparison.Ordinal);
        Assert.StartsWith(line, System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(received)), StringComparison.Ordinal);
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
    }

    [Fact]
    public void OrdinaryJsonAndHttpAreLeftAlone()
    {
        using var dir = new TempDir();
        string received = Path.Combine(dir.Path, "received");
        string pool = dir.File("pool.py", Pool);
        string miner = dir.File("client.py", Miner);
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        const string line = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"eth_blockNumber\",\"params\":[]}";
        string first = dir.File("first-line", line);
        string script = $"ip link set lo up; {Run.Python} {pool} {received} & {Run.Python} {miner} {received} whole {first}; echo client=$?; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(15_000));
        Assert.Contains("client=0", output, StringComparison.Ordinal);
        Assert.StartsWith(line, System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(received)), StringComparison.Ordinal);
        Assert.DoesNotContain(sensor.Events, e => e.Action == "stratum");
    }

    [Fact]
    public void AnAuditedMinerReconnectingGivesOneAlertAndThenItsCount()
    {
        using var dir = new TempDir();
        Policy audit = Policies.Over("mode = \"audit\"\n");
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = audit });
        const string pool = """
            import socket
            l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind(('127.0.0.1', 3333)); l.listen()
            for _ in range(3):
                c, _ = l.accept(); c.recv(4096); c.close()
            """;
        const string miner = """
            import socket, sys, time
            line = open(sys.argv[1], 'rb').read().rstrip(b'\n') + b'\n'
            for _ in range(3):
                for attempt in range(100):
                    try:
                        s = socket.create_connection(('127.0.0.1', 3333)); break
                    except ConnectionRefusedError:
                        time.sleep(0.02)
                s.sendall(line); time.sleep(0.4); s.close()
            """;
        string first = dir.File("first-line", File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).First(l => l.StartsWith('{')));
        string script = $"ip link set lo up; {Run.Python} {dir.File("pool.py", pool)} & {Run.Python} {dir.File("miner.py", miner)} {first}; echo miner=$?; wait";
        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", script);
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(15_000));
        Assert.Contains("miner=0", output, StringComparison.Ordinal); // audit: it runs

        RecordedEvent[] alerts = sensor.WaitForAll("the first alert and the count at exit", e => e.Action == "stratum", 2);
        Thread.Sleep(300);
        alerts = [.. sensor.Events.Where(e => e.Action == "stratum")];
        Assert.Equal([1, 3], alerts.Select(a => a.Json.GetProperty("guard").GetProperty("finding").GetProperty("count").GetInt64()));
        Assert.All(alerts, a => Assert.Equal(alerts[0].Pid, a.Pid));
    }
}
