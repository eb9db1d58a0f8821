using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;

namespace Guard.Benchmarks;

/// <summary>
/// What reading an executable for its hash and a miner's markers costs: a
/// 100 MB program (/bin/sleep with 100 MB of random bytes after it, a
/// marker at the very end), running, read the way the sensor's workers read
/// it (its /proc/PID/exe, checked, then SHA-256 and the marker search in one
/// pass), by a fresh <see cref="ExecutableHashes"/> each time so nothing is
/// cached; the file is in the page cache, as a just-written memfd is.
/// </summary>
internal static class ContentScan
{
    public static IEnumerable<string> Measure(string work, int runs)
    {
        string program = Path.Combine(work, "big-program");
        using (FileStream f = File.Create(program))
        {
            f.Write(File.ReadAllBytes("/bin/sleep"));
            var random = new Random(5);
            byte[] block = new byte[1 << 20];
            for (int i = 0; i < 100; i++)
            {
                random.NextBytes(block);
                f.Write(block);
            }
            f.Write("\0mining.subscribe\0RandomX\u0003\0"u8);
        }
        File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using Process running = Process.Start(program, "30")!;
        Thread.Sleep(200);
        var table = new ProcessTable(new EntityIds("bench"), null, new UserNames());
        ProcessEntry entry = table.Load(running.Id) ?? throw new InvalidOperationException("the big program is not in /proc");
        var times = new List<double>();
        HashOutcome outcome = default;
        for (int r = 0; r < runs; r++)
        {
            using var hashes = new ExecutableHashes();
            using HashRequest request = HashRequest.For(entry, null, null);
            long start = Stopwatch.GetTimestamp();
            outcome = hashes.Hash(request);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        running.Kill();
        running.WaitForExit();
        times.Sort();
        long size = new FileInfo(program).Length;
        yield return string.Create(CultureInfo.InvariantCulture,
            $"hash + marker search of a {size / 1e6:F0} MB executable, read through /proc/PID/exe: median {times[times.Count / 2]:F0} ms, {times[0]:F0}-{times[^1]:F0} ms over {runs} (bar 1 s); "
            + $"found {(outcome.Content is { } c ? ContentFindings.Kinds(c.Kinds) : outcome.Why.ToString())}");
    }
}
