using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Bpf;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

[Collection(KernelTestGroup.Name)]
public sealed class OutputSafetyTests
{
    /// <summary>Decodes one JSON string the way the README tells a SIEM user to: Python's surrogateescape.</summary>
    private static byte[] RecoverWithPython(byte[] line, string path)
    {
        string script = "import json,sys\nv=json.loads(sys.stdin.buffer.read())\nfor k in sys.argv[1].split('/'):\n    v=v[int(k)] if k.isdigit() else v[k]\nsys.stdout.write(v.encode('utf-8','surrogateescape').hex())";
        using Process p = Run.PythonScript(script, path);
        p.StandardInput.BaseStream.Write(line);
        p.StandardInput.Close();
        string hex = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"python could not read the line: {error}");
        return Convert.FromHexString(hex);
    }

    [Fact]
    public void HostileNamesAndArgumentsGiveValidJsonWhoseBytesCanBeRecovered()
    {
        using var dir = new TempDir();
        byte[] hostileName = [0xff, (byte)'"', (byte)'\n', 0x1b, (byte)'[', (byte)'3', (byte)'1', (byte)'m', 0xc3, 0x28, (byte)'x'];
        byte[] hostileArg = [0xc3, 0x28, (byte)'\\', (byte)'"', 0x00 + 1, 0xe2, 0x82, 0xac, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80];
        // Create the oddly named copy of /bin/true with Python: paths here are bytes.
        string script = """
            import os, shutil, sys
            d, name, arg = sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
            path = os.path.join(d, name)
            shutil.copy('/bin/true', path)
            os.chmod(path, 0o755)
            pid = os.fork()
            if pid == 0:
                os.execv(path, [path, arg] + [a.encode() for a in sys.argv[4:]])
            os.waitpid(pid, 0)
            print(pid)
            """;
        using SensorHarness sensor = SensorHarness.Start();
        using Process python = Run.PythonScript(script, dir.Path, Convert.ToHexString(hostileName), Convert.ToHexString(hostileArg),
            "--password=hunter2", "--api-key", "sekrit", "HF_TOKEN=tok3n-xyz", "https://user:pw@host/x");
        string output = python.StandardOutput.ReadToEnd();
        python.WaitForExit();
        Assert.Equal(0, python.ExitCode);
        int pid = int.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture);

        RecordedEvent exec = sensor.WaitFor("exec of the hostile name", e => e.Action == "exec" && e.Pid == pid);
        // The sink already parsed it: the line is valid JSON. Now the bytes come back exactly.
        Assert.Equal(hostileName.Take(15), RecoverWithPython(exec.Line, "process/name"));
        byte[] expectedPath = [.. Encoding.UTF8.GetBytes(dir.Path + "/"), .. hostileName];
        Assert.Equal(expectedPath, RecoverWithPython(exec.Line, "process/executable"));
        Assert.Equal(hostileArg, RecoverWithPython(exec.Line, "process/args/1"));

        string[] args = [.. exec.Process.GetProperty("args").EnumerateArray().Skip(2).Select(a => a.GetString()!)];
        Assert.Equal(["--password=[REDACTED]", "--api-key", "[REDACTED]", "HF_TOKEN=[REDACTED]", "https://user:[REDACTED]@host/x"], args);
        string commandLine = exec.Process.GetProperty("command_line").GetRawText();
        Assert.DoesNotContain("hunter2", commandLine, StringComparison.Ordinal);
        Assert.DoesNotContain("sekrit", commandLine, StringComparison.Ordinal);
        // Nowhere in the line, the parent's arguments included.
        foreach (string secret in new[] { "hunter2", "sekrit", "tok3n-xyz", ":pw@" })
            Assert.DoesNotContain(secret, Encoding.UTF8.GetString(exec.Line), StringComparison.Ordinal);
    }

    [Fact]
    public void AStalledReaderProducesCountedDropsNotSilence()
    {
        // The smallest ring: a handful of exec records fill it while nobody reads.
        var options = new SensorOptions { Kernel = new KernelOptions { RingBufferBytes = Environment.SystemPageSize } };
        using SensorHarness sensor = SensorHarness.Start(options, poll: false);
        for (int i = 0; i < 20; i++)
        {
            using Process p = Run.Start("/bin/true");
            p.WaitForExit();
        }
        ulong dropped = sensor.Sensor.Kernel.ReadDrops().Aggregate(0UL, (a, b) => a + b);
        Assert.True(dropped > 0, "a full ring buffer must count what it could not take");

        sensor.Sensor.Poll(0);
        sensor.Sensor.EmitHeartbeat(Guard.Sensor.Processes.ClockTicks.PerSecond); // any time: the content is what counts
        RecordedEvent heartbeat = sensor.Events.Last(e => e.Action == "heartbeat");
        Assert.Equal("metric", heartbeat.Json.GetProperty("event").GetProperty("kind").GetString());
        JsonElement drops = heartbeat.Json.GetProperty("guard").GetProperty("health").GetProperty("drops");
        Assert.True(drops.GetProperty("total").GetInt64() >= (long)dropped);
        Assert.True(drops.GetProperty("exec").GetInt64() > 0);
        Assert.True(sensor.Sensor.Summary().Drops >= dropped);
    }
}
