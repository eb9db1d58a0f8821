using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>Why an executable was not hashed. Each is evidence in itself where a hash was asked for.</summary>
public enum NotHashed
{
    /// <summary>It was hashed.</summary>
    None,

    /// <summary>The process is gone and its path names another file now (or nothing).</summary>
    Gone,

    /// <summary>Over the size bound (<see cref="ExecutableHashes.MaxBytes"/>).</summary>
    TooLarge,

    /// <summary>The file would not open or read for this root process.</summary>
    Unreadable,

    /// <summary>On a FUSE file system (whose daemon any user may be), or one the sensor cannot place: never asked anything.</summary>
    UserFileSystem,

    /// <summary>Its read took longer than the time limit.</summary>
    TimedOut,

    /// <summary>The hash queue was full.</summary>
    QueueFull,
}

/// <summary>One executable to hash: a process's image, opened as early as the event thread could.</summary>
public sealed class HashRequest : IDisposable
{
    private HashRequest(int pid, FileId? expected, string? path, long executedAtNs, FileDescriptor? running, object? state)
    {
        Pid = pid;
        Expected = expected;
        Path = path;
        ExecutedAtNs = executedAtNs;
        Running = running;
        State = state;
    }

    /// <summary>The process whose image this is.</summary>
    public int Pid { get; }

    /// <summary>The file exec opened, from the exec record: nothing else is hashed. Null for a process found in /proc.</summary>
    public FileId? Expected { get; }

    /// <summary>The path exec was given, absolute: read only when it still names <see cref="Expected"/>, unchanged since the exec.</summary>
    public string? Path { get; }

    /// <summary>When the exec ran, CLOCK_REALTIME ns (comparable with a file's change time); 0: unknown, and the path is not read.</summary>
    public long ExecutedAtNs { get; }

    /// <summary>The caller's: what waits for this hash. Never touched off the event thread.</summary>
    public object? State { get; }

    /// <summary>/proc/PID/exe, opened O_PATH when the request was made: what the kernel executed.</summary>
    internal FileDescriptor? Running { get; }

    internal long StartedAt { get; set; }

    /// <summary>
    /// On the event thread, as soon as the exec is known: /proc/PID/exe opened
    /// O_PATH (no read, no open of the file itself; procfs only, so it cannot
    /// block), then handed to a worker. A process found in /proc at start has no
    /// exec record: its start time is checked after the open, so a reused pid's
    /// image is never taken for its own.
    /// </summary>
    /// <param name="process">Whose executable.</param>
    /// <param name="execBootNs">When it exec'd (CLOCK_BOOTTIME ns, as records say), for reading its path once it is gone; null: not then.</param>
    /// <param name="state">The caller's, back with the outcome.</param>
    public static HashRequest For(ProcessEntry process, long? execBootNs, object? state)
    {
        string pid = process.Pid.ToString(CultureInfo.InvariantCulture);
        FileDescriptor? running = FileDescriptor.OpenPathOnly($"/proc/{pid}/exe", out _);
        if (running is not null && process.ExecutableFile is null
            && !(ProcfsReader.TryReadStat(process.Pid, out ProcfsStat stat) && stat.StartTicks == process.StartTicks))
        {
            running.Dispose();
            running = null;
        }
        long executedAtNs = execBootNs is { } boot ? boot + Libc.NowNs(Libc.ClockRealtime) - Libc.NowNs(Libc.ClockBoottime) : 0;
        return new HashRequest(process.Pid, process.ExecutableFile, ExecutableHashes.PathOf(process), executedAtNs, running, state);
    }

    /// <summary>The same file through another process running it (the first is gone): its /proc/PID/exe, checked against the same identity.</summary>
    public HashRequest Through(ProcessEntry other) =>
        new(other.Pid, Expected, Path, ExecutedAtNs, FileDescriptor.OpenPathOnly($"/proc/{other.Pid.ToString(CultureInfo.InvariantCulture)}/exe", out _), State);

    public void Dispose() => Running?.Dispose();
}

