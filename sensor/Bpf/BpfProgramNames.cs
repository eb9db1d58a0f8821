namespace Guard.Sensor.Bpf;

/// <summary>
/// The names of the BPF programs in bpf/*.bpf.c, as the sensor finds them in
/// a loaded object, pins their links and tells Guard's programs from others'.
/// Each mirrors a C function name; a lookup that finds nothing means sensor and
/// object were built apart. The kernel keeps only the first 15 characters
/// (bpf_prog_info.name), so the prefixes are what identifies a loaded program.
/// </summary>
public static class BpfProgramNames
{
    /// <summary>Every program in bpf/*.bpf.c is named guard_*, and so is each pinned link (named after its program).</summary>
    public const string Prefix = "guard_";

    /// <summary><c>guard_exec</c> in bpf/guard.bpf.c (tp_btf/sched_process_exec).</summary>
    public const string Exec = "guard_exec";

    /// <summary><c>guard_fork</c> in bpf/guard.bpf.c (tp_btf/sched_process_fork).</summary>
    public const string Fork = "guard_fork";

    /// <summary><c>guard_exit</c> in bpf/guard.bpf.c (tp_btf/sched_process_exit).</summary>
    public const string Exit = "guard_exit";

    /// <summary><c>guard_connect4</c> in bpf/guard.bpf.c (cgroup/connect4).</summary>
    public const string Connect4 = "guard_connect4";

    /// <summary><c>guard_connect6</c> in bpf/guard.bpf.c (cgroup/connect6).</summary>
    public const string Connect6 = "guard_connect6";

    /// <summary><c>guard_sendmsg4</c> in bpf/guard.bpf.c (cgroup/sendmsg4).</summary>
    public const string SendMsg4 = "guard_sendmsg4";

    /// <summary><c>guard_sendmsg6</c> in bpf/guard.bpf.c (cgroup/sendmsg6).</summary>
    public const string SendMsg6 = "guard_sendmsg6";

    /// <summary><c>guard_tcp_error</c> in bpf/guard.bpf.c (tp_btf/inet_sk_error_report): a TCP connect that failed (refused, timed out, unreachable).</summary>
    public const string TcpError = "guard_tcp_error";

    /// <summary><c>guard_tcp_destroy</c> in bpf/guard.bpf.c (tp_btf/tcp_destroy_sock): a TCP connect given up on before its handshake ended.</summary>
    public const string TcpDestroy = "guard_tcp_destroy";

    /// <summary><c>guard_egress</c> in bpf/guard.bpf.c (cgroup_skb/egress).</summary>
    public const string Egress = "guard_egress";

    /// <summary><c>guard_dev</c> in bpf/guard.bpf.c (cgroup/dev).</summary>
    public const string Dev = "guard_dev";

    /// <summary><c>guard_ioctl</c> in bpf/guard.bpf.c (tp/syscalls/sys_enter_ioctl).</summary>
    public const string Ioctl = "guard_ioctl";

    /// <summary><c>guard_cgroup_attach</c> in bpf/guard.bpf.c (tp_btf/cgroup_attach_task).</summary>
    public const string CgroupAttach = "guard_cgroup_attach";

    /// <summary><c>guard_unix_data</c> in bpf/guard.bpf.c (tp_btf/sk_data_ready): what is first written into each unix socket (stream, seqpacket, datagrams per sender).</summary>
    public const string UnixData = "guard_unix_data";

    /// <summary><c>guard_fpu</c> in bpf/guard.bpf.c (tp_btf/x86_fpu_regs_deactivated).</summary>
    public const string Fpu = "guard_fpu";

    /// <summary>Every program in bpf/enforce.bpf.c is named guard_enf_*.</summary>
    public const string EnforcePrefix = "guard_enf_";

    /// <summary><c>guard_enf_exec</c> in bpf/enforce.bpf.c (tp_btf/sched_process_exec).</summary>
    public const string EnforceExec = "guard_enf_exec";

    /// <summary><c>guard_enf_fork</c> in bpf/enforce.bpf.c (tp_btf/sched_process_fork).</summary>
    public const string EnforceFork = "guard_enf_fork";

    /// <summary><c>guard_enf_exit</c> in bpf/enforce.bpf.c (tp_btf/sched_process_exit).</summary>
    public const string EnforceExit = "guard_enf_exit";

    /// <summary><c>guard_enf_cgroup_attach</c> in bpf/enforce.bpf.c (tp_btf/cgroup_attach_task).</summary>
    public const string EnforceCgroupAttach = "guard_enf_cgroup_attach";

    /// <summary><c>guard_enf_connect4</c> in bpf/enforce.bpf.c (cgroup/connect4).</summary>
    public const string EnforceConnect4 = "guard_enf_connect4";

