using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// What a full ring hid is judged late. When the kernel has counted lost
/// exec, fork or exit records, the processes whose exec record was lost (the
/// kernel lists them, exec_unrecorded) and every process in /proc the table
/// does not know by pid and start (its fork record lost too) are read from
/// /proc, arguments whole, and judged as processes found at start are
/// (<see cref="EventPipeline.JudgeLate"/>); a "judge-late" action event says
/// how many after how many lost records. Bounded work per poll (64 from the
/// kernel's list, one /proc block of at most about 200 processes), nothing
/// allocated for a process the table knows: a flood that keeps the ring full
/// costs passes, never the drain. Where the kernel's list overflowed, the
/// next pass judges every process again.
/// </summary>
public sealed class LateJudging : IDisposable
{
    /// <summary>Processes taken from the kernel's list each poll.</summary>
    private const int ListedPerPoll = 64;

    /// <summary>Pids a report names at most.</summary>
    private const int ReportedPids = 64;

    /// <summary>The least time between two reports (CLOCK_BOOTTIME ns): a flood makes one a second, not one a pass.</summary>
    private const long ReportIntervalNs = 1_000_000_000;

    private readonly KernelSession kernel;
    private readonly ProcessTable table;
    private readonly EventPipeline pipeline;
    private readonly EventEmitter emitter;
    private readonly ProcfsSweep sweep = new();
    private readonly Func<int, long, bool> known;
    private readonly List<(int Pid, long StartTicks)> unknown = [];
    private readonly List<(int Pid, ulong StartTimeNs)> listed = [];
    private readonly List<int> judgedPids = [];
    private readonly int self = Environment.ProcessId;
    private ulong dropsSeen;
    private ulong dropsReported;
    private ulong listLostSeen;
    private bool listPending;
    private bool sweepAgain;
    private bool judgeAll;
    private bool judgingAll;
    private bool judgedAll;
    private long judged;
    private long nextReportNs;

    /// <param name="kernel">Counts lost records and lists the processes whose exec record was lost.</param>
    /// <param name="table">The sensor's process table: who is known.</param>
    /// <param name="pipeline">Judges each process found.</param>
    /// <param name="emitter">Where the report goes.</param>
    public LateJudging(KernelSession kernel, ProcessTable table, EventPipeline pipeline, EventEmitter emitter)
    {
        this.kernel = kernel;
        this.table = table;
        this.pipeline = pipeline;
        this.emitter = emitter;
        known = (pid, startTicks) => !judgingAll && table.Find(pid, startTicks) is not null;
        dropsSeen = dropsReported = kernel.LifecycleDrops();
        listLostSeen = kernel.UnrecordedExecsLost;
    }

    /// <summary>Processes judged late since start.</summary>
    public long Judged { get; private set; }

    /// <summary>Whether a pass over /proc is under way.</summary>
    public bool Sweeping => sweep.Running;

    /// <summary>One poll's share of the work, at <paramref name="nowNs"/> (CLOCK_BOOTTIME): call from the draining thread, between reads of the ring.</summary>
    public void Poll(long nowNs)
    {
        ulong drops = kernel.LifecycleDrops();
        bool newDrops = drops != dropsSeen;
        if (newDrops || listPending)
        {
            listed.Clear();
            listPending = kernel.TakeUnrecordedExecs(listed, ListedPerPoll) == ListedPerPoll;
            foreach ((int pid, ulong startNs) in listed)
                Judge(pid, ClockTicks.FromBootNs(startNs), nowNs);
        }
        if (newDrops)
        {
            dropsSeen = drops;
            ulong listLost = kernel.UnrecordedExecsLost;
            if (listLost != listLostSeen)
            {
                // Some process's exec record was lost and the list had no room to say whose.
                listLostSeen = listLost;
                judgeAll = true;
            }
            if (sweep.Running)
                sweepAgain = true; // what it has passed may have changed: once more after this one
            else
                BeginPass();
        }
        if (!sweep.Running)
            return;
        unknown.Clear();
        bool more = sweep.Step(known, unknown);
        foreach ((int pid, long startTicks) in unknown)
        {
            // Learnt from the kernel's list since the block was read: judged already.
            if (!judgingAll && table.Find(pid, startTicks) is not null)
                continue;
            Judge(pid, startTicks, nowNs);
        }
        if (more)
            return;
        Report(nowNs);
        if (sweepAgain)
        {
            sweepAgain = false;
            BeginPass();
        }
    }

    private void BeginPass()
    {
        judgingAll = judgeAll;
        judgedAll |= judgeAll;
        judgeAll = false;
        _ = sweep.Begin(); // no /proc: nothing to pass over; the kernel's list is still read
    }

    private void Judge(int pid, long startTicks, long nowNs)
    {
        if (pid == self || table.Relearn(pid, startTicks) is not { } entry)
            return;
        pipeline.JudgeLate(entry, nowNs);
        judged++;
        Judged++;
        if (judgedPids.Count < ReportedPids)
            judgedPids.Add(pid);
    }

    /// <summary>At the end of a pass, at most once a second: how many were judged late after how many lost records.</summary>
    private void Report(long nowNs)
    {
        if (nowNs < nextReportNs || (judged == 0 && dropsSeen == dropsReported))
            return;
        nextReportNs = nowNs + ReportIntervalNs;
        ulong lost = dropsSeen - dropsReported;
        string message = $"judged {judged} process{(judged == 1 ? "" : "es")} late after {lost} lost record{(lost == 1 ? "" : "s")} "
            + "(exec, fork and exit records the full ring had no room for)"
            + (judgedAll ? "; the kernel's list of lost execs overflowed, so every process was judged again" : "")
            + (judged > judgedPids.Count ? $"; the first {judgedPids.Count} pids listed" : "");
        emitter.Emit(new ActionEvent
        {
            Action = "judge-late",
            Succeeded = true,
            Message = message,
            OrderedBy = "ring-drops",
            OrderedByUid = Libc.GetUid(),
            Pids = [.. judgedPids],
            TimeNs = nowNs,
            Sequence = 1,
        });
        dropsReported = dropsSeen;
        judged = 0;
        judgedAll = false;
        judgedPids.Clear();
    }

    /// <summary>Closes /proc if a pass is under way.</summary>
    public void Dispose() => sweep.Dispose();
}