/// <summary>
/// What came of a <see cref="HashRequest"/>: the hex SHA-256, or why there is
/// none, and what the same read found of a miner's markers (null when the file
/// was not read).
/// </summary>
public readonly record struct HashOutcome(HashRequest Request, string? Sha256, NotHashed Why, ContentVerdict? Content = null)
{
    /// <summary>Why, in words, for evidence and the process record.</summary>
    public string WhyText => Why switch
    {
        NotHashed.Gone => "gone, and its path names another file now",
        NotHashed.TooLarge => $"over {ExecutableHashes.MaxBytes >> 20} MB",
        NotHashed.Unreadable => "unreadable",
        NotHashed.UserFileSystem => "on a FUSE file system, which the sensor never reads",
        NotHashed.TimedOut => "its read took over the time limit",
        NotHashed.QueueFull => "the hash queue was full",
        _ => "",
    };
}

/// <summary>
/// SHA-256 of executables, and the markers of a miner in their bytes
/// (<see cref="MinerContent"/>, in the same read), off the event thread. The file read is the one the
/// kernel executed: /proc/PID/exe opened when the exec record arrived, or,
/// once the process is gone, its path when that still names the same device
/// and inode; a regular file only, at most <see cref="MaxBytes"/>, within the
/// time limit, never one on FUSE (<see cref="ExecutedFile"/>). A path is never
/// opened by name for reading: a device, a FIFO, a file of another mount
/// namespace or one renamed since cannot be read in its place. Requests wait in a bounded queue for a few worker threads; a full
/// queue, a read over the time limit (its worker is left behind, blocked, and
/// replaced; at most 8 are left behind at once) or a refusal comes back as an outcome
/// like a hash does, through <see cref="Drain"/> on the event thread, which
/// <see cref="WakeFd"/> wakes. Hashes are kept per device, inode, size,
/// modification and change time.
/// </summary>
public sealed class ExecutableHashes : IDisposable
{
    /// <summary>The largest file hashed: 256 MB, well above any miner binary and most programs.</summary>
    public const long MaxBytes = 256L << 20;

    /// <summary>The default time limit of one hash: 256 MB takes ~1.1 s at the managed SHA-256's ~230 MB/s (measured), with room.</summary>
    public static readonly TimeSpan DefaultTimeLimit = TimeSpan.FromSeconds(5);

    private const int WorkerCount = 2;
    private const int MaxLeftBehind = 8;
    private const int CacheCapacity = 4096;

    private readonly object gate = new();
    private readonly Queue<HashRequest> queue = new();
    private readonly List<HashOutcome> finished = [];
    private readonly List<Worker> workers = [];
    private readonly Dictionary<(FileId File, long Size, long ModifiedNs, long ChangedNs), (string Sha256, ContentVerdict Content)> cache = [];
    private readonly EventFd wakeup = new();
    private readonly int capacity;
    private readonly long timeLimitTicks;
    private readonly Func<HashRequest, HashOutcome> work;
    private int leftBehind;
    private bool disposed;

    /// <param name="capacity">Requests that may wait; one more is dropped (<see cref="NotHashed.QueueFull"/>).</param>
    /// <param name="timeLimit">How long one hash may take, open and read; default <see cref="DefaultTimeLimit"/>.</param>
    public ExecutableHashes(int capacity = 1024, TimeSpan? timeLimit = null) : this(capacity, timeLimit, null)
    {
    }

    /// <param name="work">What a worker does with a request, for tests that need one to hang; default <see cref="Hash"/>.</param>
    internal ExecutableHashes(int capacity, TimeSpan? timeLimit, Func<HashRequest, HashOutcome>? work)
    {
        this.capacity = capacity;
        timeLimitTicks = (long)((timeLimit ?? DefaultTimeLimit).TotalSeconds * Stopwatch.Frequency);
        this.work = work ?? Hash;
    }

    /// <summary>Readable while outcomes wait: the event thread waits on it with the ring buffer.</summary>
    public int WakeFd => wakeup.Fd;

    /// <summary>Requests dropped because the queue was full.</summary>
    public long Dropped { get; private set; }

