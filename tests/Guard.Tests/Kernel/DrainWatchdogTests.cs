using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Guard.Cli;
using Guard.Sensor.Bpf;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// A real `guard watch` under a stand-in for systemd's notify socket: the
/// thread that drains its ring is stopped alone (ptrace, the way a hung call
/// holds it; a stuck log shipper no longer can, since every output has its
/// own thread), and what systemd and `guard status` are told is read back.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class DrainWatchdogTests
{
    [Fact]
    public void AStalledDrainStopsTheWatchdogPingsAndShowsInStatusUntilTheRingIsDrainedAgain()
    {
        KernelRequirements.Check();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("guard-notify-");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(Path.Join(dir.FullName, "notify")));
        // systemd's deadline longer than --stall-limit: the shorter one counts.
        using Process watch = Run.StartWith(
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = Path.Join(dir.FullName, "notify"), ["WATCHDOG_USEC"] = "4000000" },
            Run.GuardExecutable, "watch", "--output", "json", "--type", "exec", "--stall-limit", "1s", "--duration", "120s");
        var stderr = new StringBuilder();
        watch.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
                stderr.AppendLine(e.Data);
        };
        watch.BeginErrorReadLine();
        try
        {
            Assert.Equal("READY=1", Receive(notify, 30_000, stderr));
            Assert.Equal("WATCHDOG=1", Receive(notify, 2_000, stderr));
            Assert.True(ProcfsReader.TryReadStat(watch.Id, out ProcfsStat stat));
            Assert.False(Registration(watch.Id).Stalled(DateTimeOffset.UtcNow));

            // The draining thread (the main one: its tid is the pid) stops; the watchdog's thread goes on.
            _ = watch.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
            using Process holder = Run.PythonScript(StopOneThread, watch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal("stopped", holder.StandardOutput.ReadLine());
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Registration(watch.Id).Stalled(DateTimeOffset.UtcNow))
            {
                Assert.True(DateTime.UtcNow < deadline, "the watch never counted as stalled although its draining thread was stopped");
                Thread.Sleep(100);
            }
            if (!SpinWait.SpinUntil(() => Said(stderr, "has not been drained"), 5_000))
                throw new Xunit.Sdk.XunitException($"the stall was not said on stderr within 5 s; the watch's threads: {ThreadStates(watch.Id)}");
            while (notify.Poll(0, SelectMode.SelectRead))
                notify.Receive(new byte[256]);
            Assert.False(notify.Poll(2_000_000, SelectMode.SelectRead), "systemd was told all is well while the drain was stalled");
            var console = new TestConsole();
            Assert.Equal(0, GuardCli.Run(["status"], console));
            Assert.Contains($"pid {watch.Id}: STALLED", console.Out.ToString(), StringComparison.Ordinal);

            // Let go: the drain goes on, and so do the pings.
            holder.StandardInput.WriteLine("go");
            holder.StandardInput.Flush();
            Assert.Equal("resumed", holder.StandardOutput.ReadLine());
            Assert.True(holder.WaitForExit(5_000));
            Assert.Equal("WATCHDOG=1", Receive(notify, 5_000, stderr));
            Assert.False(Registration(watch.Id).Stalled(DateTimeOffset.UtcNow));

            Assert.True(OwnProcesses.Signal(watch.Id, stat.StartTicks, 15));
            Assert.True(watch.WaitForExit(15_000), "the watch did not stop on SIGTERM");
            string last = "";
            while (notify.Poll(0, SelectMode.SelectRead))
                last = Receive(notify, 0, stderr);
            Assert.Equal("STOPPING=1", last);
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            EnforcementKernel.Remove(); // what the watch handed over on its way out
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ANotifySocketThatIsGoneOrGoesAwayCostsTheMessagesNotTheSensor()
    {
        KernelRequirements.Check();
        DirectoryInfo dir = Directory.CreateTempSubdirectory("guard-notify-");
        string path = Path.Join(dir.FullName, "notify");
        var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        using Process watch = Run.StartWith(
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path },
            Run.GuardExecutable, "watch", "--output", "json", "--type", "exec", "--stall-limit", "400ms", "--duration", "120s");
        _ = watch.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
        Task<string> stderr = watch.StandardError.ReadToEndAsync();
        try
        {
            Assert.Equal("READY=1", Receive(notify, 30_000, new StringBuilder()));
            // systemd restarts, a container's notify proxy exits: the socket is gone mid-run.
            notify.Dispose();
            File.Delete(path);
            Thread.Sleep(1_000);
            Assert.False(watch.HasExited, "the watch died when its notify socket went away");
            Assert.True(ProcfsReader.TryReadStat(watch.Id, out ProcfsStat stat));
            Assert.True(OwnProcesses.Signal(watch.Id, stat.StartTicks, 15));
            Assert.True(watch.WaitForExit(15_000), "the watch did not stop on SIGTERM");
            Assert.Equal(0, watch.ExitCode);
            Assert.DoesNotContain("Unhandled", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            if (!watch.HasExited)
                watch.Kill();
            notify.Dispose();
            EnforcementKernel.Remove();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Stops one thread (argv[1], a tid) with PTRACE_SEIZE and PTRACE_INTERRUPT,
    /// which stop that thread alone, says "stopped", waits for a line on stdin,
    /// then detaches ("resumed"); if the test dies first, the tracer's exit detaches.
    /// The thread is held only where it stopped waiting on the ring (epoll or
    /// poll, by /proc/PID/task/TID/syscall), the way a hung call holds it: a
    /// thread stopped while running managed code can never reach a GC safe
    /// point, so the first collection anywhere in the process would freeze
    /// every other thread too, the watchdog's included, and one stopped in
    /// another call may hold a lock the others need (no hang in the field looks
    /// like either). Stopped elsewhere, it is let go and stopped again.
    /// </summary>
    internal const string StopOneThread = """
        import ctypes, os, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        tid = int(sys.argv[1])
        pid = tid  # the main thread: its tid is the pid
        # poll, epoll_wait, epoll_pwait, epoll_pwait2 (x86_64); ppoll, epoll_pwait, epoll_pwait2 (aarch64)
        waits = {"x86_64": {7, 232, 281, 441}, "aarch64": {73, 22, 441}}[os.uname().machine]
        for attempt in range(2000):
            for request in (0x4206, 0x4207):  # PTRACE_SEIZE, PTRACE_INTERRUPT
                if libc.ptrace(request, tid, None, None) != 0:
                    print("ptrace", request, "failed: errno", ctypes.get_errno(), flush=True)
                    sys.exit(1)
            os.waitpid(tid, 0x40000000)  # __WALL: the thread's stop
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                first = f.read().split()[0]  # a number, or "running"
            in_call = first.lstrip("-").isdigit() and int(first) in waits
            if in_call:
                break
            libc.ptrace(17, tid, None, None)  # PTRACE_DETACH
            time.sleep(0.005)
        else:
            print("never stopped waiting on the ring", flush=True)
            sys.exit(1)
        print("stopped", flush=True)
        sys.stdin.readline()
        libc.ptrace(17, tid, None, None)  # PTRACE_DETACH
        print("resumed", flush=True)
        """;

    /// <summary>Each thread of <paramref name="pid"/>: name, state and the system call it is in, for a failure's message.</summary>
    internal static string ThreadStates(int pid)
    {
        var states = new StringBuilder();
        foreach (string task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Join(task, "stat"));
                string syscall = File.ReadAllText(Path.Join(task, "syscall")).Split(' ')[0].Trim();
                states.Append(CultureInfo.InvariantCulture, $"\n  {Path.GetFileName(task)} {stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')]} {stat[stat.LastIndexOf(')') + 2]} syscall {syscall} wchan {File.ReadAllText(Path.Join(task, "wchan"))}");
            }
            catch (IOException)
            {
                // The thread ended meanwhile.
            }
        }
        return states.ToString();
    }

    private static RegisteredSensor Registration(int pid) =>
        RunningSensors.List().SingleOrDefault(s => s.Pid == pid) ?? throw new Xunit.Sdk.XunitException($"guard watch {pid} is not registered");

    private static bool Said(StringBuilder stderr, string what)
    {
        lock (stderr)
            return stderr.ToString().Contains(what, StringComparison.Ordinal);
    }

    /// <summary>The next datagram on the notify socket, as text; fails after <paramref name="timeoutMs"/>.</summary>
    private static string Receive(Socket notify, int timeoutMs, StringBuilder stderr)
    {
        if (!notify.Poll(timeoutMs * 1000, SelectMode.SelectRead))
        {
            lock (stderr)
                throw new Xunit.Sdk.XunitException($"nothing on the notify socket within {timeoutMs} ms; guard said: {stderr}");
        }
        var buffer = new byte[256];
        int n = notify.Receive(buffer);
        return Encoding.ASCII.GetString(buffer, 0, n).Trim();
    }
}
