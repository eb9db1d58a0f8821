using System.Diagnostics;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>Starts real processes for tests and always cleans them up.</summary>
public static class Run
{
    public static Process Start(string file, params string[] args) => StartWith(null, file, args);

    /// <summary>Starts <paramref name="file"/> with these variables set in its environment (beside this process's), its standard streams redirected.</summary>
    public static Process StartWith(IReadOnlyDictionary<string, string>? environment, string file, params string[] args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
            info.ArgumentList.Add(a);
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
            info.Environment[name] = value;
        return Process.Start(info) ?? throw new XunitException($"could not start {file}");
    }

    /// <summary>The apphost `guard` this build made beside the tests: the very file a `guard` command runs.</summary>
    public static string GuardExecutable => Path.Combine(Path.GetDirectoryName(typeof(Guard.Cli.GuardCli).Assembly.Location)!, "guard");

    /// <summary>Runs to completion and returns stdout; fails the test on a non-zero exit.</summary>
    public static string Complete(string file, params string[] args)
    {
        using Process p = Start(file, args);
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            throw new XunitException($"{file} did not finish in 30 s");
        }
        if (p.ExitCode != 0)
            throw new XunitException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {error}");
        return output;
    }

    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    /// <summary>A python3 script run as its own process; returns the process.</summary>
    public static Process PythonScript(string script, params string[] args) => Start(Python, ["-c", script, .. args]);

    /// <summary>Polls <paramref name="condition"/> every 20 ms; fails the test, naming <paramref name="what"/>, after <paramref name="ms"/>.</summary>
    public static void WaitFor(Func<bool> condition, string what, int ms = 5000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > ms)
                throw new XunitException($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    /// <summary>Polls <paramref name="value"/> every 20 ms until it gives one; fails the test, naming <paramref name="what"/>, after <paramref name="ms"/>.</summary>
    public static T WaitForValue<T>(Func<T?> value, string what, int ms = 5000)
        where T : struct
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (value() is { } found)
                return found;
            if (clock.ElapsedMilliseconds > ms)
                throw new XunitException($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    /// <summary>The process's state letter from /proc/PID/status (S, T, Z, ...); X once it is gone.</summary>
    public static char State(int pid)
    {
        try
        {
            string status = File.ReadAllText($"/proc/{pid}/status");
            return status[status.IndexOf("State:\t", StringComparison.Ordinal) + 7];
        }
        catch (IOException)
        {
            return 'X';
        }
    }
}

/// <summary>A temporary directory removed at dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "guard-test-" + Guid.NewGuid().ToString("N")[..12]);

    public string File(string name, string content)
    {
        string path = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllText(path, content);
        return path;
    }

    /// <summary>A copy of /bin/sh named <paramref name="name"/>: a miner simulator whose every act is a shell command.</summary>
    public string ShellCopy(string name) => ExecutableCopy("/bin/sh", name);

    /// <summary>A copy of the program <paramref name="source"/> named <paramref name="name"/>: a stand-in that is this test's own file.</summary>
    public string ExecutableCopy(string source, string name)
    {
        string path = System.IO.Path.Combine(Path, name);
        System.IO.File.Copy(source, path);
        System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>
    /// A small C stand-in from Fixtures/standins/NAME.c compiled with clang (which
    /// the BPF build needs anyway) into this directory: a program, or with
    /// <paramref name="sharedLibrary"/> NAME.so. Fails the test when clang fails.
    /// </summary>
    public string Compile(string name, bool sharedLibrary = false)
    {
        string source = System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", "standins", name + ".c");
        string output = System.IO.Path.Combine(Path, sharedLibrary ? name + ".so" : name);
        Run.Complete("clang", sharedLibrary ? ["-shared", "-fPIC", "-O2", "-Wall", "-o", output, source] : ["-O2", "-Wall", "-o", output, source]);
        return output;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A name that is not UTF-8 (the hostile-name tests) is beyond .NET's paths; rm takes bytes.
            Run.Complete("rm", "-rf", Path);
        }
    }
}

/// <summary>
/// Processes a test caused but did not start itself (grandchildren, children
/// made with CLONE_PARENT, a storm's members), known by pid and start: each is
/// signalled only through a pidfd checked, once open, to be that very process.
/// Dispose kills those still running, even when the test failed.
/// </summary>
public sealed class OwnProcesses : IDisposable
{
    private readonly List<(int Pid, long StartTicks)> known = [];

    /// <summary>Keeps the process <paramref name="pid"/> is now; its start, or the test fails when it is gone.</summary>
    public long Add(int pid)
    {
        if (!Guard.Sensor.Processes.ProcfsReader.TryReadStat(pid, out Guard.Sensor.Processes.ProcfsStat stat))
            throw new XunitException($"process {pid} is gone before the test could keep it");
        known.Add((pid, stat.StartTicks));
        return stat.StartTicks;
    }

    /// <summary>The pids running <paramref name="executable"/> now, zombies left out.</summary>
    public static List<int> Running(string executable) =>
        [.. Guard.Sensor.Processes.ProcfsReader.Pids().Where(pid =>
        {
            try
            {
                return new FileInfo($"/proc/{pid}/exe").LinkTarget == executable;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false; // gone, or a zombie with no executable left
            }
        })];

    /// <summary>Sends <paramref name="signal"/> to the process <paramref name="pid"/> if it is still the one that started at <paramref name="startTicks"/>; true when it was reached.</summary>
    public static bool Signal(int pid, long startTicks, int signal)
    {
        using Guard.Sensor.Response.Pidfd? fd = Guard.Sensor.Response.Pidfd.TryOpen(pid, out _);
        return fd is not null && Guard.Sensor.Processes.ProcfsReader.TryReadStat(pid, out Guard.Sensor.Processes.ProcfsStat stat)
            && stat.StartTicks == startTicks && fd.Signal(signal) == 0;
    }

    /// <summary>SIGKILL to every kept process still running as itself.</summary>
    public void KillAll()
    {
        foreach ((int pid, long startTicks) in known)
            Signal(pid, startTicks, 9);
    }

    public void Dispose() => KillAll();
}
