using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The outputs without a kernel: the queue, the rotating file under a write
/// storm and a reopen, several appenders at once, a stalled output beside
/// healthy ones, and the syslog framing.
/// </summary>
public sealed class OutputTests
{
    private static readonly RunInfo Run = new("node-7", "boot", "test", 0);

    /// <summary>Line NNNNNN of a storm: its number, padding that varies its length, and an end mark, so a split line shows.</summary>
    private static byte[] StormLine(int n) =>
        Encoding.ASCII.GetBytes($"{{\"n\":{n},\"pad\":\"{new string('x', 40 + (n * 37 % 200))}\",\"end\":true}}\n");

    /// <summary>Every line of the file, its renamed copies and its gzip backups.</summary>
    private static List<string> AllLines(string dir)
    {
        var lines = new List<string>();
        foreach (string file in Directory.GetFiles(dir))
        {
            if (file.EndsWith(".gz", StringComparison.Ordinal))
                lines.AddRange(RotatingFile.ReadBackup(file));
            else if (!file.EndsWith(".tmp", StringComparison.Ordinal))
                lines.AddRange(File.ReadAllLines(file));
        }
        return lines;
    }

    private static void AssertEachOnceAndWhole(List<string> lines, int count)
    {
        var seen = new int[count];
        foreach (string line in lines)
        {
            using JsonDocument doc = JsonDocument.Parse(line); // a split line does not parse
            Assert.True(doc.RootElement.GetProperty("end").GetBoolean());
            seen[doc.RootElement.GetProperty("n").GetInt32()]++;
        }
        int[] missing = [.. Enumerable.Range(0, count).Where(i => seen[i] == 0)];
        int[] twice = [.. Enumerable.Range(0, count).Where(i => seen[i] > 1)];
        Assert.True(missing.Length == 0 && twice.Length == 0, $"{missing.Length} lines missing (first {missing.FirstOrDefault()}), {twice.Length} twice (first {twice.FirstOrDefault()})");
    }

    private static void AssertOwnerOnly(string path) =>
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

