using System.Diagnostics;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>Starts real processes for tests and always cleans them up.</summary>
public static class Run
{
    public static Process Start(string file, params string[] args)
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
        return Process.Start(info) ?? throw new XunitException($"could not start {file}");
    }

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
    public string ShellCopy(string name) => ProgramCopy("/bin/sh", name);

    /// <summary>An executable copy of <paramref name="program"/> named <paramref name="name"/> (a stand-in under a miner's name).</summary>
    public string ProgramCopy(string program, string name)
    {
        string path = System.IO.Path.Combine(Path, name);
        System.IO.File.Copy(program, path);
        System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
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
