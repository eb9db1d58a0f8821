namespace Guard.Sensor.Bpf;

public enum AttachPoint
{
    /// <summary>Tracepoints and BTF tracepoints: libbpf finds the target from the section name.</summary>
    Tracing,

    /// <summary>cgroup programs, attached at the cgroup v2 root so they see every process.</summary>
    CgroupRoot,
}

/// <summary>One program of the object: where it attaches and whether the sensor can run without it.</summary>
public sealed record ProgramSpec(string Name, AttachPoint Attach, bool Required, string Purpose);

/// <summary>The observation programs of guard.bpf.c, described as data.</summary>
public static class GuardPrograms
{
    public const string GpuIoctl = "guard_ioctl";

    public static readonly IReadOnlyList<ProgramSpec> Observation =
    [
        new("guard_exec", AttachPoint.Tracing, true, "exec (tp_btf/sched_process_exec)"),
        new("guard_fork", AttachPoint.Tracing, true, "fork (tp_btf/sched_process_fork)"),
        new("guard_exit", AttachPoint.Tracing, true, "exit (tp_btf/sched_process_exit)"),
        new("guard_connect4", AttachPoint.CgroupRoot, false, "IPv4 connects (cgroup/connect4)"),
        new("guard_connect6", AttachPoint.CgroupRoot, false, "IPv6 connects (cgroup/connect6)"),
        new("guard_sendmsg4", AttachPoint.CgroupRoot, false, "IPv4 UDP senders (cgroup/sendmsg4)"),
        new("guard_sendmsg6", AttachPoint.CgroupRoot, false, "IPv6 UDP senders (cgroup/sendmsg6)"),
        new("guard_sockops", AttachPoint.CgroupRoot, false, "TCP connect outcomes (sockops)"),
        new("guard_egress", AttachPoint.CgroupRoot, false, "first payload bytes and DNS (cgroup_skb/egress)"),
        new("guard_dev", AttachPoint.CgroupRoot, false, "GPU device opens (cgroup/dev)"),
        new(GpuIoctl, AttachPoint.Tracing, false, "GPU driver ioctls (tp/syscalls/sys_enter_ioctl)"),
        new("guard_fpu", AttachPoint.Tracing, false, "FPU rounding mode at context switch (tp_btf/x86_fpu_regs_deactivated)"),
    ];
}
