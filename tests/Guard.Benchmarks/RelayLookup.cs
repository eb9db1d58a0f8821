using System.Diagnostics;
using Guard.Sensor.Response;

namespace Guard.Benchmarks;

/// <summary>
/// What following a network finding back through a relay costs: the quick
/// look made on the draining thread at the connection's maker (a miner with
/// one socket), and the full probe made off it, of a unix relay with one
/// client and of a TCP proxy with 50, each in a private network namespace
/// (so the probe enters it), medians of many calls.
/// </summary>
internal static class RelayLookup
{
    // Holds one loopback TCP connection and waits.
    private const string Miner = """
        import socket, sys, time
        l = socket.socket(); l.bind(('127.0.0.1', 3333)); l.listen()
        s = socket.create_connection(('127.0.0.1', 3333)); c, _ = l.accept(); l.close(); c.close()
        open(sys.argv[1], 'w').write('%d %d' % (__import__('os').getpid(), s.fileno()))
        time.sleep(60)
        """;

    // Accepts CLIENTS connections (unix at PATH, or TCP at 127.0.0.1:4000 when PATH is 'tcp') and holds them.
    private const string Relay = """
        import os, socket, sys, time
        path, clients, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        if path == 'tcp':
            l = socket.socket(); l.bind(('127.0.0.1', 4000)); l.listen(128)
            dial = lambda: socket.create_connection(('127.0.0.1', 4000))
        else:
            l = socket.socket(socket.AF_UNIX); l.bind(path); l.listen(128)
            def dial():
                s = socket.socket(socket.AF_UNIX); s.connect(path); return s
        held = []
        for _ in range(clients):
            if os.fork() == 0:
                s = dial(); time.sleep(60); os._exit(0)
            held.append(l.accept()[0])
        open(ready, 'w').write(str(os.getpid()))
        time.sleep(60)
        """;

    public static IEnumerable<string> Measure(string work, int calls)
    {
        yield return HolderScan(Math.Max(calls / 10, 10));
        yield return QuickLook(work, calls);
        yield return FullProbe(work, "unix", 1, calls);
        yield return FullProbe(work, "tcp", 50, Math.Max(calls / 10, 10));
    }

    private static string HolderScan(int calls)
    {
        var times = new List<double>();
        int links = Directory.GetDirectories("/proc").Sum(d => Directory.Exists(d + "/fd") ? SafeCount(d + "/fd") : 0);
        for (int i = 0; i < calls; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            _ = Guard.Sensor.Processes.SocketHolders.Find(new HashSet<ulong> { 1 }, Environment.ProcessId, Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency));
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        return $"relay sender lookup, the scan of every /proc/PID/fd ({links} descriptors): median {Median(times):F2} ms, p99 {Percentile(times, 99):F2} ms over {calls} scans";

        static int SafeCount(string dir)
        {
            try
            {
                return Directory.EnumerateFileSystemEntries(dir).Count();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return 0;
            }
        }
    }

    private static string QuickLook(string work, int calls)
    {
        string ready = Path.Combine(work, "miner-ready");
        using Process ns = Start(work, "miner.py", Miner, ready);
        try
        {
            Wait(ready);
            int pid = int.Parse(File.ReadAllText(ready).Split(' ')[0]);
            long ticks = Ticks(pid);
            var times = new List<double>();
            bool none = true;
            for (int i = 0; i < calls; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                none &= InboundConnections.AcceptedNone(pid, ticks, exceptCookie: 0);
                times.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
            }
            return $"relay quick look at a miner holding one loopback connection (on the draining thread): median {Median(times):F0} us, p99 {Percentile(times, 99):F0} us over {calls} calls; says it accepted none: {none}";
        }
        finally
        {
            ns.Kill(entireProcessTree: true);
        }
    }

    private static string FullProbe(string work, string kind, int clients, int calls)
    {
        string ready = Path.Combine(work, $"relay-{kind}-ready");
        string address = kind == "tcp" ? "tcp" : Path.Combine(work, "relay.sock");
        using Process ns = Start(work, $"relay-{kind}.py", Relay, $"{address} {clients} {ready}");
        try
        {
            Wait(ready);
            int pid = int.Parse(File.ReadAllText(ready));
            long ticks = Ticks(pid);
            var times = new List<double>();
            int found = 0;
            var thread = new Thread(() =>
            {
                using var inbound = new InboundConnections(_ => null, _ => null, _ => null, unixCaptured: false);
                for (int i = 0; i < calls; i++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    PeerProbe probe = inbound.Probe(pid, ticks, 0, 0, Stopwatch.GetTimestamp() + Stopwatch.Frequency);
                    times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    found = probe.Inbound.Count(p => p.Holders.Count == 1);
                }
            });
            thread.Start();
            thread.Join();
            return $"relay probe (off the draining thread) of a {kind} relay with {clients} client(s), in its own network namespace: median {Median(times):F2} ms, p99 {Percentile(times, 99):F2} ms over {calls} calls; "
                + $"{found} of {clients} senders named ({Environment.ProcessorCount} CPUs, {Directory.GetDirectories("/proc").Length} /proc entries)";
        }
        finally
        {
            ns.Kill(entireProcessTree: true);
        }
    }

    private static Process Start(string work, string name, string script, string args)
    {
        string path = Path.Combine(work, name);
        File.WriteAllText(path, script);
        return Process.Start("unshare", ["--net", "/bin/sh", "-c", $"ip link set lo up; exec python3 {path} {args}"]);
    }

    private static void Wait(string file)
    {
        var clock = Stopwatch.StartNew();
        while (!File.Exists(file) || File.ReadAllText(file).Length == 0)
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(20))
                throw new TimeoutException($"{file} never appeared");
            Thread.Sleep(20);
        }
    }

    private static long Ticks(int pid) =>
        Guard.Sensor.Processes.ProcfsReader.TryReadStat(pid, out Guard.Sensor.Processes.ProcfsStat stat) ? stat.StartTicks : throw new InvalidOperationException($"pid {pid} is gone");

    private static double Median(List<double> values) => Percentile(values, 50);

    private static double Percentile(List<double> values, int p)
    {
        double[] sorted = [.. values.Order()];
        return sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1))];
    }
}
