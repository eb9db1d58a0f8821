using System.Text;
using Guard.Sensor.Abi;

namespace Guard.Sensor.Response;

/// <summary>
/// One hold, tree or cgroup, as its pinned record and the kernel have it now.
/// A snapshot: members can exit (and a tree can gain children) after it was read.
/// </summary>
/// <param name="Id">The key of the pinned record: the cgroup id (its directory's inode) for a cgroup hold; a CLOCK_REALTIME timestamp with bit 63 set for a tree hold.</param>
/// <param name="Mode">Held through its own cgroup, or as a process tree.</param>
/// <param name="Name">What `guard status` calls it and `guard release --job` takes: the job id (slurm:42) for a cgroup hold, tree:PID(comm) for a tree hold.</param>
/// <param name="RootPid">The process whose tree is held; 0 for a cgroup hold.</param>
/// <param name="Since">When the hold was made.</param>
/// <param name="Deadline">When its timeout passes; null: held until a person decides.</param>
/// <param name="OnTimeout">What the timeout does.</param>
/// <param name="OrderedBy">"cli" or the rule that asked.</param>
/// <param name="OrderedByUid">The uid of who asked.</param>
/// <param name="Reason">Why it was held.</param>
/// <param name="CgroupPath">The held cgroup, relative to the cgroup2 mount; null for a tree hold or a cgroup that is gone.</param>
/// <param name="Pids">Live members, ascending: the tgids the kernel holds, or the processes of the cgroup and its descendants with the members moved out of it.</param>
public sealed record QuarantineHold(
    ulong Id, QuarantineMode Mode, string Name, int RootPid, DateTimeOffset Since, DateTimeOffset? Deadline, QuarantineExpiry OnTimeout,
    string OrderedBy, uint OrderedByUid, string Reason, string? CgroupPath, IReadOnlyList<int> Pids)
{
    /// <summary>Members that can run now (a thread neither stopped nor traced, as /proc/PID/task/*/stat says when read): a hold that does not hold. For a cgroup hold, members moved out of it that run.</summary>
    public IReadOnlyList<int> Running { get; init; } = [];

    /// <summary>For a cgroup hold, what its cgroup.events says now ("frozen 1"); null for a tree hold or a cgroup that is gone.</summary>
    public bool? Frozen { get; init; }

    /// <summary>For a cgroup hold, the processes in its cgroup and below, ascending; empty for a tree hold.</summary>
    public IReadOnlyList<int> Inside { get; init; } = [];

    /// <summary>For a cgroup hold, its members that someone moved out of the cgroup, and where they are now; empty for a tree hold.</summary>
    public IReadOnlyList<MemberOutside> Outside { get; init; } = [];

    /// <summary>What is seen now, not what was done: a tree hold's members all stopped; a cgroup hold's cgroup frozen and the members moved out of it all stopped.</summary>
    public bool Held => Mode == QuarantineMode.Cgroup ? Frozen == true && Running.Count == 0 : Running.Count == 0;

    /// <summary>Moves of a member out of the held cgroup, each answered by stopping it where it went (cgroup holds).</summary>
    public ulong MovesOut { get; init; }

    /// <summary>Attempts to let a member run (SIGCONT, a ptrace resume, a GPU ioctl) that the kernel answered, since the hold was made; moves out are counted apart (<see cref="MovesOut"/>).</summary>
    public ulong ContinuesRefused { get; init; }

    /// <summary>Attempts the kernel could not answer at once (a watching sensor stops those through pidfds).</summary>
    public ulong ContinuesUnanswered { get; init; }

    /// <summary>Who made the latest attempt (the task current then), or null when there was none.</summary>
    public (int Pid, string Name)? LastContinuedBy { get; init; }

    /// <summary>The hold a pinned record describes, with the members read for it.</summary>
    internal static QuarantineHold From(ulong id, in GuardQuarantine record, string? cgroupPath, IReadOnlyList<int> pids) => new(
        id, record.Mode, Text(record.Job), (int)record.RootPid, Time(record.SinceNs),
        record.DeadlineNs == 0 ? null : Time(record.DeadlineNs), record.Expiry,
        Text(record.OrderedBy), record.OrderedByUid, Text(record.Reason), cgroupPath, pids);

    private static DateTimeOffset Time(ulong realtimeNs) => DateTimeOffset.FromUnixTimeMilliseconds((long)(realtimeNs / 1_000_000));

    private static string Text(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }
}
