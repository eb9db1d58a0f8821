using System.Diagnostics;
using System.Globalization;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A finding about a process that has exited by the time it is acted on acts
/// on what the process left: its live descendants by the kernel's recorded
/// lineage (<c>xmrig -B</c>: fork, the parent exits, the child keeps the
/// arguments; a shell that starts its worker with setsid and exits; a double
/// fork whose grandchild forks and re-execs under another name after its
/// ancestors are gone). The pid of the exited process, taken by another
/// process before the decision, never makes that process a target. The
/// sensor is paused while each tree does its work, so the decision comes after
/// it, as it would under load. Stand-ins run in a network namespace of their
/// own (`unshare --net`); every process they make is killed at the end
/// through a pidfd checked to be it.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class LeftBehindTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly OwnProcesses own = new();
    private readonly List<Process> started = [];

    private static SensorHarness Watch() => SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn });

    [Fact]
    public void AMinerThatForksAndExitsHasItsChildKilled()
    {
        string miner = dir.Compile("background");
        string kworker = Path.Combine(dir.Path, "kworker");
        File.Move(miner, kworker);
        using SensorHarness sensor = Watch();
        int parent, child;
        long childTicks;
        using (sensor.Pause())
        {
            Process p = Start("unshare", "--net", kworker, "--donate-level", "1", "-o", "stratum+tcp://127.0.0.1:3333", "-B");
            parent = p.Id;
            child = int.Parse(p.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
            childTicks = own.Add(child);
            Assert.True(p.WaitForExit(5000), "the -B parent did not exit");
        }

        RecordedEvent action = sensor.WaitFor("the kill-tree about the exited parent", e => e.Action == "kill-tree" && e.Pid == parent);
        Assert.Equal("success", Outcome(action));
        Assert.Contains($"{parent} had exited; killed its 1 live descendant by recorded lineage ({child})", Reason(action), StringComparison.Ordinal);
        Run.WaitFor(() => Gone(child, childTicks), "the -B child to be killed");
        RecordedEvent alert = sensor.WaitFor("the alert", e => e.Action == "miner-arguments" && e.Pid == parent);
        Assert.Contains("had exited", alert.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TheSetsidWorkerOfAShellThatExitedIsKilled()
    {
        string sleep = dir.ExecutableCopy("/bin/sleep", "worker");
        string pidfile = Path.Combine(dir.Path, "worker.pid");
        using SensorHarness sensor = Watch();
        int shell, worker;
        long workerTicks;
        using (sensor.Pause())
        {
            // The adversary's P5: the arguments are the shell's ($0 x, $1 --donate-level ...); its worker has none.
            Process p = Start("unshare", "--net", "bash", "-c", $"setsid sh -c 'echo $$ > {pidfile}; exec {sleep} 60' & exit 0", "x", "--donate-level", "1");
            shell = p.Id;
            Assert.True(p.WaitForExit(5000), "the shell did not exit");
            worker = ReadPid(pidfile);
            workerTicks = own.Add(worker);
        }

        RecordedEvent action = sensor.WaitFor("the kill-tree about the exited shell", e => e.Action == "kill-tree" && e.Pid == shell);
        Assert.Contains($"{shell} had exited; killed its 1 live descendant", Reason(action), StringComparison.Ordinal);
        Run.WaitFor(() => Gone(worker, workerTicks), "the setsid worker to be killed");
    }

    [Fact]
    public void ADoubleForkedGrandchildThatForksAndReExecsAfterItsAncestorsExitedIsKilled()
    {
        string renamed = dir.ExecutableCopy("/bin/sleep", "innocuous");
        string other = dir.ExecutableCopy("/bin/sleep", "helper");
        string g = Path.Combine(dir.Path, "g"), gg = Path.Combine(dir.Path, "gg"), go = Path.Combine(dir.Path, "go");
        // The grandchild waits (no fork) until both ancestors are gone, then forks and re-execs:
        // its fork splices the exited ancestors out of the lineage map, so only their heir finds it.
        string grandchild = $"echo $$ > {g}; while [ ! -e {go} ]; do :; done; {other} 60 & echo $! > {gg}; exec {renamed} 60";
        using SensorHarness sensor = Watch();
        int root, grand, greatGrand;
        long grandTicks, greatGrandTicks;
        using (sensor.Pause())
        {
            Process p = Start("unshare", "--net", "sh", "-c", $"( setsid sh -c '{grandchild}' & ); exit 0", "x", "--donate-level", "1");
            root = p.Id;
            Assert.True(p.WaitForExit(5000), "the root shell did not exit");
            grand = ReadPid(g);
            grandTicks = own.Add(grand);
            // The root waited for the subshell between them: both are gone now.
            File.WriteAllText(go, "");
            greatGrand = ReadPid(gg);
            greatGrandTicks = own.Add(greatGrand);
            Run.WaitFor(() => ProcfsReader.TryReadStat(grand, out ProcfsStat s) && s.Name.AsSpan().SequenceEqual("innocuous"u8), "the grandchild to re-exec");

            // The root is no longer in the lineage map: spliced out, its heir names the grandchild.
            using LineageKernel lineage = LineageKernel.OpenPinned()!;
            Assert.Contains(lineage.Heirs(), h => h.Gone.Tgid == root && h.Heir.Tgid == grand);
        }

        RecordedEvent action = sensor.WaitFor("the kill-tree about the exited root", e => e.Action == "kill-tree" && e.Pid == root);
        Assert.Contains($"{root} had exited; killed its 2 live descendants", Reason(action), StringComparison.Ordinal);
        Run.WaitFor(() => Gone(grand, grandTicks) && Gone(greatGrand, greatGrandTicks), "the grandchild and its child to be killed");
    }

    [Fact]
    public void TheExitedMinersPidTakenByAnotherProcessIsNeverTouched()
    {
        string miner = dir.Compile("background");
        string innocent = dir.ExecutableCopy("/bin/sleep", "innocent");
        string innocentChild = Path.Combine(dir.Path, "innocent-child");
        using SensorHarness sensor = Watch();
        int parent, child, taker, takersChild;
        long childTicks, takerTicks, takersChildTicks;
        using (sensor.Pause())
        {
            Process p = Start("unshare", "--net", miner, "--donate-level", "1", "-B");
            parent = p.Id;
            child = int.Parse(p.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
            childTicks = own.Add(child);
            Assert.True(p.WaitForExit(5000), "the -B parent did not exit");
            Thread.Sleep(30); // a later clock tick: a different start, as any real reuse has
            (taker, takerTicks) = TakePid(parent, $"{innocent} 60 & echo $! > {innocentChild}; exec {innocent} 60");
            takersChild = ReadPid(innocentChild);
            takersChildTicks = own.Add(takersChild);
        }

        RecordedEvent action = sensor.WaitFor("the kill-tree about the exited parent", e => e.Action == "kill-tree" && e.Pid == parent);
        Assert.Contains($"{parent} had exited; killed its 1 live descendant by recorded lineage ({child})", Reason(action), StringComparison.Ordinal);
        Run.WaitFor(() => Gone(child, childTicks), "the -B child to be killed");
        Thread.Sleep(200);
        Assert.False(Gone(taker, takerTicks), $"pid {parent}'s new holder was killed");
        Assert.False(Gone(takersChild, takersChildTicks), $"the child of pid {parent}'s new holder was killed");
    }

    /// <summary>
    /// Makes the next process take <paramref name="pid"/> (ns_last_pid, tried
    /// until no other process on the host takes it first) and run
    /// <paramref name="script"/> in sh; returns it, kept.
    /// </summary>
    private (int Pid, long StartTicks) TakePid(int pid, string script)
    {
        const string taker = """
            import os, sys
            target = int(sys.argv[1])
            for _ in range(500):
                with open('/proc/sys/kernel/ns_last_pid', 'w') as f:
                    f.write(str(target - 1))
                child = os.fork()
                if child == 0:
                    if os.getpid() == target:
                        os.execv('/bin/sh', ['sh', '-c', sys.argv[2]])
                    os._exit(0)
                if child == target:
                    print(child, flush=True)
                    break
                os.waitpid(child, 0)
            else:
                print('missed', flush=True)
            """;
        Process p = Start(Run.Python, "-c", taker, pid.ToString(CultureInfo.InvariantCulture), script);
        string? line = p.StandardOutput.ReadLine();
        if (line != pid.ToString(CultureInfo.InvariantCulture))
            throw new Xunit.Sdk.XunitException($"could not make a process take pid {pid}: {line} {p.StandardError.ReadToEnd()}");
        return (pid, own.Add(pid));
    }

    private Process Start(string file, params string[] args)
    {
        Process p = Run.Start(file, args);
        started.Add(p);
        return p;
    }

    private static string Outcome(RecordedEvent e) => e.Json.GetProperty("event").GetProperty("outcome").GetString()!;

    private static string Reason(RecordedEvent e) => e.Json.GetProperty("event").GetProperty("reason").GetString()!;

    /// <summary>Reads a pid a shell wrote with echo (a whole line, so never half a number).</summary>
    private static int ReadPid(string pidfile)
    {
        int pid = 0;
        Run.WaitFor(() => File.Exists(pidfile) && File.ReadAllText(pidfile) is { Length: > 1 } text && text[^1] == '\n'
            && int.TryParse(text.Trim(), CultureInfo.InvariantCulture, out pid), $"{Path.GetFileName(pidfile)} to be written");
        return pid;
    }

    /// <summary>The process is gone, a zombie, or its pid belongs to another now.</summary>
    private static bool Gone(int pid, long startTicks) =>
        !ProcfsReader.TryReadStat(pid, out ProcfsStat s) || s.StartTicks != startTicks || Run.State(pid) == 'Z';

    public void Dispose()
    {
        own.Dispose();
        foreach (Process p in started)
        {
            if (!p.HasExited)
                p.Kill();
            p.WaitForExit(5000);
            p.Dispose();
        }
        dir.Dispose();
    }
}
