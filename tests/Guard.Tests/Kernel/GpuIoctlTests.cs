using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Gpu;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// GPU ioctls counted on a stand-in device: /dev/full (1:7) configured as a
/// GPU, so the kernel path runs where no NVIDIA driver is. Its ioctls fail
/// with ENOTTY, but the tracepoint sees them first, as it would a GPU's.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class GpuIoctlTests
{
    private static readonly GpuDevice StandIn = new(1, 7, GpuRole.ResourceManager);

    // Opens the device, says READY, waits for GO, then issues RM escapes: ALLOC
    // directly and through the XFER wrapper (NVOS21 and NVOS64 sizes), and
    // CONTROL from a forked child on the inherited fd.
    private const string Script = """
        import ctypes, fcntl, os, struct, sys
        fd = os.open('/dev/full', os.O_RDWR)
        print('READY', flush=True)
        sys.stdin.readline()
        def ioc(nr, size):
            return (3 << 30) | (size << 16) | (ord('F') << 8) | nr
        def call(cmd, buf):
            try:
                fcntl.ioctl(fd, cmd, buf, True)
            except OSError:
                pass
        nvos21 = bytearray(struct.pack('<IIII', 1, 2, 3, 0xc6c0) + bytes(16))
        for _ in range(3):
            call(ioc(0x2B, 32), nvos21)
        nvos64 = ctypes.create_string_buffer(struct.pack('<IIII', 1, 2, 3, 0xc96f) + bytes(32), 48)
        xfer = bytearray(struct.pack('<IIQ', 0x2B, 48, ctypes.addressof(nvos64)))
        call(ioc(211, 16), xfer)
        child = os.fork()
        if child == 0:
            for _ in range(5):
                call(ioc(0x2A, 32), bytearray(32))
            os._exit(0)
        os.waitpid(child, 0)
        print(child, flush=True)
        sys.stdin.readline()
        """;

    [Fact]
    public void IoctlsOnAConfiguredDeviceAreCountedPerProcessForInheritedAndEarlyOpenedFds()
    {
        using Process python = Run.PythonScript(Script);
        Assert.Equal("READY", python.StandardOutput.ReadLine());

        var options = new SensorOptions { Kernel = new KernelOptions { GpuDevices = [StandIn] } };
        using SensorHarness sensor = SensorHarness.Start(options);
        Assert.Contains(sensor.Sensor.Kernel.Attached, a => a.Spec.Name == BpfProgramNames.Ioctl);

        python.StandardInput.WriteLine("GO");
        int child = int.Parse(python.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);

        RecordedEvent first = sensor.WaitFor("first ioctl of the parent", e => e.Action == "gpu-first-ioctl" && e.Pid == python.Id);
        Assert.Equal(1, first.Json.GetProperty("guard").GetProperty("gpu").GetProperty("device").GetProperty("major").GetInt32());
        Assert.Equal(7, first.Json.GetProperty("guard").GetProperty("gpu").GetProperty("device").GetProperty("minor").GetInt32());

        RecordedEvent childActivity = sensor.WaitFor("child's counts at its exit", e => e.Action == "gpu-activity" && e.Pid == child);
        JsonElement childIoctls = childActivity.Json.GetProperty("guard").GetProperty("gpu").GetProperty("ioctls");
        Assert.Equal(5, childIoctls.GetProperty("rm_control").GetInt32());
        Assert.Equal(0, childIoctls.GetProperty("rm_alloc").GetInt32());
        Assert.Equal(python.Id, childActivity.Process.GetProperty("parent").GetProperty("pid").GetInt32());

        RecordedEvent parentActivity = sensor.WaitFor("parent's counts", e => e.Action == "gpu-activity" && e.Pid == python.Id
            && e.Json.GetProperty("guard").GetProperty("gpu").GetProperty("ioctls").GetProperty("rm_alloc").GetInt32() == 4);
        JsonElement gpu = parentActivity.Json.GetProperty("guard").GetProperty("gpu");
        Assert.Equal(0, gpu.GetProperty("ioctls").GetProperty("rm_control").GetInt32());
        var classes = gpu.GetProperty("classes").EnumerateArray().ToDictionary(c => c.GetProperty("class").GetString()!, c => c.GetProperty("count").GetInt32());
        Assert.Equal(3, classes["0xc6c0"]);
        Assert.Equal(1, classes["0xc96f"]); // read through the XFER escape

        python.StandardInput.WriteLine("done");
        python.WaitForExit();
    }

    [Fact]
    public void OpeningAConfiguredDeviceIsRecordedOncePerProcess()
    {
        var options = new SensorOptions { Kernel = new KernelOptions { GpuDevices = [StandIn] } };
        using SensorHarness sensor = SensorHarness.Start(options);
        using Process python = Run.PythonScript("import os\nfor _ in range(3): os.close(os.open('/dev/full', os.O_RDONLY))\n");
        python.WaitForExit();
        sensor.WaitFor("exit", e => e.Action == "exit" && e.Pid == python.Id);
        RecordedEvent open = Assert.Single(sensor.Events, e => e.Action == "gpu-open" && e.Pid == python.Id);
        Assert.Equal(7, open.Json.GetProperty("guard").GetProperty("gpu").GetProperty("device").GetProperty("minor").GetInt32());
    }

    [Fact]
    public void WithoutAGpuDeviceTheIoctlProgramIsNotLoadedAndSaysWhy()
    {
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Kernel = new KernelOptions { GpuDevices = [] } });
        Assert.DoesNotContain(sensor.Sensor.Kernel.Attached, a => a.Spec.Name == BpfProgramNames.Ioctl);
        MissingProgram missing = Assert.Single(sensor.Sensor.Kernel.Missing, m => m.Spec.Name == BpfProgramNames.Ioctl);
        Assert.Contains("no GPU device", missing.Reason, StringComparison.Ordinal);
    }

    // A training job (python3, a job root) whose tool shell starts a process of
    // its own that creates a channel and a compute object on the stand-in GPU.
    private const string JobWithIntruder = """
        import subprocess, sys
        work = "import fcntl, os, struct\n" \
               "fd = os.open('/dev/full', os.O_RDWR)\n" \
               "for cls in (0xc56f, 0xc6c0):\n" \
               "    try: fcntl.ioctl(fd, (3 << 30) | (32 << 16) | (ord('F') << 8) | 0x2B, bytearray(struct.pack('<IIII', 1, 2, 3, cls) + bytes(16)), True)\n" \
               "    except OSError: pass\n" \
               "print(os.getpid(), flush=True)\n"
        out = subprocess.run(['/bin/bash', '-c', f'{sys.executable} -c "$WORK"'], env={'WORK': work}, capture_output=True, text=True).stdout
        print(out.strip(), flush=True)
        sys.stdin.readline()
        """;

    [Fact]
    public void GpuWorkOfAJobsShellChildIsTheChildsAndAnIntruderNotTheRoot()
    {
        var options = new SensorOptions { Policy = Sensor.Detection.PolicyLoader.BuiltIn, Kernel = new KernelOptions { GpuDevices = [StandIn] } };
        using SensorHarness sensor = SensorHarness.Start(options);
        using Process job = Run.PythonScript(JobWithIntruder);
        int child = int.Parse(job.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);

        RecordedEvent alert = sensor.WaitFor("gpu-intruder alert", e => e.Action == "gpu-intruder");
        Assert.Equal(child, alert.Pid);
        Assert.Equal(job.Id, alert.Json.GetProperty("guard").GetProperty("job_root").GetProperty("pid").GetInt32());
        JsonElement evidence = alert.Json.GetProperty("guard").GetProperty("finding").GetProperty("evidence");
        Assert.Contains("through a shell", evidence.GetProperty("why").GetString(), StringComparison.Ordinal);
        Assert.Contains("AMPERE_COMPUTE_A", evidence.GetProperty("classes").GetString(), StringComparison.Ordinal);
        RecordedEvent activity = sensor.WaitFor("the child's GPU activity", e => e.Action == "gpu-activity" && e.Pid == child);
        Assert.Contains("compute", activity.Json.GetProperty("guard").GetProperty("gpu").GetProperty("work").EnumerateArray().Select(w => w.GetString()));
        Assert.DoesNotContain(sensor.Events, e => e.Action.StartsWith("gpu-", StringComparison.Ordinal) && e.Pid == job.Id);
        job.StandardInput.WriteLine("done");
        job.WaitForExit();
    }
}
