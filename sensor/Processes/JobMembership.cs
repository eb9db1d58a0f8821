using System.Globalization;

namespace Guard.Sensor.Processes;

/// <summary>
/// Which job a process is in, the one answer for every rule, response and
/// output, and the same the kernel gives at exec (bpf/verdicts.h decide_exec):
/// its cgroup's job first (a Slurm job, a Kubernetes pod, a container, or a
/// systemd unit the policy names: every process there is a member, whatever
/// launched it), else the tree under the jobs.roots launcher above it. A unit
/// the policy does not name is no job, so a process whose only "job" would be
/// cron.service is outside every job, and never the reason it is frozen.
/// </summary>
/// <param name="Cgroup">The job with its own cgroup; null when there is none.</param>
/// <param name="RootPid">The launcher above it, as the kernel found it at exec or fork; 0: none. Within a cgroup job it names the job's workers' launcher.</param>
/// <param name="Root">That launcher as a process, found through lineage; null when lineage does not reach it.</param>
public readonly record struct JobMembership(Job? Cgroup, int RootPid, ProcessEntry? Root)
{
    /// <summary>Kind of a job that is the tree under a launcher (<see cref="Id"/> "tree:ENTITY_ID").</summary>
    public const string TreeKind = "tree";

    /// <summary>Whether the process is inside any job.</summary>
    public bool InJob => Cgroup is not null || RootPid != 0;

    /// <summary>
    /// The job's id: slurm:N, k8s-pod:UID, container:ID12, systemd:UNIT, or
    /// tree:ENTITY_ID (the launcher's entity id; its pid when lineage does not
    /// reach it); null outside every job.
    /// </summary>
    public string? Id => Cgroup?.Id
        ?? (RootPid == 0 ? null : $"{TreeKind}:{Root?.EntityId ?? RootPid.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>slurm, kubernetes, container, systemd or tree; null outside every job.</summary>
    public string? Kind => Cgroup?.Kind ?? (RootPid == 0 ? null : TreeKind);
}
