using System.Diagnostics;
using System.Globalization;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>
/// A system user made for one test (useradd), removed with its group at
/// dispose (userdel); a member of <c>group</c> too when one is given.
/// </summary>
public sealed class TestUser : IDisposable
{
    public TestUser(string? group = null)
    {
        if (!File.Exists("/usr/sbin/useradd") || !File.Exists("/usr/bin/setpriv"))
            throw new XunitException("useradd and setpriv are needed (Debian's passwd and util-linux)");
        Name = $"guardt{Environment.ProcessId % 100000}{Random.Shared.Next(1000, 9999)}";
        Guard.Tests.Support.Run.Complete("/usr/sbin/useradd", ["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", .. group is null ? Array.Empty<string>() : ["--groups", group], Name]);
        Uid = uint.Parse(Guard.Tests.Support.Run.Complete("/usr/bin/id", "-u", Name).Trim(), CultureInfo.InvariantCulture);
    }

    public string Name { get; }

    public uint Uid { get; }

    /// <summary>Starts <paramref name="file"/> as this user, with no capabilities at all.</summary>
    public Process Start(string file, params string[] args) =>
        Guard.Tests.Support.Run.Start("/usr/bin/setpriv", ["--reuid", Name, "--regid", Name, "--init-groups", "--inh-caps=-all", "--bounding-set=-all", "--", file, .. args]);

    /// <summary>Runs <paramref name="file"/> as this user to its end, Guard's run directory and action log under <paramref name="runDir"/>.</summary>
    public (int Exit, string Stdout, string Stderr) RunAs(string runDir, string file, params string[] args)
    {
        var environment = new Dictionary<string, string>
        {
            ["GUARD_RUN_DIR"] = runDir,
            ["GUARD_ACTION_LOG"] = System.IO.Path.Combine(runDir, "actions.jsonl"),
            ["NO_COLOR"] = "1",
            ["GUARD_PIN_ROOT"] = System.IO.Path.Combine(runDir, "pins"),
            ["HOME"] = runDir,
        };
        using Process p = Guard.Tests.Support.Run.StartWith(environment, "/usr/bin/setpriv",
            ["--reuid", Name, "--regid", Name, "--init-groups", "--inh-caps=-all", "--bounding-set=-all", "--", file, .. args]);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            throw new XunitException($"{file} {string.Join(' ', args)} as {Name} did not finish in 30 s");
        }
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr);
    }

    public void Dispose()
    {
        using Process del = Guard.Tests.Support.Run.Start("/usr/sbin/userdel", Name);
        del.WaitForExit(30_000);
    }
}

/// <summary>A system group made for one test (groupadd), removed at dispose (groupdel).</summary>
public sealed class TestGroup : IDisposable
{
    public TestGroup()
    {
        if (!File.Exists("/usr/sbin/groupadd"))
            throw new XunitException("groupadd is needed (Debian's passwd)");
        Name = $"guardg{Environment.ProcessId % 100000}{Random.Shared.Next(1000, 9999)}";
        Guard.Tests.Support.Run.Complete("/usr/sbin/groupadd", "--system", Name);
        Gid = uint.Parse(Guard.Tests.Support.Run.Complete("/usr/bin/getent", "group", Name).Split(':')[2], CultureInfo.InvariantCulture);
    }

    public string Name { get; }

    public uint Gid { get; }

    public void Dispose()
    {
        using Process del = Guard.Tests.Support.Run.Start("/usr/sbin/groupdel", Name);
        del.WaitForExit(30_000);
    }
}