    /// <summary>Requests whose read took over the time limit.</summary>
    public long TimedOut { get; private set; }

    /// <summary>Queues a request; it always comes back through <see cref="Drain"/>, at once when the queue is full.</summary>
    public void Submit(HashRequest request)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (queue.Count >= capacity || (workers.Count == 0 && leftBehind >= MaxLeftBehind))
            {
                Dropped++;
                request.Dispose();
                Finish(new HashOutcome(request, null, NotHashed.QueueFull));
                return;
            }
            queue.Enqueue(request);
            while (workers.Count < WorkerCount && leftBehind < MaxLeftBehind)
                StartWorker();
            Monitor.Pulse(gate);
        }
    }

    /// <summary>
    /// On the event thread, between polls: every outcome since the last call,
    /// and a <see cref="NotHashed.TimedOut"/> for each request over its time
    /// limit, whose worker is replaced.
    /// </summary>
    public void Drain(List<HashOutcome> into)
    {
        wakeup.Reset();
        long now = Stopwatch.GetTimestamp();
        lock (gate)
        {
            for (int i = workers.Count - 1; i >= 0; i--)
            {
                Worker w = workers[i];
                if (w.Current is not { } request || now - request.StartedAt <= timeLimitTicks)
                    continue;
                // Blocked in a read no one can interrupt (a FUSE daemon that never answers): left behind.
                w.LeftBehind = true;
                workers.RemoveAt(i);
                leftBehind++;
                TimedOut++;
                finished.Add(new HashOutcome(request, null, NotHashed.TimedOut));
                if (queue.Count > 0 && leftBehind < MaxLeftBehind)
                    StartWorker();
            }
            into.AddRange(finished);
            finished.Clear();
        }
    }

    /// <summary>Hashes one request on the calling thread: the workers' job, and the tests'.</summary>
    public HashOutcome Hash(HashRequest request)
    {
        long deadline = Stopwatch.GetTimestamp() + timeLimitTicks;
        (FileDescriptor file, FileStatus status)? found = Open(request, out NotHashed why);
        if (found is not { } f)
            return new HashOutcome(request, null, why);
        using FileDescriptor opened = f.file;
        if (f.status.Size > MaxBytes)
            return new HashOutcome(request, null, NotHashed.TooLarge);
        var key = (f.status.Id, f.status.Size, f.status.ModifiedNs, f.status.ChangedNs);
        lock (cache)
        {
            if (cache.TryGetValue(key, out var known))
                return new HashOutcome(request, known.Sha256, NotHashed.None, known.Content);
        }
        using FileDescriptor? readable = opened.ReopenForReading(out _);
        if (readable is null)
            return new HashOutcome(request, null, NotHashed.Unreadable);
        // One read: every buffer the hash takes is also searched for a miner's markers.
        var content = new MinerContent();
        var input = new BoundedRead(readable, deadline, content);
        string? hash;
        try
        {
            hash = Sha256.HexOf(input);
        }
        catch (IOException)
        {
            hash = null;
        }
        if (hash is null)
            return new HashOutcome(request, null, input.Why);
        ContentVerdict verdict = content.Verdict();
        lock (cache)
        {
            if (cache.Count >= CacheCapacity)
                cache.Clear();
            cache[key] = (hash, verdict);
        }
        return new HashOutcome(request, hash, NotHashed.None, verdict);
    }

    /// <summary>The executable's path as it can be opened: relative ones from the process's working directory.</summary>
    public static string PathOf(ProcessEntry process)
    {
        string path = process.ExecutableText;
        return !path.StartsWith('/') && process.WorkingDirectory is { } cwd ? System.IO.Path.Join(cwd, path) : path;
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
                return;
            disposed = true;
            foreach (HashRequest request in queue)
                request.Dispose();
            queue.Clear();
            // Workers signal under the gate and see this first: the eventfd is never written after it closes.
            wakeup.Dispose();
            Monitor.PulseAll(gate);
        }
    }

    /// <summary>
    /// The file the request names, opened O_PATH and checked: what the kernel
    /// executed when /proc/PID/exe still shows it, else the path when it names
    /// the same regular file, unchanged since the exec (an inode number freed
    /// with the file is soon another file's). Null, and why, when neither is
    /// that file or it lies on a file system the sensor never reads.
    /// </summary>
    private static (FileDescriptor, FileStatus)? Open(HashRequest request, out NotHashed why)
    {
        why = NotHashed.Gone;
        MountTable mounts = MountTable.Read("self");
        if (request.Running is { } running)
        {
            FileCheck check = ExecutedFile.Check(running, request.Expected, mounts, request.Pid, out FileStatus status);
            if (check == FileCheck.Same)
                return (running, status);
            why = Why(check, why);
        }
        if (request.Expected is null || request.ExecutedAtNs == 0 || request.Path is not { } path)
            return null;
        FileDescriptor? named = ExecutedFile.OpenPath(path, mounts, out bool throughFuse);
        if (throughFuse)
            why = NotHashed.UserFileSystem;
        if (named is not null)
        {
            FileCheck check = ExecutedFile.Check(named, request.Expected, mounts, request.Pid, out FileStatus status);
            // Change times come from a coarse clock, a tick behind at most: only one a tick before the exec is surely older.
            if (check == FileCheck.Same && status.ChangedNs < request.ExecutedAtNs - Libc.FileTimeStepNs)
                return (named, status);
            why = Why(check, why);
            named.Dispose();
        }
        return null;
    }

    /// <summary>The stronger of two reasons: a file system never read, then an unreadable file, then a gone one.</summary>
    private static NotHashed Why(FileCheck check, NotHashed sofar) => check switch
    {
        FileCheck.NotLocal => NotHashed.UserFileSystem,
        FileCheck.Unreadable when sofar != NotHashed.UserFileSystem => NotHashed.Unreadable,
        _ => sofar,
    };

    private void Finish(HashOutcome outcome)
    {
        finished.Add(outcome);
        wakeup.Signal();
    }

    private void StartWorker()
    {
        var worker = new Worker();
        workers.Add(worker);
        new Thread(() => Work(worker)) { IsBackground = true, Name = "guard-hash" }.Start();
    }

    private void Work(Worker me)
    {
        while (true)
        {
            HashRequest request;
            lock (gate)
            {
                while (queue.Count == 0 && !disposed && !me.LeftBehind)
                    Monitor.Wait(gate);
                if (disposed || me.LeftBehind)
                    return;
                request = queue.Dequeue();
                request.StartedAt = Stopwatch.GetTimestamp();
                me.Current = request;
            }
            HashOutcome outcome;
            try
            {
                outcome = work(request);
            }
            finally
            {
                request.Dispose();
            }
            lock (gate)
            {
                // Left behind: its time-out went out already, and a new worker took its place.
                if (me.LeftBehind)
                {
                    leftBehind--;
                    return;
                }
                if (disposed)
                    return;
                me.Current = null;
                Finish(outcome);
            }
        }
    }

    private sealed class Worker
    {
        public HashRequest? Current { get; set; }

        public bool LeftBehind { get; set; }
    }

    /// <summary>A read of at most <see cref="MaxBytes"/> before a deadline, past either failing and saying which; every byte read is searched for markers.</summary>
    private sealed class BoundedRead(FileDescriptor file, long deadline, MinerContent content) : Stream
    {
        private long total;

        public NotHashed Why { get; private set; } = NotHashed.Unreadable;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => total; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (Stopwatch.GetTimestamp() > deadline)
                throw Fail(NotHashed.TimedOut);
            int n = file.Read(buffer);
            if (n < 0)
                throw Fail(NotHashed.Unreadable);
            // The size statx gave is the file's word; the bytes read are the bound.
            if ((total += n) > MaxBytes)
                throw Fail(NotHashed.TooLarge);
            content.Add(buffer[..n]);
            return n;
        }

        private IOException Fail(NotHashed why)
        {
            Why = why;
            return new IOException(why.ToString());
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
