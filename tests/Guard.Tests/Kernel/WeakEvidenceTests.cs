using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Pool DNS and pool ports are weak: alone they are only remembered; together
/// they raise one alert and still kill nothing. The "public" pool address is a
/// documentation address on the private namespace's loopback: nothing leaves.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class WeakEvidenceTests
{
    private const string Client = """
        import socket, struct, subprocess, sys, threading, time
        def query(name):
            q = struct.pack('>HHHHHH', 7, 0x0100, 1, 0, 0, 0)
            for label in name.split('.'):
                q += bytes([len(label)]) + label.encode()
            q += b'\x00' + struct.pack('>HH', 1, 1)
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(q, ('127.0.0.1', 53))
        l = socket.socket(); l.bind((sys.argv[2], 3333)); l.listen()
        threading.Thread(target=lambda: l.accept(), daemon=True).start()
        if 'dns' in sys.argv[1]: query('eu.supportxmr.com')
        if 'port' in sys.argv[1]: socket.create_connection((sys.argv[2], 3333)).close()
        time.sleep(0.3)
        """;

    private static (Process Job, SensorHarness Sensor) RunInJob(string signals, string address)
    {
        using var dir = new TempDir();
        // From a file: on the command line, the pool's name would be a signal of its own.
        string client = dir.File("client.py", Client);
        SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        // python3 is a job root: the client below runs inside its job.
        string job = $"import subprocess, sys\nsubprocess.run([sys.executable, sys.argv[1], '{signals}', '{address}'], check=True)\n";
        Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c",
            $"ip link set lo up; ip addr add 198.51.100.7/32 dev lo; exec {Run.Python} -c \"$0\" \"$1\"", job, client);
        Assert.True(ns.WaitForExit(10_000));
        Assert.Equal(0, ns.ExitCode);
        return (ns, sensor);
    }

    [Fact]
    public void PoolDnsAndAPoolPortTogetherRaiseOneAlertAndKillNothing()
    {
        (Process job, SensorHarness sensor) = RunInJob("dns+port", "198.51.100.7");
        using (job)
        using (sensor)
        {
            RecordedEvent alert = sensor.WaitFor("weak alert", e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
            Assert.Equal("pool-port", alert.Action);
            JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
            Assert.Contains("eu.supportxmr.com", evidence.GetProperty("pool-dns_0").GetString(), StringComparison.Ordinal);
            Assert.Equal("198.51.100.7:3333", evidence.GetProperty("pool-port_1").GetString());
            Assert.Equal(0, alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("response").GetArrayLength());
            Assert.Single(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
        }
    }

    [Theory]
    [InlineData("dns", "198.51.100.7")]
    [InlineData("port", "198.51.100.7")]
    [InlineData("dns+port", "127.0.0.1")] // a loopback pool port is no evidence at all
    public void OneWeakSignalAloneRaisesNothing(string signals, string address)
    {
        (Process job, SensorHarness sensor) = RunInJob(signals, address);
        using (job)
        using (sensor)
        {
            sensor.WaitFor("the job's exit", e => e.Action == "exit" && e.Pid == job.Id);
            Thread.Sleep(300);
            Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
        }
    }
}
