using System.Diagnostics;
using System.Globalization;
using Guard.Cli;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Kernel;

/// <summary>
/// Acting commands refuse a caller who is not root: a user made for the test
/// (useradd, removed after) runs each through setpriv with no capabilities,
/// on a process of its own (one the kernel would let it signal), and is
/// refused in one line with exit code 77, nothing signalled or held.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class WhoMayActTests
{
    [Theory]
    [InlineData("kill {pid}")]
    [InlineData("kill --tree {pid}")]
    [InlineData("kill --job {pid} -o json")]
    [InlineData("quarantine {pid}")]
    [InlineData("release {pid}")]
    [InlineData("release --all")]
    [InlineData("detach --all")]
    [InlineData("policy reload")]
    public void AnUnprivilegedUserIsRefusedEachActingCommandAndNothingIsSignalled(string commandLine)
    {
        string[] command = commandLine.Split(' ');
        using var user = new TestUser();
        using var run = new TempDir();
        using Process own = user.Start("/bin/sleep", "60");
        try
        {
            string[] args = [.. command.Select(a => a.Replace("{pid}", own.Id.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))];
            (int exit, string stdout, string stderr) = user.RunAs(run.Path, Run.GuardExecutable, args);

            string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(lines.Length == 1, $"guard {string.Join(' ', args)} said {lines.Length} lines: {stderr}");
            string name = string.Join(' ', command.TakeWhile(w => !w.StartsWith('-') && !w.Contains('{', StringComparison.Ordinal)));
            Assert.Matches($"^guard: guard {name}: only root may act on this host \\(uid {user.Uid} lacks CAP_[A-Z_]+(, CAP_[A-Z_]+)*\\); run it with sudo$", lines[0]);
            Assert.Equal((int)ExitCode.NotPermitted, exit);
            Assert.Equal("", stdout);
            // Nothing done: the user's own process runs on, neither killed nor stopped, and nothing was logged.
            Assert.False(own.WaitForExit(200), $"guard {string.Join(' ', args)} killed the process it refused to act on");
            Assert.Equal('S', Guard.Tests.Support.Run.State(own.Id));
            Assert.False(File.Exists(Path.Combine(run.Path, "actions.jsonl")), "a refused action was written to the action log");
        }
        finally
        {
            own.Kill();
            own.WaitForExit();
        }
    }

    [Fact]
    public void RootMayAct()
    {
        Assert.Equal(0u, Guard.Sensor.Interop.Libc.GetEuid());
        Assert.Null(Guard.Sensor.Bpf.Privileges.RefusalToAct("guard kill", Guard.Sensor.Bpf.Privileges.ToKill));
        Assert.Null(Guard.Sensor.Bpf.Privileges.RefusalToAct("guard release", Guard.Sensor.Bpf.Privileges.ToHold));
    }

    /// <summary>A system user made for one test (useradd), removed with its group at dispose (userdel).</summary>
    private sealed class TestUser : IDisposable
    {
        public TestUser()
        {
            if (!File.Exists("/usr/sbin/useradd") || !File.Exists("/usr/bin/setpriv"))
                throw new XunitException("useradd and setpriv are needed (Debian's passwd and util-linux)");
            Name = $"guardt{Environment.ProcessId % 100000}{Random.Shared.Next(1000, 9999)}";
            Guard.Tests.Support.Run.Complete("/usr/sbin/useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", Name);
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
}
