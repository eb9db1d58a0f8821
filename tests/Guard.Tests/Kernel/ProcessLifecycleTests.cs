using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

[Collection(KernelTestGroup.Name)]
public sealed class ProcessLifecycleTests
{
    [Fact]
    public void ExecAppearsOnceWithItsParentChainKeptAfterTheMiddleProcessExits()
    {
        using var dir = new TempDir();
        string marker = "leaf-" + Guid.NewGuid().ToString("N")[..8];
        string leaf = dir.File("leaf.sh", $"sleep 0.5\nexec /bin/echo {marker} one two\n");
        string middle = dir.File("middle.sh", $"/bin/sh {leaf} &\nexit 0\n");
        string top = dir.File("top.sh", $"/bin/sh {middle}\nsleep 1.5\n");
        using SensorHarness sensor = SensorHarness.Start();

        using Process topProcess = Run.Start("/bin/sh", top);
        RecordedEvent exec = sensor.WaitFor("exec of the leaf", e => e.Action == "exec" && e.Args.Contains(marker));
        topProcess.WaitForExit();

        Assert.Equal(["/bin/echo", marker, "one", "two"], exec.Args);
        Assert.Single(sensor.Events, e => e.Action == "exec" && e.Args.Contains(marker));

        RecordedEvent middleExec = sensor.Events.Single(e => e.Action == "exec" && e.Args.Contains(middle));
        RecordedEvent topExec = sensor.Events.Single(e => e.Action == "exec" && e.Args.Contains(top) && e.Pid == topProcess.Id);
        RecordedEvent middleExit = sensor.Events.Single(e => e.Action == "exit" && e.Pid == middleExec.Pid);
        // The middle process was gone before the leaf exec'd, and still is its parent.
        Assert.True(middleExit.Json.GetProperty("event").GetProperty("sequence").GetInt64() < exec.Json.GetProperty("event").GetProperty("sequence").GetInt64());
        JsonElement parent = exec.Process.GetProperty("parent");
        Assert.Equal(middleExec.Pid, parent.GetProperty("pid").GetInt32());
        Assert.Equal(middleExec.Process.GetProperty("entity_id").GetString(), parent.GetProperty("entity_id").GetString());
        string[] ancestry = [.. exec.Json.GetProperty("guard").GetProperty("ancestry").EnumerateArray().Select(a => a.GetString()!)];
        Assert.Equal(middleExec.Process.GetProperty("entity_id").GetString(), ancestry[0]);
        Assert.Equal(topExec.Process.GetProperty("entity_id").GetString(), ancestry[1]);
        // The test process itself started the top shell.
        Assert.Equal(Environment.ProcessId, topExec.Process.GetProperty("parent").GetProperty("pid").GetInt32());
    }

    [Fact]
    public void ProcessStartedBeforeTheSensorHasItsAncestryAndTheSameEntityIdAsLiveEvents()
    {
        string marker = "early-" + Guid.NewGuid().ToString("N")[..8];
        using Process early = Run.Start("/bin/sh", "-c", $"read line; exec /bin/echo {marker}");
        string stat = File.ReadAllText($"/proc/{early.Id}/stat");
        long startTicks = long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19], CultureInfo.InvariantCulture);
        string bootId = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        string expectedId = new EntityIds(bootId).For(early.Id, startTicks);

        using SensorHarness sensor = SensorHarness.Start();
        ProcessEntry seeded = sensor.Sensor.Processes.Find(early.Id)!;
        Assert.NotNull(seeded);
        Assert.Equal(ProcessOrigin.Procfs, seeded.Origin);
        Assert.Equal(expectedId, seeded.EntityId);
        Assert.Equal(Environment.ProcessId, seeded.Parent?.Pid);

        early.StandardInput.WriteLine("go");
        RecordedEvent exec = sensor.WaitFor("exec of the early process", e => e.Action == "exec" && e.Args.Contains(marker));
        early.WaitForExit();
        // The live record's identity (kernel start time) found the seeded entry.
        Assert.Equal(expectedId, exec.Process.GetProperty("entity_id").GetString());
        Assert.Equal(Environment.ProcessId, exec.Process.GetProperty("parent").GetProperty("pid").GetInt32());
    }

    [Fact]
    public void ExitCarriesTheCodeAndTheSignal()
    {
        using SensorHarness sensor = SensorHarness.Start();
        using Process coded = Run.Start("/bin/sh", "-c", "exit 7");
        using Process killed = Run.Start("/bin/sleep", "30");
        RecordedEvent started = sensor.WaitFor("exec of sleep", e => e.Action == "exec" && e.Pid == killed.Id);
        killed.Kill();
        coded.WaitForExit();
        killed.WaitForExit();

        RecordedEvent codedExit = sensor.WaitFor("exit 7", e => e.Action == "exit" && e.Pid == coded.Id);
        Assert.Equal(7, codedExit.Process.GetProperty("exit_code").GetInt32());
        Assert.Equal(0, codedExit.Json.GetProperty("guard").GetProperty("exit").GetProperty("signal").GetInt32());

        RecordedEvent killedExit = sensor.WaitFor("exit by SIGKILL", e => e.Action == "exit" && e.Pid == killed.Id);
        Assert.Equal(9, killedExit.Json.GetProperty("guard").GetProperty("exit").GetProperty("signal").GetInt32());
        Assert.Equal(128 + 9, killedExit.Process.GetProperty("exit_code").GetInt32());
        Assert.Equal(started.Process.GetProperty("entity_id").GetString(), killedExit.Process.GetProperty("entity_id").GetString());
    }

    [Fact]
    public void ThreadsAreNotProcesses()
    {
        using SensorHarness sensor = SensorHarness.Start();
        string script = "import threading\nts=[threading.Thread(target=lambda: None) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n";
        using Process python = Run.PythonScript(script);
        python.WaitForExit();
        sensor.WaitFor("exit of the threaded process", e => e.Action == "exit" && e.Pid == python.Id);
        Assert.DoesNotContain(sensor.Events, e => e.Action == "fork" && e.Process.GetProperty("parent").GetProperty("pid").GetInt32() == python.Id);
        Assert.Single(sensor.Events, e => e.Action == "exit" && e.Pid == python.Id);
    }
}
