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
    [InlineData("approvals")]
    [InlineData("approve {pid} --for 1h")]
    [InlineData("deny {pid}")]
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
}
