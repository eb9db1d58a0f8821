using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Bpf;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>
/// A cgroup subtree of the test's own, guard-test-ID under the cgroup v2 root
/// (/sys/fs/cgroup/unified on a hybrid host), for stand-in job layouts: a
/// Slurm job, a pod, a container scope, a service. Dispose kills whatever runs
/// in it (cgroup.kill: only the test's processes are there, frozen or not)
/// and removes every directory, deepest first, even when the test failed.
/// </summary>
public sealed class TestCgroups : IDisposable
{
    public TestCgroups()
    {
        Mount = KernelMounts.FindCgroup2Root();
        Top = "/guard-test-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(DirectoryOf(Top));
    }

    /// <summary>The cgroup2 mount.</summary>
    public string Mount { get; }

    /// <summary>The test's own cgroup, relative to the mount ("/guard-test-1a2b3c4d"); everything else is below it.</summary>
    public string Top { get; }

    /// <summary>The directory of a cgroup named relative to the mount.</summary>
    public string DirectoryOf(string cgroupPath) => Mount + cgroupPath;

    /// <summary>Makes <paramref name="below"/> ("a/job_1/step_0") under <see cref="Top"/>; returns its path relative to the mount.</summary>
    public string Make(string below)
    {
        string path = $"{Top}/{below}";
        Directory.CreateDirectory(DirectoryOf(path));
        return path;
    }

    /// <summary>Moves process <paramref name="pid"/> into <paramref name="cgroupPath"/>.</summary>
    public void Enter(int pid, string cgroupPath) =>
        File.WriteAllText(Path.Join(DirectoryOf(cgroupPath), "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>Whether the cgroup is frozen now (cgroup.events).</summary>
    public bool Frozen(string cgroupPath) => File.ReadLines(Path.Join(DirectoryOf(cgroupPath), "cgroup.events")).Contains("frozen 1");

    /// <summary>
    /// A shell moved into <paramref name="cgroupPath"/> that runs <paramref name="command"/>
    /// once told to (<see cref="Go"/>): what it runs is exec'd or forked there,
    /// while the shell itself was exec'd outside, as a job's first process is.
    /// </summary>
    public Process StartIn(string cgroupPath, string command)
    {
        Process shell = Run.Start("/bin/sh", "-c", $"read go; {command}");
        try
        {
            Enter(shell.Id, cgroupPath);
        }
        catch
        {
            shell.Kill();
            shell.Dispose();
            throw;
        }
        return shell;
    }

    /// <summary>Tells a shell of <see cref="StartIn"/> to run its command.</summary>
    public static void Go(Process shell) => shell.StandardInput.WriteLine("go");

    public void Dispose()
    {
        string top = DirectoryOf(Top);
        if (!Directory.Exists(top))
            return;
        File.WriteAllText(Path.Join(top, "cgroup.kill"), "1");
        var clock = Stopwatch.StartNew();
        while (File.ReadLines(Path.Join(top, "cgroup.events")).Contains("populated 1"))
        {
            if (clock.ElapsedMilliseconds > 5000)
                throw new XunitException($"processes of {Top} outlived cgroup.kill for 5 s");
            Thread.Sleep(20);
        }
        foreach (string dir in Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
            Directory.Delete(dir);
        Directory.Delete(top);
    }
}
