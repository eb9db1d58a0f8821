using System.Diagnostics;
using System.Globalization;

namespace Guard.Benchmarks;

/// <summary>The compiled C storms: each run prints nanoseconds per operation.</summary>
internal sealed class Storms
{
    private readonly string binary;

    private Storms(string binary) => this.binary = binary;

    public static Storms Build(string workDir)
    {
        string binary = Path.Combine(workDir, "storms");
        Shell.Run("cc", "-O2", "-o", binary, Path.Combine(AppContext.BaseDirectory, "storms.c"));
        return new Storms(binary);
    }

    /// <summary>
    /// Runs one storm; <paramref name="started"/> learns its pid before it begins. With
    /// <paramref name="cgroup"/> (a cgroup v2 directory) the storm runs in that cgroup
    /// from before its exec (a shell moves itself there, then execs it).
    /// </summary>
    public double Run(string mode, long count, Action<int>? started = null, string? cgroup = null)
    {
        // The ping-pong runs on one CPU, so every message is a context switch rather than a cross-CPU wakeup.
        bool pinned = mode == "pingpong";
        var info = new ProcessStartInfo(cgroup is not null ? "/bin/sh" : pinned ? "taskset" : binary) { RedirectStandardOutput = true, UseShellExecute = false };
        if (cgroup is not null)
        {
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"");
            info.ArgumentList.Add("storm");
            info.ArgumentList.Add(cgroup);
            info.ArgumentList.Add(binary);
        }
        else if (pinned)
        {
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("0");
            info.ArgumentList.Add(binary);
        }
        info.ArgumentList.Add(mode);
        info.ArgumentList.Add(count.ToString(CultureInfo.InvariantCulture));
        using Process p = Process.Start(info)!;
        started?.Invoke(p.Id);
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"storm {mode} failed with {p.ExitCode}");
        return double.Parse(output, CultureInfo.InvariantCulture);
    }
}

internal static class Shell
{
    public static string Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
            info.ArgumentList.Add(a);
        using Process p = Process.Start(info)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} failed: {error}");
        return output;
    }
}
