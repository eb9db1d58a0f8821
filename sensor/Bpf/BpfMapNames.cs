namespace Guard.Sensor.Bpf;

/// <summary>
/// The names of the BPF maps the sensor finds by name in a loaded object (or,
/// for quarantine, as pins). Each mirrors a map definition in bpf/; a lookup
/// that finds nothing means sensor and object were built apart.
/// </summary>
public static class BpfMapNames
{
    /// <summary>The ring buffer <c>events</c> in bpf/guard.bpf.c; the sensor sizes it before load.</summary>
    public const string Events = "events";

    /// <summary><c>drops</c> in bpf/guard.bpf.c: records that found the ring full, per record kind.</summary>
    public const string Drops = "drops";

    /// <summary><c>exec_unrecorded</c> in bpf/guard.bpf.c: processes (tgid to start, CLOCK_BOOTTIME ns) whose exec record found the ring full.</summary>
    public const string ExecUnrecorded = "exec_unrecorded";

    /// <summary><c>exec_unrecorded_lost</c> in bpf/guard.bpf.c: execs <see cref="ExecUnrecorded"/> had no room for.</summary>
    public const string ExecUnrecordedLost = "exec_unrecorded_lost";

    /// <summary><c>rounding_switches</c> in bpf/guard.bpf.c: context switches in each non-default FPU rounding mode, per process (struct guard_rounding).</summary>
    public const string RoundingSwitches = "rounding_switches";

    /// <summary>The last rounding counts of ended processes, until the next sampling reads them.</summary>
    public const string RoundingExited = "rounding_exited";

    /// <summary><c>gpu_ioctl_counts</c> in bpf/guard.bpf.c: GPU ioctls per process and kind.</summary>
    public const string GpuIoctlCounts = "gpu_ioctl_counts";

    /// <summary><c>gpu_class_counts</c> in bpf/guard.bpf.c: RM classes allocated per process.</summary>
    public const string GpuClassCounts = "gpu_class_counts";

    /// <summary><c>sock_owners</c> in bpf/guard.bpf.c: socket storage naming who connected each socket (struct guard_sock_owner first).</summary>
    public const string SockOwners = "sock_owners";

    /// <summary><c>unix_heads</c> in bpf/guard.bpf.c: socket storage with the first bytes written into each unix stream or seqpacket socket (struct guard_unix_head).</summary>
    public const string UnixHeads = "unix_heads";

    /// <summary><c>unix_dgram_heads</c> in bpf/guard.bpf.c: socket storage with the first bytes each sender sent to a unix datagram socket (struct guard_unix_dgram_heads).</summary>
    public const string UnixDgramHeads = "unix_dgram_heads";

    /// <summary>
    /// libbpf's map for the .rodata section of bpf/guard.bpf.c, holding only
    /// <c>const volatile struct guard_config guard_config</c>, written before load.
    /// </summary>
    public const string ReadOnlyData = ".rodata";

    /// <summary><c>miner_names</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string MinerNames = "miner_names";

    /// <summary><c>job_root_names</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string JobRootNames = "job_root_names";

    /// <summary><c>allowed_uids</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string AllowedUids = "allowed_uids";

    /// <summary><c>allowed_files</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string AllowedFiles = "allowed_files";

    /// <summary><c>allowed_destinations</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string AllowedDestinations = "allowed_destinations";

    /// <summary><c>stratum_methods</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string StratumMethods = "stratum_methods";

    /// <summary><c>job_members</c> in bpf/verdicts.h (each object that includes it has its own).</summary>
    public const string JobMembers = "job_members";

    /// <summary><c>job_units</c> in bpf/verdicts.h: the systemd units the policy names as jobs.</summary>
    public const string JobUnits = "job_units";

    /// <summary>Each cgroup's job as the kernel judged it from <see cref="JobUnits"/> (an LRU cache, judged again when missing).</summary>
    public const string CgroupJobs = "cgroup_jobs";

    /// <summary><c>quarantines</c> in bpf/quarantine.bpf.c, pinned by name: the hold records.</summary>
    public const string Quarantines = "quarantines";

    /// <summary><c>quarantine_tgids</c> in bpf/quarantine.bpf.c, pinned by name: held processes (tree mode).</summary>
    public const string QuarantineTgids = "quarantine_tgids";

    /// <summary><c>quarantine_socks</c> in bpf/quarantine.bpf.c, pinned by name: held sockets (tree mode).</summary>
    public const string QuarantineSocks = "quarantine_socks";

    /// <summary><c>quarantine_devices</c> in bpf/quarantine.bpf.c, pinned by name: GPU devices the held may not open.</summary>
    public const string QuarantineDevices = "quarantine_devices";

    /// <summary><c>quarantine_continues</c> in bpf/quarantine.bpf.c, pinned by name: attempts to let a held process run, per hold and member (tree mode).</summary>
    public const string QuarantineContinues = "quarantine_continues";

    /// <summary><c>quarantine_thread_stops</c> in bpf/quarantine.bpf.c, pinned by name: a pending stop per thread of a held process that was continued.</summary>
    public const string QuarantineThreadStops = "quarantine_thread_stops";

    /// <summary><c>quarantine_cgroup_levels</c> in bpf/quarantine.bpf.c, pinned by name: the depths of held cgroups, a bit each.</summary>
    public const string QuarantineCgroupLevels = "quarantine_cgroup_levels";

    /// <summary><c>held_tgids</c> in bpf/guard.bpf.c: slot 0 holds the pinned quarantine_tgids while a hold is pinned.</summary>
    public const string HeldTgids = "held_tgids";

