using System.Runtime.InteropServices;


namespace Guard.Sensor.Abi;

/// <summary>How a quarantine holds its job (enum guard_quarantine_mode).</summary>
public enum QuarantineMode : uint
{
    /// <summary>The job's own cgroup: frozen, deny programs attached to it.</summary>
    Cgroup = 1,

    /// <summary>A process tree: stopped, members kept in the kernel from fork.</summary>
    Tree = 2,
}

/// <summary>What happens when a quarantine's timeout passes (enum guard_quarantine_expiry).</summary>
public enum QuarantineExpiry : uint
{
    None = 0,
    Kill = 1,
    Release = 2,
}

/// <summary>A value of the pinned quarantines map: one held job.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardQuarantine
{
    public const int JobCapacity = 64;
    public const int OrderedByCapacity = 32;
    public const int ReasonCapacity = 160;

    public ulong SinceNs;
    public ulong DeadlineNs;
    public ulong CgroupId;
    public ulong RootStartTicks;
    public uint RootPid;
    public uint OrderedByUid;
    public QuarantineMode Mode;
    public QuarantineExpiry Expiry;
    public Bytes64 Job;
    public Bytes32 OrderedBy;
    public Bytes160 Reason;
}

/// <summary>How a held process was found running again (enum guard_continue_via).</summary>
public enum ContinueVia : uint
{
    /// <summary>A SIGCONT was generated for it; the kernel queued SIGSTOP at once.</summary>
    Signal = 1,

    /// <summary>It issued a GPU driver ioctl, so it ran; stopped again by guard.bpf.c.</summary>
    GpuIoctl = 2,

    /// <summary>Its tracer resumed it; the kernel killed it.</summary>
    Ptrace = 3,

    /// <summary>A member of a cgroup hold was moved out of the held cgroup, which thawed it; the kernel queued SIGSTOP.</summary>
    CgroupMove = 4,
}

/// <summary>Key of quarantine_continues and held_gpu_ioctls (struct guard_continue_key): one process of one hold, one way of letting it run, each counted apart.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardContinueKey
{
    public ulong HoldId;
    public uint Tgid;
    public ContinueVia Via;
}

/// <summary>
/// Value of quarantine_continues and held_gpu_ioctls (struct guard_continue):
/// what tried to let a held process run and what the kernel did, counted in place.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardContinue
{
    /// <summary>The held process's start in clock ticks (/proc/PID/stat field 22).</summary>
    public ulong StartTicks;

    /// <summary>Attempts answered in the kernel: SIGSTOP (SIGKILL for a ptrace resume) queued.</summary>
    public ulong Refused;

    /// <summary>Attempts whose answer could not be queued (-EBUSY, or no helper): user space stops those.</summary>
    public ulong Unanswered;

    /// <summary>When the latest happened, CLOCK_BOOTTIME ns.</summary>
    public ulong LastNs;

    /// <summary>The task current when the latest happened: the sender of a kill(2), tgkill(2) or sigqueue(2), the tracer, or the held process itself for an ioctl.</summary>
    public uint SenderTgid;

    /// <summary>The latest signal's si_code: SI_USER 0, SI_QUEUE -1, SI_TIMER -2, SI_TKILL -6, SI_KERNEL 0x80.</summary>
    public int SiCode;

    /// <summary>How it was seen: the key's <see cref="GuardContinueKey.Via"/> again.</summary>
    public ContinueVia Via;

    /// <summary>What the latest stop returned: 0 or a negative errno.</summary>
    public int Error;

    /// <summary>The sender's comm, NUL-padded.</summary>
    public Bytes16 SenderComm;

    /// <summary>Attempts of either kind.</summary>
    public readonly ulong Attempts => Refused + Unanswered;
}
