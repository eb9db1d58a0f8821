using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// One thread pinned to each CPU this process may run on, at the lowest
/// SCHED_FIFO priority, that wakes at a set rate and at once sleeps again.
/// A real-time thread's wake preempts whatever ordinary thread runs on its
/// CPU, so that thread is switched out with its live FPU state at least this
/// often, whether or not it ever sleeps: the kernel's context-switch programs
/// (guard_fpu reads the MXCSR rounding mode as a thread's FPU registers are
/// saved) see it at Guard's rate rather than at the moments it chooses. Each
/// wake is drawn at random within half a period either side of the rate's,
/// so a thread cannot learn when the next one comes. Costs per CPU: the
/// thread, and two context switches per wake.
/// </summary>
public sealed partial class PreemptingThreads : IDisposable
{
    /// <summary>SCHED_FIFO priority 1: above every ordinary thread, below every real-time one (which this must never delay).</summary>
    private const int FifoPriority = 1;

    private const int SchedFifo = 1;
    private const int ClockMonotonic = 1;
    private const int TimerAbstime = 1;

    /// <summary>Bytes of the CPU mask read from sched_getaffinity: 8,192 CPUs.</summary>
    private const int MaskBytes = 1024;

    /// <summary>Each thread's count, a cache line (8 longs) apart so the CPUs never share one.</summary>
    private const int CountStride = 8;

    /// <summary>Each thread's stack: it calls nothing deeper than a sleep.</summary>
    private const int StackBytes = 256 * 1024;

    private readonly Thread[] threads;
    private readonly long[] wakes;
    private readonly long periodNs;
    private readonly List<string> warnings = [];
    private volatile bool stopping;
    private int realTime;

    /// <summary>Starts the threads; each pins itself and raises its own priority before its first wake.</summary>
    /// <param name="ratePerSecond">Wakes a second on each CPU, 1 to 1000.</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is out of range.</exception>
    /// <exception cref="SensorException">This process's CPU set could not be read.</exception>
    public PreemptingThreads(int ratePerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ratePerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ratePerSecond, 1000);
        RatePerSecond = ratePerSecond;
        periodNs = 1_000_000_000L / ratePerSecond;
        Cpus = AllowedCpus();
        threads = new Thread[Cpus.Count];
        wakes = new long[Cpus.Count * CountStride];
        using var started = new CountdownEvent(Cpus.Count);
        for (int i = 0; i < Cpus.Count; i++)
        {
            int index = i;
            threads[i] = new Thread(() => Preempt(index, started), StackBytes) { IsBackground = true, Name = $"guard preempt {Cpus[i]}" };
            threads[i].Start();
        }
        // Back once each thread is pinned and has its priority (or said why not).
        started.Wait();
    }

    /// <summary>Wakes a second on each CPU.</summary>
    public int RatePerSecond { get; }

    /// <summary>The CPUs with a thread: those this process may run on when it started them.</summary>
    public IReadOnlyList<int> Cpus { get; }

    /// <summary>How many threads run at SCHED_FIFO; the others run as ordinary threads at the highest nice they could get, and may not preempt.</summary>
    public int RealTimeThreads => Volatile.Read(ref realTime);

    /// <summary>What a thread could not do (pin itself, raise its priority), one line each.</summary>
    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (warnings)
                return [.. warnings];
        }
    }

    /// <summary>Wakes so far, over all CPUs.</summary>
    public long Wakes
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < Cpus.Count; i++)
                sum += Volatile.Read(ref wakes[i * CountStride]);
            return sum;
        }
    }

    /// <summary>Stops the threads: each ends at its next wake, within about a period.</summary>
    public void Dispose()
    {
        stopping = true;
        foreach (Thread t in threads)
            t.Join();
    }

    private unsafe void Preempt(int index, CountdownEvent started)
    {
        int cpu = Cpus[index];
        try
        {
            byte* mask = stackalloc byte[MaskBytes];
            new Span<byte>(mask, MaskBytes).Clear();
            mask[cpu / 8] = (byte)(1 << (cpu % 8));
            if (SetAffinity(0, MaskBytes, mask) != 0)
            {
                Warn($"cannot pin a preempting thread to CPU {cpu}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}; what runs there is seen only when it is switched out");
                return;
            }
            int priority = FifoPriority;
            if (SetScheduler(0, SchedFifo, &priority) == 0)
            {
                Interlocked.Increment(ref realTime);
            }
            else
            {
                int errno = Marshal.GetLastPInvokeError();
                // An ordinary thread at nice -20 still preempts most of the time; said once, for all CPUs.
                _ = SetPriority(0, 0, -20);
                if (index == 0)
                    Warn($"the preempting threads cannot run at SCHED_FIFO ({Libc.ErrorText(errno)}; CAP_SYS_NICE, or a cgroup without real-time budget): they run at nice -20 and may not preempt a busy CPU");
            }
        }
        finally
        {
            started.Signal();
        }
        var random = new Random();
        long next = Libc.NowNs(ClockMonotonic) + random.NextInt64(periodNs);
        while (!stopping)
        {
            Libc.Timespec at = new() { Seconds = next / 1_000_000_000, Nanoseconds = next % 1_000_000_000 };
            _ = Sleep(ClockMonotonic, TimerAbstime, &at, null);
            wakes[index * CountStride]++;
            // The next wake, half a period either side of one period on; never in the past.
            long now = Libc.NowNs(ClockMonotonic);
            next = Math.Max(next, now) + (periodNs / 2) + random.NextInt64(periodNs);
        }
    }

    private void Warn(string line)
    {
        lock (warnings)
            warnings.Add(line);
    }

    /// <summary>The CPUs in this process's affinity mask.</summary>
    private static unsafe List<int> AllowedCpus()
    {
        byte* mask = stackalloc byte[MaskBytes];
        if (GetAffinity(0, MaskBytes, mask) != 0)
            throw new SensorException($"cannot read this process's CPUs (sched_getaffinity): {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        var cpus = new List<int>();
        for (int cpu = 0; cpu < MaskBytes * 8; cpu++)
        {
            if ((mask[cpu / 8] & (1 << (cpu % 8))) != 0)
                cpus.Add(cpu);
        }
        return cpus;
    }

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static unsafe partial int GetAffinity(int pid, nuint size, byte* mask);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static unsafe partial int SetAffinity(int pid, nuint size, byte* mask);

    /// <summary>sched_setscheduler(2) for the calling thread (pid 0), with a struct sched_param of one int.</summary>
    [LibraryImport("libc", EntryPoint = "sched_setscheduler", SetLastError = true)]
    private static unsafe partial int SetScheduler(int pid, int policy, int* param);

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static unsafe partial int Sleep(int clock, int flags, Libc.Timespec* request, Libc.Timespec* remain);
}