    /// <summary><c>guard_enf_connect6</c> in bpf/enforce.bpf.c (cgroup/connect6).</summary>
    public const string EnforceConnect6 = "guard_enf_connect6";

    /// <summary><c>guard_enf_egress</c> in bpf/enforce.bpf.c (cgroup_skb/egress).</summary>
    public const string EnforceEgress = "guard_enf_egress";

    /// <summary>Every program in bpf/lineage.bpf.c is named guard_lin_*.</summary>
    public const string LineagePrefix = "guard_lin_";

    /// <summary><c>guard_lin_fork</c> in bpf/lineage.bpf.c (tp_btf/sched_process_fork).</summary>
    public const string LineageFork = "guard_lin_fork";

    /// <summary><c>guard_lin_exit</c> in bpf/lineage.bpf.c (tp_btf/sched_process_exit).</summary>
    public const string LineageExit = "guard_lin_exit";

    /// <summary>Every program in bpf/quarantine.bpf.c is named guard_qtree_* or guard_qcg_*.</summary>
    public const string QuarantinePrefix = "guard_q";

    /// <summary><c>guard_qtree_sock_create</c> in bpf/quarantine.bpf.c (cgroup/sock_create).</summary>
    public const string QuarantineTreeSockCreate = "guard_qtree_sock_create";

    /// <summary><c>guard_qtree_connect4</c> in bpf/quarantine.bpf.c (cgroup/connect4).</summary>
    public const string QuarantineTreeConnect4 = "guard_qtree_connect4";

    /// <summary><c>guard_qtree_connect6</c> in bpf/quarantine.bpf.c (cgroup/connect6).</summary>
    public const string QuarantineTreeConnect6 = "guard_qtree_connect6";

    /// <summary><c>guard_qtree_sendmsg4</c> in bpf/quarantine.bpf.c (cgroup/sendmsg4).</summary>
    public const string QuarantineTreeSendMsg4 = "guard_qtree_sendmsg4";

    /// <summary><c>guard_qtree_sendmsg6</c> in bpf/quarantine.bpf.c (cgroup/sendmsg6).</summary>
    public const string QuarantineTreeSendMsg6 = "guard_qtree_sendmsg6";

    /// <summary><c>guard_qtree_egress</c> in bpf/quarantine.bpf.c (cgroup_skb/egress).</summary>
    public const string QuarantineTreeEgress = "guard_qtree_egress";

    /// <summary><c>guard_qtree_dev</c> in bpf/quarantine.bpf.c (cgroup/dev).</summary>
    public const string QuarantineTreeDev = "guard_qtree_dev";

    /// <summary><c>guard_qtree_fork</c> in bpf/quarantine.bpf.c (tp_btf/sched_process_fork).</summary>
    public const string QuarantineTreeFork = "guard_qtree_fork";

    /// <summary><c>guard_qtree_exit</c> in bpf/quarantine.bpf.c (tp_btf/sched_process_exit).</summary>
    public const string QuarantineTreeExit = "guard_qtree_exit";

    /// <summary><c>guard_qtree_continue</c> in bpf/quarantine.bpf.c (tp_btf/signal_generate): a held process sent SIGCONT is stopped again.</summary>
    public const string QuarantineTreeContinue = "guard_qtree_continue";

    /// <summary><c>guard_qtree_ptrace</c> in bpf/quarantine.bpf.c (tp_btf/sched_waking): a held process its tracer resumes is killed.</summary>
    public const string QuarantineTreePtrace = "guard_qtree_ptrace";

    /// <summary><c>guard_qtree_tcp_send</c> in bpf/quarantine.bpf.c (tp_btf/tcp_sendmsg_locked): a socket a held process sends on is marked for egress to drop.</summary>
    public const string QuarantineTreeTcpSend = "guard_qtree_tcp_send";

    /// <summary><c>guard_qtree_move</c> in bpf/quarantine.bpf.c (tp_btf/cgroup_attach_task): a member of a cgroup hold moved out of the held cgroup is stopped; a process moved in becomes a member.</summary>
    public const string QuarantineTreeMove = "guard_qtree_move";

    /// <summary><c>guard_qcg_connect4</c> in bpf/quarantine.bpf.c (cgroup/connect4).</summary>
    public const string QuarantineCgroupConnect4 = "guard_qcg_connect4";

    /// <summary><c>guard_qcg_connect6</c> in bpf/quarantine.bpf.c (cgroup/connect6).</summary>
    public const string QuarantineCgroupConnect6 = "guard_qcg_connect6";

    /// <summary><c>guard_qcg_sendmsg4</c> in bpf/quarantine.bpf.c (cgroup/sendmsg4).</summary>
    public const string QuarantineCgroupSendMsg4 = "guard_qcg_sendmsg4";