    /// <summary><c>held_gpu_ioctls</c> in bpf/guard.bpf.c: GPU ioctls issued by held processes, per hold and process.</summary>
    public const string HeldGpuIoctls = "held_gpu_ioctls";

    /// <summary><c>lineage</c> in bpf/lineage.bpf.c, pinned by name: each recorded process's creator.</summary>
    public const string Lineage = "lineage";

    /// <summary><c>lineage_stopping</c> in bpf/lineage.bpf.c, pinned by name: members of trees being stopped.</summary>
    public const string LineageStopping = "lineage_stopping";

    /// <summary><c>lineage_lost</c> in bpf/lineage.bpf.c, pinned by name: forks not recorded because the map was full.</summary>
    public const string LineageLost = "lineage_lost";

    /// <summary><c>lineage_heirs</c> in bpf/lineage.bpf.c, pinned by name: each spliced-out exited creator's heir, the descendant whose entry took its place.</summary>
    public const string LineageHeirs = "lineage_heirs";

    /// <summary><c>confine_cgroups</c> in bpf/confine.bpf.c, pinned: confined job cgroups by id (struct guard_confine_job).</summary>
    public const string ConfineCgroups = "confine_cgroups";

    /// <summary><c>confine_levels</c> in bpf/confine.bpf.c, pinned: the levels below the root confined job cgroups are at, one bit each.</summary>
    public const string ConfineLevels = "confine_levels";

    /// <summary><c>confine_tgids</c> in bpf/confine.bpf.c, pinned: members of confined launcher trees by tgid (struct guard_confine_job).</summary>
    public const string ConfineTgids = "confine_tgids";

    /// <summary><c>confine_launchers</c> in bpf/confine.bpf.c, pinned: launchers (comm) whose exec starts a confined tree.</summary>
    public const string ConfineLaunchers = "confine_launchers";

    /// <summary><c>confine_allow</c> in bpf/confine.bpf.c, pinned: the allow lists, an LPM trie (struct guard_confine_key, struct guard_confine_ports).</summary>
    public const string ConfineAllow = "confine_allow";

    /// <summary><c>confine_generation</c> in bpf/confine.bpf.c, pinned: bumped after the lists change.</summary>
    public const string ConfineGeneration = "confine_generation";

    /// <summary><c>confine_denials</c> in bpf/confine.bpf.c, pinned: denials counted per job and destination (struct guard_confine_denial).</summary>
    public const string ConfineDenials = "confine_denials";

    /// <summary><c>confine_verdicts</c> in bpf/confine.bpf.c, pinned: a confined cgroup job's socket verdicts by socket cookie (an LRU of 65,536).</summary>
    public const string ConfineVerdicts = "confine_verdicts";

    /// <summary><c>confine_inbound</c> in bpf/confine.bpf.c, pinned: sockets a cgroup job accepted before it was confined, by socket cookie (an LRU of 16,384), written by the sensor as it confines the job.</summary>
    public const string ConfineInbound = "confine_inbound";

    /// <summary><c>confine_exec_rules</c> in bpf/confine.bpf.c, pinned: each section's denied and allowed exec classes, by rule set (struct guard_confine_exec_rules).</summary>
    public const string ConfineExecRules = "confine_exec_rules";

    /// <summary><c>confine_exec_files</c> in bpf/confine.bpf.c, pinned: files by inode, the class programs (set 0) and each section's own (struct guard_confine_file_key).</summary>
    public const string ConfineExecFiles = "confine_exec_files";

    /// <summary><c>confine_exec_names</c> in bpf/confine.bpf.c, pinned: class programs by name, 15 bytes as comm keeps them.</summary>
    public const string ConfineExecNames = "confine_exec_names";

    /// <summary><c>confine_gpu</c> in bpf/confine.bpf.c, pinned: the /dev/nvidiaN each section allows, by rule set (struct guard_confine_gpu).</summary>
    public const string ConfineGpu = "confine_gpu";

    /// <summary><c>confine_acts</c> in bpf/confine.bpf.c, pinned: a ring of denied execs and GPU opens (struct guard_confine_act).</summary>
    public const string ConfineActs = "confine_acts";

    /// <summary><c>confine_names</c> in bpf/confine.bpf.c, pinned: sections' DNS names and suffixes (struct guard_confine_name_key, struct guard_confine_name).</summary>
    public const string ConfineNames = "confine_names";

    /// <summary><c>confine_resolvers</c> in bpf/confine.bpf.c, pinned: sections' resolvers, whose answers are read.</summary>
    public const string ConfineResolvers = "confine_resolvers";

    /// <summary><c>confine_kinds</c> in bpf/confine.bpf.c, pinned: the section that confines each job kind's new job cgroups at their first exec (struct guard_confine_job by enum guard_confine_kind).</summary>
    public const string ConfineKinds = "confine_kinds";

    /// <summary><c>confine_next_set</c> in bpf/confine.bpf.c, pinned: the counter of own rule sets the kernel gives trees it starts.</summary>
    public const string ConfineNextSet = "confine_next_set";

    /// <summary><c>confine_approved</c> in bpf/confine.bpf.c, pinned: destinations a person approved for one job (struct guard_confine_key by the job's own set).</summary>
    public const string ConfineApproved = "confine_approved";

    /// <summary><c>confine_exec_approved</c> in bpf/confine.bpf.c, pinned: programs a person approved for one job (struct guard_confine_file_key by the job's own set; value the end, CLOCK_BOOTTIME ns, 0 the job's life).</summary>
    public const string ConfineExecApproved = "confine_exec_approved";
}
