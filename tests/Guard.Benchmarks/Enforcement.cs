using System.Diagnostics;
using Guard.Sensor;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Output;

namespace Guard.Benchmarks;

/// <summary>
/// The enforcement figures, 100 runs each: known miners killed before their
/// first instruction, Stratum never reaching the pool whole and the owner's
/// death after the send, user-space decisions landing after their event.
/// Times come from the kernel's own records (CLOCK_BOOTTIME), not wall clocks.
/// </summary>
internal static class Enforcement
{
    private const string Pool = """
        import socket, sys, threading, time
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('127.0.0.1', 3333)); l.listen(256)
        open(sys.argv[1] + '.ready', 'w').close()
        got = []
        def serve(c):
            c.settimeout(0.3)
            data = b''
            try:
                while True:
                    b = c.recv(4096)
                    if not b: break
                    data += b
            except Exception:
                pass
            got.append(data)
        threads = []
        for _ in range(int(sys.argv[2])):
            c, _ = l.accept()
            t = threading.Thread(target=serve, args=(c,)); t.start(); threads.append(t)
        for t in threads: t.join()
        open(sys.argv[1], 'w').write('%d %d' % (sum(len(d) for d in got), sum(1 for d in got if b'\n' in d)))
        """;

    private const string Miner = """
        import socket, sys, time
        s = socket.create_connection(('127.0.0.1', 3333))
        s.sendall(b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"x","pass":"x","agent":"XMRig/6.21.0"}}\n')
        time.sleep(2)
        """;

    public static IEnumerable<string> Measure(string work, int runs)
    {
        var sink = new TimingSink();
        using var sensor = GuardSensor.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn }, sink);
        using var poll = new CancellationTokenSource();
        var poller = new Thread(() =>
        {
            while (!poll.IsCancellationRequested)
                sensor.Poll(5);
        })
        { IsBackground = true };
        poller.Start();
        try
        {
            yield return KnownMiners(work, runs);
            yield return Stratum(work, runs, sink);
            yield return Arguments(work, runs, sink);
        }
        finally
        {
            poll.Cancel();
            poller.Join();
            Guard.Sensor.Bpf.LineageKernel.Remove(); // left pinned by the sensor: later sections measure a bare host
        }
    }

    private static string Simulator(string work, string name)
    {
        string path = Path.Combine(work, name);
        File.Copy("/bin/sh", path, overwrite: true);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static string KnownMiners(string work, int runs)
    {
        string xmrig = Simulator(work, "xmrig");
        int ran = 0;
        for (int i = 0; i < runs; i++)
        {
            string marker = Path.Combine(work, $"marker-{i}");
            using Process p = Process.Start(xmrig, ["-c", $"echo > {marker}"]);
            p.WaitForExit();
            if (File.Exists(marker))
                ran++;
        }
        return $"known miner (a /bin/sh copy named xmrig whose first act writes a marker): killed before its first instruction in {runs - ran} of {runs} runs (bar 100 of 100)";
    }

    private static string Stratum(string work, int runs, TimingSink sink)
    {
        string pool = Path.Combine(work, "pool.py");
        string miner = Path.Combine(work, "miner.py");
        string result = Path.Combine(work, "pool-result");
        File.WriteAllText(pool, Pool);
        File.WriteAllText(miner, Miner);
        sink.Reset();
        string script = $"ip link set lo up; python3 {pool} {result} {runs} & while [ ! -e {result}.ready ]; do sleep 0.01; done; "
            + $"for i in $(seq {runs}); do python3 {miner}; echo $? >> {result}.codes; done; wait";
        using Process ns = Process.Start("unshare", ["--net", "/bin/sh", "-c", script]);
        ns.WaitForExit();
        string[] counts = File.ReadAllText(result).Split(' ');
        int killed = File.ReadAllLines(result + ".codes").Count(c => c == "137");
        double[] latencies = sink.AlertToExitMs("stratum");
        return $"Stratum login (whole, one send): {counts[0]} bytes and {counts[1]} complete messages reached the pool over {runs} runs; miner killed in {killed}/{runs}; "
            + $"owner dead after the send (kernel times): p50 {Percentile(latencies, 50):F2} ms, p99 {Percentile(latencies, 99):F2} ms (bar 10 ms)";
    }

    private static string Arguments(string work, int runs, TimingSink sink)
    {
        string loader = Simulator(work, "data-loader");
        sink.Reset();
        for (int i = 0; i < runs; i++)
        {
            using Process p = Process.Start(loader, ["-c", "sleep 2", "x", "-o", "stratum+tcp://127.0.0.1:3333"]);
            p.WaitForExit();
        }
        Thread.Sleep(200);
        double[] latencies = sink.AlertToExitMs("miner-arguments");
        return $"miner arguments (decided in user space at exec), {latencies.Length} of {runs} killed: the kill lands p50 {Percentile(latencies, 50):F2} ms, p99 {Percentile(latencies, 99):F2} ms after the exec (bar 10 ms)";
    }

    private static double Percentile(double[] values, int p)
    {
        if (values.Length == 0)
            return double.NaN;
        double[] sorted = [.. values.Order()];
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1)];
    }

    /// <summary>Keeps, per rule, when each alert's event happened, and when its process exited.</summary>
    private sealed class TimingSink : IEventSink
    {
        private readonly object gate = new();
        private readonly List<(string Rule, int Pid, long TimeNs)> alerts = [];
        private readonly Dictionary<int, long> exits = [];

        public void Reset()
        {
            lock (gate)
            {
                alerts.Clear();
                exits.Clear();
            }
        }

        public double[] AlertToExitMs(string rule)
        {
            lock (gate)
            {
                return [.. alerts.Where(a => a.Rule == rule && exits.ContainsKey(a.Pid)).Select(a => (exits[a.Pid] - a.TimeNs) / 1e6)];
            }
        }

        public void Write(SensorEvent e)
        {
            lock (gate)
            {
                if (e is AlertEvent { Process: { } p } alert)
                    alerts.Add((alert.Rule, p.Pid, alert.TimeNs));
                else if (e is ProcessEvent { Type: EventType.Exit, Process: { } x })
                    exits[x.Pid] = e.TimeNs;
            }
        }

        public void Flush() { }

        public void Dispose() { }
    }
}
