using System.Diagnostics;
using System.Text.Json;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Fileless and throwaway executables run from inside a job: found on the
/// inode (a memfd, a deleted file, a world-writable sticky directory), kept as
/// weak evidence on the exec event, never acted on alone.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class StagingTests
{
    private const string Stager = """
        import os, shutil, subprocess, sys
        def run(path):
            subprocess.run([path, 'staged'], close_fds=False, check=True)
        # memfd: the program exists only in memory.
        m = os.memfd_create('payload')
        os.write(m, open('/bin/true', 'rb').read())
        run(f'/proc/self/fd/{m}')
        # unlinked: copied, opened, deleted, then run through its fd.
        path = sys.argv[1] + '/gone'
        shutil.copy('/bin/true', path)
        fd = os.open(path, os.O_RDONLY)
        os.unlink(path)
        run(f'/proc/self/fd/{fd}')
        # a world-writable sticky directory.
        shm = '/dev/shm/' + os.path.basename(sys.argv[1])
        shutil.copy('/bin/true', shm)
        try:
            run(shm)
        finally:
            os.unlink(shm)
        """;

    [Fact]
    public void MemfdUnlinkedAndSharedDirectoryExecsFromAJobAreFound()
    {
        using var dir = new TempDir();
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process python = Run.PythonScript(Stager, dir.Path); // python3: a job root
        string error = python.StandardError.ReadToEnd();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, error);

        RecordedEvent[] staged = sensor.WaitForAll("staged execs", e => e.Action == "exec" && e.Args.Contains("staged"), 3);
        string[] kinds = [.. staged.Select(e => e.Json.GetProperty("guard").TryGetProperty("staging", out JsonElement s) ? s.GetString()! : "none")];
        Assert.Equal(["memfd", "unlinked", "shared-directory"], kinds);
        Assert.All(staged, e => Assert.Equal(python.Id, e.Json.GetProperty("guard").GetProperty("job_root_pid").GetInt32()));
        // Weak evidence alone: no alert, no kill.
        Assert.DoesNotContain(sensor.Events, e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert");
        Assert.All(sensor.Events.Where(e => e.Action == "exit" && e.Args.Contains("staged")),
            e => Assert.Equal(0, e.Process.GetProperty("exit_code").GetInt32()));
    }

    [Fact]
    public void AnOrdinaryExecHasNoStagingMark()
    {
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });
        using Process p = Run.Start("/bin/true", "plain");
        p.WaitForExit();
        RecordedEvent exec = sensor.WaitFor("exec", e => e.Action == "exec" && e.Pid == p.Id);
        Assert.False(exec.Json.GetProperty("guard").TryGetProperty("staging", out _));
    }
}
