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
    /// <summary>
    /// The programs whose decisions the kernel makes alone (the exec-time
    /// kill, job membership at fork and its end at exit, the socket claim at
    /// connect and the Stratum drop at egress): an enforcing sensor pins these
    /// (<see cref="SensorPins"/>) so they outlive it.
    /// </summary>
    public static readonly IReadOnlySet<string> Enforcing = new HashSet<string>(StringComparer.Ordinal)
    {
        BpfProgramNames.Exec, BpfProgramNames.Fork, BpfProgramNames.Exit,
        BpfProgramNames.Connect4, BpfProgramNames.Connect6, BpfProgramNames.Egress,
    };

    public static readonly IReadOnlyList<ProgramSpec> Observation =
    [
        new(BpfProgramNames.Exec, AttachPoint.Tracing, true, "exec (tp_btf/sched_process_exec)"),
        new(BpfProgramNames.Fork, AttachPoint.Tracing, true, "fork (tp_btf/sched_process_fork)"),
        new(BpfProgramNames.Exit, AttachPoint.Tracing, true, "exit (tp_btf/sched_process_exit)"),
        new(BpfProgramNames.CgroupAttach, AttachPoint.Tracing, false, "moves into job cgroups (tp_btf/cgroup_attach_task)"),
        new(BpfProgramNames.Connect4, AttachPoint.CgroupRoot, false, "IPv4 connects (cgroup/connect4)"),
        new(BpfProgramNames.Connect6, AttachPoint.CgroupRoot, false, "IPv6 connects (cgroup/connect6)"),
        new(BpfProgramNames.SendMsg4, AttachPoint.CgroupRoot, false, "IPv4 UDP senders (cgroup/sendmsg4)"),
        new(BpfProgramNames.SendMsg6, AttachPoint.CgroupRoot, false, "IPv6 UDP senders (cgroup/sendmsg6)"),
        new(BpfProgramNames.Egress, AttachPoint.CgroupRoot, false, "TCP connects established, first payload bytes and DNS (cgroup_skb/egress)"),
        new(BpfProgramNames.TcpError, AttachPoint.Tracing, false, "TCP connects refused, timed out or unreachable (tp_btf/inet_sk_error_report)"),
        new(BpfProgramNames.TcpDestroy, AttachPoint.Tracing, false, "TCP connects given up on while connecting (tp_btf/tcp_destroy_sock)"),
        new(BpfProgramNames.Dev, AttachPoint.CgroupRoot, false, "GPU device opens (cgroup/dev)"),
        new(BpfProgramNames.Ioctl, AttachPoint.Tracing, false, "GPU driver ioctls (tp/syscalls/sys_enter_ioctl)"),
        new(BpfProgramNames.Fpu, AttachPoint.Tracing, false, "FPU rounding mode at context switch (tp_btf/x86_fpu_regs_deactivated)"),
        new(BpfProgramNames.UnixData, AttachPoint.Tracing, false, "first bytes into unix sockets, for relays (tp_btf/sk_data_ready)"),
    ];
}
