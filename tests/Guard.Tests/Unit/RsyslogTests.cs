using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The syslog output against a real rsyslog on loopback, started by the test
/// with its own configuration, socket and output file (the host's syslog is
/// never touched) and stopped by its pid: rsyslog's own RFC 5424 parser must
/// find the facility, severity, host, app, pid and message id, and the ECS
/// line whole as the message, over TCP (octet counting), UDP and a local socket.
/// </summary>
public sealed class RsyslogTests
{
    private const string Rsyslogd = "/usr/sbin/rsyslogd";

    [Theory]
    [InlineData(SyslogTransport.Tcp)]
    [InlineData(SyslogTransport.Udp)]
    [InlineData(SyslogTransport.Unix)]
    public void RsyslogReceivesEveryEventWithItsHeaderParsedAndTheEcsLineWhole(SyslogTransport transport)
    {
        Assert.True(File.Exists(Rsyslogd), $"{Rsyslogd} is missing: packaging/setup.sh installs rsyslog, which this test runs on loopback");
        using var dir = new TempDir();
        int udpPort = FreeUdpPort();
        string output = Path.Combine(dir.Path, "received.log");
        string config = dir.File("rsyslog.conf", $$"""
            global(workDirectory="{{dir.Path}}" maxMessageSize="64k")
            module(load="imtcp")
            module(load="imudp")
            module(load="imuxsock" SysSock.Use="off")
            template(name="fields" type="string" string="%protocol-version%|%syslogfacility-text%|%syslogseverity-text%|%hostname%|%app-name%|%procid%|%msgid%|%msg%\n")
            ruleset(name="guard") { action(type="omfile" file="{{output}}" template="fields") }
            input(type="imtcp" port="0" address="127.0.0.1" listenPortFileName="{{dir.Path}}/tcp.port" ruleset="guard")
            input(type="imudp" port="{{udpPort}}" address="127.0.0.1" ruleset="guard")
            input(type="imuxsock" Socket="{{dir.Path}}/log.sock" ruleset="guard" UseSpecialParser="off" ParseHostname="on")
            """);
        using Process rsyslog = Guard.Tests.Support.Run.Start(Rsyslogd, "-n", "-f", config, "-i", Path.Combine(dir.Path, "rsyslogd.pid"));
        try
        {
            Guard.Tests.Support.Run.WaitFor(() => File.Exists(Path.Combine(dir.Path, "tcp.port")) && File.Exists(Path.Combine(dir.Path, "log.sock")) || rsyslog.HasExited,
                "rsyslog listening", 10_000);
            if (rsyslog.HasExited)
                Assert.Fail($"rsyslogd exited: {rsyslog.StandardError.ReadToEnd()}");
            SyslogAddress address = transport switch
            {
                SyslogTransport.Tcp => new(transport, "", "127.0.0.1", int.Parse(File.ReadAllText(Path.Combine(dir.Path, "tcp.port")).Trim(), System.Globalization.CultureInfo.InvariantCulture)),
                SyslogTransport.Udp => new(transport, "", "127.0.0.1", udpPort),
                _ => new(transport, Path.Combine(dir.Path, "log.sock"), "", 0),
            };

            var run = RunInfo.ForThisHost("test");
            var set = new OutputSet(new EcsEncoder(run, new ArgumentRedactor()), syslog: new SyslogHeader(run, "authpriv"));
            set.Add(new QueuedOutput(OutputNames.Syslog, new SyslogTarget(address)), OutputFormat.Syslog);
            const int Count = 300;
            var heartbeat = new HeartbeatEvent { TimeNs = Guard.Sensor.Interop.Libc.NowNs(Guard.Sensor.Interop.Libc.ClockBoottime) };
            for (int i = 1; i <= Count; i++)
            {
                heartbeat.Sequence = i;
                set.Write(heartbeat);
                set.Flush();
                if (transport != SyslogTransport.Tcp && i % 50 == 0)
                    Thread.Sleep(20); // datagrams: give rsyslog's reader time, as a real event rate does
            }
            set.Write(new ActionEvent { TimeNs = heartbeat.TimeNs, Action = "kill", Succeeded = true, Message = "killed", OrderedBy = "cli" });
            set.Complete(TimeSpan.FromSeconds(5));
            Assert.Equal((Count + 1L, 0L), (set.Health[0].Written, set.Health[0].Lost));

            string[] lines = [];
            Guard.Tests.Support.Run.WaitFor(() => File.Exists(output) && (lines = File.ReadAllLines(output)).Length >= Count + 1, $"{Count + 1} messages in rsyslog's file", 10_000);
            var sequences = new List<long>();
            foreach (string line in lines)
            {
                string[] f = line.Split('|', 8);
                string host = run.HostName.Length > 0 ? run.HostName : "-";
                Assert.Equal(["1", "authpriv", f[6] == "action" ? "notice" : "info", host, "guard", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)], f[..6]);
                using JsonDocument json = JsonDocument.Parse(f[7]);
                JsonElement ev = json.RootElement.GetProperty("event");
                // MSGID is the event's type; event.action says what it was.
                Assert.Equal(f[6] == "action" ? "kill" : "heartbeat", ev.GetProperty("action").GetString());
                if (f[6] == "heartbeat")
                    sequences.Add(ev.GetProperty("sequence").GetInt64());
            }
            Assert.Equal(Enumerable.Range(1, Count).Select(i => (long)i), sequences.Order());
        }
        finally
        {
            if (!rsyslog.HasExited)
            {
                rsyslog.Kill();
                rsyslog.WaitForExit(5000);
            }
        }
    }

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