    /// <summary><c>guard_qcg_sendmsg6</c> in bpf/quarantine.bpf.c (cgroup/sendmsg6).</summary>
    public const string QuarantineCgroupSendMsg6 = "guard_qcg_sendmsg6";

    /// <summary><c>guard_qcg_egress</c> in bpf/quarantine.bpf.c (cgroup_skb/egress).</summary>
    public const string QuarantineCgroupEgress = "guard_qcg_egress";

    /// <summary><c>guard_qcg_dev</c> in bpf/quarantine.bpf.c (cgroup/dev).</summary>
    public const string QuarantineCgroupDev = "guard_qcg_dev";

    /// <summary>Every program in bpf/confine.bpf.c is named guard_confine_*.</summary>
    public const string ConfinePrefix = "guard_confine_";

    /// <summary><c>guard_confine_connect4</c> in bpf/confine.bpf.c (cgroup/connect4).</summary>
    public const string ConfineConnect4 = "guard_confine_connect4";

    /// <summary><c>guard_confine_connect6</c> in bpf/confine.bpf.c (cgroup/connect6).</summary>
    public const string ConfineConnect6 = "guard_confine_connect6";

    /// <summary><c>guard_confine_sendmsg4</c> in bpf/confine.bpf.c (cgroup/sendmsg4).</summary>
    public const string ConfineSendMsg4 = "guard_confine_sendmsg4";

    /// <summary><c>guard_confine_sendmsg6</c> in bpf/confine.bpf.c (cgroup/sendmsg6).</summary>
    public const string ConfineSendMsg6 = "guard_confine_sendmsg6";

    /// <summary><c>guard_confine_ingress</c> in bpf/confine.bpf.c (cgroup_skb/ingress: DNS answers to confined jobs allow their names' addresses).</summary>
    public const string ConfineIngress = "guard_confine_ingress";

    /// <summary><c>guard_confine_egress</c> in bpf/confine.bpf.c (cgroup_skb/egress).</summary>
    public const string ConfineEgress = "guard_confine_egress";

    /// <summary><c>guard_confine_sockops</c> in bpf/confine.bpf.c (sockops): marks a listener's child of a confined job inbound as it is established.</summary>
    public const string ConfineSockOps = "guard_confine_sockops";

    /// <summary><c>guard_confine_fork</c> in bpf/confine.bpf.c (tp_btf/sched_process_fork).</summary>
    public const string ConfineFork = "guard_confine_fork";

    /// <summary><c>guard_confine_exec</c> in bpf/confine.bpf.c (tp_btf/sched_process_exec).</summary>
    public const string ConfineExec = "guard_confine_exec";

    /// <summary><c>guard_confine_exit</c> in bpf/confine.bpf.c (tp_btf/sched_process_exit).</summary>
    public const string ConfineExit = "guard_confine_exit";

    /// <summary><c>guard_confine_send</c> in bpf/confine.bpf.c (tp_btf/sock_send_length): a confined job's send on a socket it did not make (passed in, inherited).</summary>
    public const string ConfineSend = "guard_confine_send";

    /// <summary><c>guard_confine_dev</c> in bpf/confine.bpf.c (cgroup/dev): a confined job's open of a GPU its section does not allow.</summary>
    public const string ConfineDev = "guard_confine_dev";

    /// <summary><c>guard_confine_tree_connect4</c> in bpf/confine.bpf.c (cgroup/connect4 at the root: launcher-tree members in no confined job cgroup).</summary>
    public const string ConfineTreeConnect4 = "guard_confine_tree_connect4";

    /// <summary><c>guard_confine_tree_connect6</c> in bpf/confine.bpf.c (cgroup/connect6 at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeConnect6 = "guard_confine_tree_connect6";

    /// <summary><c>guard_confine_tree_sendmsg4</c> in bpf/confine.bpf.c (cgroup/sendmsg4 at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeSendMsg4 = "guard_confine_tree_sendmsg4";

    /// <summary><c>guard_confine_tree_sendmsg6</c> in bpf/confine.bpf.c (cgroup/sendmsg6 at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeSendMsg6 = "guard_confine_tree_sendmsg6";

    /// <summary><c>guard_confine_tree_ingress</c> in bpf/confine.bpf.c (cgroup_skb/ingress at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeIngress = "guard_confine_tree_ingress";

    /// <summary><c>guard_confine_tree_egress</c> in bpf/confine.bpf.c (cgroup_skb/egress at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeEgress = "guard_confine_tree_egress";

    /// <summary><c>guard_confine_tree_dev</c> in bpf/confine.bpf.c (cgroup/dev at the root, as <see cref="ConfineTreeConnect4"/>).</summary>
    public const string ConfineTreeDev = "guard_confine_tree_dev";
}