    [Fact]
    public void ARotationEveryFewHundredLinesUnderAWriteStormWithAReopenInTheMiddleKeepsEveryLineOnceAndWhole()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "events.jsonl");
        const int Count = 40_000;
        // About 300 lines of ~190 bytes a file: some 130 rotations, every backup kept.
        var target = new FileTarget(new RotatingFile(path, new FileRotation(56 << 10, null, 1000)));
        var output = new QueuedOutput("file", target, 32 << 20);
        for (int n = 0; n < Count; n++)
        {
            Assert.True(output.Queue.TryAdd(StormLine(n)), $"line {n} dropped: the queue is sized to hold the storm");
            if (n % 500 == 0)
                output.Queue.Wake();
            if (n == Count / 2)
            {
                // logrotate's way, mid-storm: the file moved aside, then SIGHUP's reopen.
                File.Move(path, path + ".logrotate");
                output.RequestReopen();
            }
        }
        Assert.True(output.Complete(TimeSpan.FromSeconds(30)), "the writer did not finish");
        target.File.WaitForCompression();

        OutputHealth health = output.Health;
        Assert.Equal((Count, 0L, 0L), (health.Written, health.Dropped, health.Failed));
        string[] backups = [.. Directory.GetFiles(dir.Path, "*.gz")];
        Assert.True(backups.Length > 100, $"only {backups.Length} rotations");
        AssertEachOnceAndWhole(AllLines(dir.Path), Count);
        foreach (string file in Directory.GetFiles(dir.Path).Where(f => !f.EndsWith(".logrotate", StringComparison.Ordinal)))
        {
            AssertOwnerOnly(file);
            if (!file.EndsWith(".gz", StringComparison.Ordinal))
                Assert.True(new FileInfo(file).Length <= 56 << 10, $"{file} is past the size limit");
        }
        Assert.Equal(56 << 10, backups.Max(b => RotatingFile.ReadBackup(b).Sum(l => l.Length + 1)), 2000.0);
    }

    [Fact]
    public void SeveralAppendersWithTheirOwnDescriptorsNeverInterleaveAndRotateTogether()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "actions.jsonl");
        const int Writers = 4;
        const int Each = 1500;
        var rotation = new FileRotation(24 << 10, null, 1000);
        // Each append opens, writes and closes, as a one-shot `guard kill` does: separate open files, as separate processes have.
        Parallel.For(0, Writers, w =>
        {
            for (int i = 0; i < Each; i++)
            {
                using var file = new RotatingFile(path, rotation);
                Assert.Equal(0, file.Append(StormLine(w * Each + i)));
                file.WaitForCompression();
            }
        });
        AssertEachOnceAndWhole(AllLines(dir.Path), Writers * Each);
        Assert.True(Directory.GetFiles(dir.Path, "*.gz").Length > 20);
        AssertOwnerOnly(path);
    }

    [Fact]
    public void AFileRotatesByAgeAndKeepsOnlyItsBackups()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "events.jsonl");
        using var file = new RotatingFile(path, new FileRotation(0, TimeSpan.FromHours(1), 2));
        for (int round = 0; round < 4; round++)
        {
            Assert.Equal(0, file.Append(StormLine(round)));
            file.RotateIfOld(DateTime.UtcNow.AddMinutes(30)); // not yet
            Assert.True(File.Exists(path));
            file.RotateIfOld(DateTime.UtcNow.AddHours(2));
            file.WaitForCompression();
            Assert.False(File.Exists(path));
        }
        // Two backups kept: the newest two rounds.
        Assert.Equal("3", JsonDocument.Parse(RotatingFile.ReadBackup(file.Backup(1)).Single()).RootElement.GetProperty("n").ToString());
        Assert.Equal("2", JsonDocument.Parse(RotatingFile.ReadBackup(file.Backup(2)).Single()).RootElement.GetProperty("n").ToString());
        Assert.False(File.Exists(file.Backup(3)));
    }

    [Fact]
    public void AnExistingFileOfAnotherModeIsMadeOwnerOnlyAndAnInterruptedRotationIsFinished()
    {
        using var dir = new TempDir();
        string path = dir.File("events.jsonl", "");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        // A crash left PATH.1 moved aside but not compressed.
        File.WriteAllBytes(path + ".1", StormLine(7));
        using var file = new RotatingFile(path, new FileRotation(1 << 20, null, 3));
        Assert.Equal(0, file.Append(StormLine(8)));
        AssertOwnerOnly(path);
        Assert.False(File.Exists(path + ".1"));
        Assert.Equal("7", JsonDocument.Parse(RotatingFile.ReadBackup(file.Backup(1)).Single()).RootElement.GetProperty("n").ToString());
        AssertOwnerOnly(file.Backup(1));
    }

    [Fact]
    public void TheRingDropsWhatDoesNotFitCountsItAndHandsOutWholeLinesAcrossItsEnd()
    {
        using var ring = new LineRing(1 << 16);
        byte[] line = Encoding.ASCII.GetBytes(new string('a', 999) + "\n");
        int added = 0;
        while (ring.TryAdd(line))
            added++;
        Assert.Equal(65, added);
        Assert.Equal(1, ring.Dropped);
        Assert.False(ring.TryAdd(new byte[ring.MaxLine + 1]));
        Assert.Equal(2, ring.Dropped);
        // Take some, add more: the ring wraps, and what comes out is still whole lines in order.
        var into = new byte[2500];
        Assert.Equal(2000, ring.Take(into));
        Assert.True(ring.TryAdd(line));
        Assert.True(ring.TryAdd(Encoding.ASCII.GetBytes("last\n")));
        var all = new MemoryStream();
        int n;
        while ((n = ring.Take(into)) > 0)
        {
            Assert.Equal((byte)'\n', into[n - 1]);
            all.Write(into, 0, n);
        }
        string[] lines = Encoding.ASCII.GetString(all.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(65, lines.Length);
        Assert.Equal("last", lines[^1]);
    }

    [Fact]
    public void AStalledOutputDropsAndCountsItsOwnLinesWhileTheOthersTakeEveryLineAndTheWriterNeverWaits()
    {
        using var dir = new TempDir();
        // A syslog peer that accepts and never reads, with a small receive window.
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        peer.Listen();
        int port = ((IPEndPoint)peer.LocalEndPoint!).Port;
        var stdout = new MemoryStream();
        string path = Path.Combine(dir.Path, "events.jsonl");
        var set = new OutputSet(new EcsEncoder(Run, new ArgumentRedactor()), syslog: new SyslogHeader(Run, "daemon"));
        set.Add(new QueuedOutput(OutputNames.Stdout, new StreamTarget(stdout), 64 << 20), OutputFormat.Json);
        set.Add(new QueuedOutput(OutputNames.File, new FileTarget(new RotatingFile(path, FileRotation.None)), 64 << 20), OutputFormat.Json);
        set.Add(new QueuedOutput(OutputNames.Syslog, new SyslogTarget(new SyslogAddress(SyslogTransport.Tcp, "", "127.0.0.1", port)), 64 << 10), OutputFormat.Syslog);
        Task<Socket> accepting = peer.AcceptAsync(); // accepted, never read

        const int Count = 30_000;
        var e = new HeartbeatEvent { TimeNs = 1_000_000_000 };
        var clock = Stopwatch.StartNew();
        long slowest = 0;
        for (int i = 0; i < Count; i++)
        {
            long before = clock.ElapsedTicks;
            e.Sequence = i + 1;
            e.Events = i;
            set.Write(e);
            if (i % 100 == 0)
                set.Flush();
            slowest = Math.Max(slowest, clock.ElapsedTicks - before);
        }
        set.Flush();
        using Socket accepted = AcceptSoon(accepting);
        Assert.True(TimeSpan.FromTicks(slowest * TimeSpan.TicksPerSecond / Stopwatch.Frequency) < TimeSpan.FromMilliseconds(50),
            $"a write waited {slowest * 1000.0 / Stopwatch.Frequency:F1} ms: the producer must never wait on an output");

        set.Complete(TimeSpan.FromSeconds(5));
        OutputHealth[] health = [.. set.Health];
        Assert.Equal((Count, 0L), (health[0].Written, health[0].Lost));
        Assert.Equal((Count, 0L), (health[1].Written, health[1].Lost));
        Assert.True(health[2].Dropped > 0, $"the stalled syslog output dropped nothing: {health[2]}");
        Assert.True(health[2].Written + health[2].Lost == Count, $"syslog: every line written or counted lost: {health[2]}");
        Assert.Equal(Count, Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(Count, File.ReadAllLines(path).Length);
        string? said = set.ReportLosses(DateTime.UtcNow);
        Assert.NotNull(said);
        Assert.Contains("syslog lost", said, StringComparison.Ordinal);
        Assert.Null(set.ReportLosses(DateTime.UtcNow.AddSeconds(30))); // once a minute at most
        set.Dispose();
    }

    private static Socket AcceptSoon(Task<Socket> accepting) =>
        accepting.Wait(TimeSpan.FromSeconds(10)) ? accepting.Result : throw new Xunit.Sdk.XunitException("the syslog output never connected");

    [Fact]
    public void SyslogMessagesAreRfc5424WithTheEventsOwnTimeAndSeverityFramedByOctetCountingOverTcp()
    {
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        peer.Listen();
        int port = ((IPEndPoint)peer.LocalEndPoint!).Port;
        var run = new RunInfo("gpu node 7", "boot", "test", 1_700_000_000L * 1_000_000_000);
        var set = new OutputSet(new EcsEncoder(run, new ArgumentRedactor()), syslog: new SyslogHeader(run, "local3"));
        set.Add(new QueuedOutput(OutputNames.Syslog, new SyslogTarget(new SyslogAddress(SyslogTransport.Tcp, "", "127.0.0.1", port))), OutputFormat.Syslog);
        Task<Socket> accepting = peer.AcceptAsync();
        var heartbeat = new HeartbeatEvent { TimeNs = 1_500_000 };
        set.Write(heartbeat);
        set.Write(new ActionEvent { TimeNs = 2_000_000, Action = "kill", Succeeded = true, Message = "killed", OrderedBy = "cli" });
        set.Complete(TimeSpan.FromSeconds(5));
        using Socket accepted = AcceptSoon(accepting);
        accepted.ReceiveTimeout = 5000;
        var received = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = accepted.Receive(buffer)) > 0)
            received.Write(buffer, 0, n);

        string stream = Encoding.UTF8.GetString(received.ToArray());
        var messages = new List<string>();
        for (int at = 0; at < stream.Length;)
        {
            int space = stream.IndexOf(' ', at);
            int length = int.Parse(stream[at..space], CultureInfo.InvariantCulture);
            messages.Add(stream.Substring(space + 1, length));
            at = space + 1 + length;
        }
        Assert.Equal(2, messages.Count);
        // local3 (19) * 8 + informational (6) = 158; notice (5) = 157. The host name's space is not printable US-ASCII.
        Assert.StartsWith($"<158>1 2023-11-14T22:13:20.001500Z gpu_node_7 guard {Environment.ProcessId} heartbeat - {{", messages[0], StringComparison.Ordinal);
        Assert.StartsWith($"<157>1 2023-11-14T22:13:20.002000Z gpu_node_7 guard {Environment.ProcessId} action - {{", messages[1], StringComparison.Ordinal);
        using JsonDocument json = JsonDocument.Parse(messages[1][messages[1].IndexOf('{', StringComparison.Ordinal)..]);
        Assert.Equal("kill", json.RootElement.GetProperty("event").GetProperty("action").GetString());
        set.Dispose();
    }

    [Theory]
    [InlineData("unix:/dev/log", "unix:/dev/log")]
    [InlineData("udp:127.0.0.1:514", "udp:127.0.0.1:514")]
    [InlineData("tcp:[::1]:6514", "tcp:[::1]:6514")]
    [InlineData("tcp:logs.example:601", "tcp:logs.example:601")]
    public void SyslogAddressesAreReadInTheirThreeForms(string text, string back)
    {
        Assert.True(SyslogAddress.TryParse(text, out SyslogAddress address));
        Assert.Equal(back, address.ToString());
    }

    [Theory]
    [InlineData("dev/log")]
    [InlineData("unix:dev/log")]
    [InlineData("udp:127.0.0.1")]
    [InlineData("tcp:127.0.0.1:0")]
    [InlineData("tcp:127.0.0.1:70000")]
    [InlineData("http:127.0.0.1:514")]
    public void SyslogAddressesOutOfTheFormsAreRefused(string text) => Assert.False(SyslogAddress.TryParse(text, out _));
}
