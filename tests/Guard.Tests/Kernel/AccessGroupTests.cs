using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Cli;
using Guard.Cli.Commands;
using Guard.Sensor.Bpf;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Kernel;

/// <summary>
/// guard.toml's [access] group against a real `guard watch` and real users
/// made for the test (groupadd, useradd; removed after): a member runs `guard
/// status` (what the watch publishes), `guard gpu` and reads the event file and
/// the action log, and is still refused every acting command; a user outside
/// the group gets none of it.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class AccessGroupTests
{
    [Fact]
    public void AMemberReadsStatusEventsAndActionsButMayNotActAndAnOutsiderReadsNothing()
    {
        KernelRequirements.Check();
        using var group = new TestGroup();
        using var member = new TestUser(group.Name);
        using var outsider = new TestUser();
        using var dir = new TempDir();
        string run = Path.Combine(dir.Path, "run");
        string events = Path.Combine(dir.Path, "log", "events.jsonl");
        string config = dir.File("guard.toml", $"""
            types = ["exec"]

            [outputs.stdout]
            format = "none"

            [outputs.file]
            path = "{events}"

            [access]
            group = "{group.Name}"
            """);
        var environment = new Dictionary<string, string> { ["GUARD_RUN_DIR"] = run, ["GUARD_ACTION_LOG"] = "" };
        using Process watch = Run.StartWith(environment, Run.GuardExecutable, "watch", "--config", config, "--duration", "120s");
        var watchErrors = new System.Text.StringBuilder();
        watch.ErrorDataReceived += (_, e) =>
        {
            lock (watchErrors)
                watchErrors.AppendLine(e.Data);
        };
        watch.BeginErrorReadLine();
        using Process own = member.Start("/bin/sleep", "60");
        using Process victim = Run.Start("/bin/sleep", "60");
        try
        {
            string published = Path.Combine(run, StatusCommand.PublishedText);
            Run.WaitFor(() => File.Exists(published) || watch.HasExited, "the watch to publish its status", 30_000);
            Assert.False(watch.HasExited, $"guard watch ended: {Said(watchErrors)}");

            // Shared as the README says: directories root:GROUP 2750, files 0640 of the group.
            AssertShared(run, group.Gid, directory: true);
            AssertShared(Path.GetDirectoryName(events)!, group.Gid, directory: true);
            AssertShared(published, group.Gid, directory: false);

            string marker = "access-" + Guid.NewGuid().ToString("N")[..8];
            Run.Complete("/bin/echo", marker);
            Run.WaitFor(() => File.Exists(events) && File.ReadAllText(events).Contains(marker, StringComparison.Ordinal), "the exec in the event file", 10_000);
            AssertShared(events, group.Gid, directory: false);
            // An action by root, as an administrator's `guard kill` writes it: into the shared action log.
            using (Process kill = Run.StartWith(environment, Run.GuardExecutable, "kill", victim.Id.ToString(CultureInfo.InvariantCulture)))
            {
                kill.StandardOutput.ReadToEnd();
                Assert.True(kill.WaitForExit(30_000) && kill.ExitCode == 0, kill.StandardError.ReadToEnd());
            }
            string actions = Path.Combine(run, "actions.jsonl");
            AssertShared(actions, group.Gid, directory: false);

            // The member: status as published (the kill in it within one interval), events, actions, gpu.
            (int exit, string stdout, string stderr) = member.RunAs(run, Run.GuardExecutable, "status");
            Assert.True(exit == 0, stderr);
            Assert.StartsWith("status as of ", stdout, StringComparison.Ordinal);
            Assert.Contains($"published by guard watch pid {watch.Id}", stdout, StringComparison.Ordinal);
            Assert.Contains("sensors: 1 running", stdout, StringComparison.Ordinal);
            JsonElement status = default;
            Run.WaitFor(() =>
            {
                (int code, string json, _) = member.RunAs(run, Run.GuardExecutable, "status", "-o", "json");
                if (code != 0)
                    return false;
                status = JsonDocument.Parse(json).RootElement.Clone();
                return status.GetProperty("recent_actions").EnumerateArray().Any(a => a.GetProperty("action").GetString() == "kill");
            }, "the kill in the published status", (int)StatusCommand.PublishInterval.TotalMilliseconds * 3);
            Assert.Equal(watch.Id, status.GetProperty("published_by").GetInt32());
            Assert.Equal("sensor", status.GetProperty("enforcement").GetString());

            (exit, stdout, stderr) = member.RunAs(run, "/bin/cat", events);
            Assert.True(exit == 0 && stdout.Contains(marker, StringComparison.Ordinal), $"the member could not read the event file: {stderr}");
            (exit, stdout, stderr) = member.RunAs(run, "/bin/cat", actions);
            Assert.True(exit == 0 && stdout.Contains("\"kill\"", StringComparison.Ordinal), $"the member could not read the action log: {stderr}");
            (exit, stdout, stderr) = member.RunAs(run, Run.GuardExecutable, "gpu", "-o", "json");
            Assert.True(exit is 0 or (int)ExitCode.Failure, stderr);
            Assert.True(JsonDocument.Parse(stdout).RootElement.TryGetProperty("nvml", out _), stdout);

            // ... and still may not act, even on a process of its own.
            (exit, stdout, stderr) = member.RunAs(run, Run.GuardExecutable, "kill", own.Id.ToString(CultureInfo.InvariantCulture));
            Assert.Equal((int)ExitCode.NotPermitted, exit);
            Assert.Matches("^guard: guard kill: only root may act on this host", stderr);
            Assert.False(own.HasExited);

            // The outsider: nothing.
            (exit, stdout, stderr) = outsider.RunAs(run, Run.GuardExecutable, "status");
            Assert.Equal((int)ExitCode.NotPermitted, exit);
            Assert.Equal("", stdout);
            string[] said = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(said.Length == 1 && said[0].StartsWith("guard: guard status: root sees the status live", StringComparison.Ordinal), stderr);
            Assert.NotEqual(0, outsider.RunAs(run, "/bin/cat", events).Exit);
            Assert.NotEqual(0, outsider.RunAs(run, "/bin/cat", actions).Exit);

            // Stopped, the watch takes its published status back: nothing vouches for it any more.
            Assert.True(OwnProcesses.Signal(watch.Id, StartTicks(watch.Id), 15));
            Assert.True(watch.WaitForExit(15_000), "the watch did not stop on SIGTERM");
            Assert.False(File.Exists(published), "the status outlived the watch that published it");
            (exit, _, stderr) = member.RunAs(run, Run.GuardExecutable, "status");
            Assert.Equal((int)ExitCode.NotPermitted, exit);
            Assert.Contains("no guard watch publishes its status", stderr, StringComparison.Ordinal);
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            watch.WaitForExit();
            foreach (Process p in new[] { own, victim })
            {
                if (!p.HasExited)
                    p.Kill();
                p.WaitForExit();
            }
            EnforcementKernel.Remove();
            SensorPins.RemoveDead(static (_, _) => false);
        }
    }

    private static string Said(System.Text.StringBuilder errors)
    {
        lock (errors)
            return errors.ToString();
    }

    private static long StartTicks(int pid) =>
        ProcfsReader.TryReadStat(pid, out ProcfsStat stat) ? stat.StartTicks : throw new XunitException($"process {pid} is gone");

    private static void AssertShared(string path, uint gid, bool directory)
    {
        string[] stat = Run.Complete("/usr/bin/stat", "-c", "%a %u %g", path).Trim().Split(' ');
        Assert.Equal(directory ? "2750" : "640", stat[0]);
        Assert.Equal("0", stat[1]);
        Assert.Equal(gid.ToString(CultureInfo.InvariantCulture), stat[2]);
    }
}
