using System.Globalization;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// One thread pinned to each online CPU, at the highest SCHED_FIFO
/// priority, that wakes at a set rate and at once sleeps again. A
/// real-time thread's wake preempts whatever runs on its CPU at a lower
/// priority (every ordinary thread, and every real-time one below the top),
/// so that thread is switched out with its live FPU state at least this
/// often, whether or not it ever sleeps: the kernel's context-switch programs
/// (guard_fpu reads the MXCSR and x87 rounding modes as a thread's FPU
/// registers are saved) see it at Guard's rate rather than at the moments it
/// chooses. Each wake is drawn at random within half a period either side of
/// the rate's, so a thread cannot learn when the next one comes. The CPUs
/// are the machine's online ones, not this process's affinity: a sensor
/// confined to housekeeping CPUs (taskset, CPUAffinity) still samples the
/// others, where it is allowed to pin a thread (a cpuset may forbid it: said
/// per CPU). Costs per CPU: the thread, and two context switches per wake.
/// </summary>
public sealed partial class PreemptingThreads : IDisposable
{
    /// <summary>The top SCHED_FIFO priority on Linux, used when sched_get_priority_max cannot say.</summary>
    private const int TopFifoPriority = 99;

    /// <summary>The kernel's list of online CPUs (Documentation/ABI/testing/sysfs-devices-system-cpu).</summary>
    private const string OnlineCpusPath = "/sys/devices/system/cpu/online";

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
    private int pinned;

    /// <summary>Starts the threads; each pins itself and raises its own priority before its first wake.</summary>
    /// <param name="ratePerSecond">Wakes a second on each CPU, 1 to 1000.</param>
    /// <exception cref="ArgumentOutOfRangeException">The rate is out of range.</exception>
    /// <exception cref="SensorException">Neither the online CPUs nor this process's CPU set could be read.</exception>
    public PreemptingThreads(int ratePerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ratePerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ratePerSecond, 1000);
        RatePerSecond = ratePerSecond;
        periodNs = 1_000_000_000L / ratePerSecond;
        int top = GetPriorityMax(SchedFifo);
        FifoPriority = top > 0 ? top : TopFifoPriority;
        Cpus = OnlineCpus();
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

    /// <summary>The CPUs with a thread: those online when they started (this process's own CPUs where the online list could not be read).</summary>
    public IReadOnlyList<int> Cpus { get; }

    /// <summary>The SCHED_FIFO priority the threads ask for: sched_get_priority_max(SCHED_FIFO), 99 on Linux.</summary>
    public int FifoPriority { get; }

    /// <summary>How many threads are pinned to their CPU; one that could not be (a cpuset without that CPU) has ended, and its CPU is not sampled.</summary>
    public int PinnedThreads => Volatile.Read(ref pinned);

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
            if (cpu < MaskBytes * 8)
                mask[cpu / 8] = (byte)(1 << (cpu % 8));
            if (cpu >= MaskBytes * 8 || SetAffinity(0, MaskBytes, mask) != 0)
            {
                string why = cpu >= MaskBytes * 8 ? "past the 8,192 CPUs a mask here holds" : Libc.ErrorText(Marshal.GetLastPInvokeError());
                Warn($"cannot pin a preempting thread to CPU {cpu} ({why}; a cpuset without it?): what runs there is seen only when it is switched out");
                return;
            }
            Interlocked.Increment(ref pinned);
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

    /// <summary>The online CPUs, from the kernel's list; where it cannot be read, this process's own CPUs.</summary>
    private List<int> OnlineCpus()
    {
        string text;
        try
        {
            text = File.ReadAllText(OnlineCpusPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Warn($"cannot read the online CPUs ({OnlineCpusPath}: {e.Message}): only this process's own CPUs are sampled");
            return AllowedCpus();
        }
        List<int>? cpus = ParseCpuList(text);
        if (cpus is null || cpus.Count == 0)
        {
            Warn($"{OnlineCpusPath} is not a CPU list (\"{Printable(text)}\"): only this process's own CPUs are sampled");
            return AllowedCpus();
        }
        return cpus;
    }

    /// <summary>Largest CPU number a list may name: the kernel's NR_CPUS limit (CONFIG_NR_CPUS_RANGE_END, 8,192).</summary>
    internal const int MaxCpu = 8191;

    /// <summary>
    /// Parses a kernel CPU list (cpulist_parse: "0-3,8,10-11", a trailing
    /// newline allowed; ranges ascending; stride forms "0-7:2/4" are not
    /// written for the online list and are rejected), in ascending order
    /// without repeats.
    /// </summary>
    /// <returns>The CPUs, or null when the text is not such a list or names a CPU past <see cref="MaxCpu"/>.</returns>
    internal static List<int>? ParseCpuList(string text)
    {
        var cpus = new SortedSet<int>();
        string trimmed = text.TrimEnd('\n');
        if (trimmed.Length == 0)
            return [];
        foreach (string part in trimmed.Split(','))
        {
            int dash = part.IndexOf('-', StringComparison.Ordinal);
            if (!CpuNumber(dash < 0 ? part : part[..dash], out int first))
                return null;
            int last = first;
            if (dash >= 0 && (!CpuNumber(part[(dash + 1)..], out last) || last < first))
                return null;
            for (int cpu = first; cpu <= last; cpu++)
                cpus.Add(cpu);
        }
        return [.. cpus];
    }

    /// <summary>A CPU number: decimal digits only (no sign, no spaces), at most <see cref="MaxCpu"/>.</summary>
    private static bool CpuNumber(string text, out int cpu)
    {
        cpu = -1;
        return text.Length is > 0 and <= 4 && text.All(char.IsAsciiDigit)
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out cpu) && cpu <= MaxCpu;
    }

    private static string Printable(string text) =>
        new([.. text.Take(40).Select(c => c is >= ' ' and <= '~' ? c : '?')]);

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

    [LibraryImport("libc", EntryPoint = "sched_get_priority_max")]
    private static partial int GetPriorityMax(int policy);

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "clock_nanosleep")]
    private static unsafe partial int Sleep(int clock, int flags, Libc.Timespec* request, Libc.Timespec* remain);
}
