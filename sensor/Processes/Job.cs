namespace Guard.Sensor.Processes;

/// <summary>
/// A job with a cgroup of its own: a Slurm job, a Kubernetes pod, a
/// container, a systemd unit the policy names (see <see cref="CgroupJobs"/>).
/// </summary>
/// <param name="Id">slurm:N, k8s-pod:UID, container:ID12 (the id's first 12 hex digits), systemd:UNIT.</param>
/// <param name="Kind">slurm, kubernetes, container, systemd.</param>
/// <param name="CgroupPath">The job's own cgroup, relative to the cgroup2 mount ("/slurm/job_42").</param>
public sealed record Job(string Id, string Kind, string CgroupPath)
{
    /// <summary>Where in the job the process runs (step, task, container, the pod's name); null when nothing below the job's cgroup says.</summary>
    public JobPlacement? Placement { get; init; }
}

/// <summary>
/// Where a process runs inside its job: read from the cgroup directories
/// below the job's own (a Slurm step and task, a pod's container) and, for a
/// pod, from the kubelet's directories (its name and namespace). Every part
/// is null when unknown. The directories below a job's cgroup may be made by
/// the job itself (a delegated subtree), so these may name places the job
/// chose; which job it is (<see cref="Job.Id"/>) is never read from below.
/// </summary>
/// <param name="SlurmStep">The step: digits, "batch", "extern" or "interactive".</param>
/// <param name="SlurmTask">The task: digits.</param>
/// <param name="ContainerId">The container's whole id: 64 lower-case hex digits.</param>
/// <param name="ContainerRuntime">containerd, cri-o, docker or podman, when the cgroup's name says.</param>
/// <param name="PodName">The pod's name (a DNS-1123 subdomain).</param>
/// <param name="PodNamespace">The pod's namespace (a DNS-1123 label).</param>
public sealed record JobPlacement(string? SlurmStep, string? SlurmTask, string? ContainerId, string? ContainerRuntime, string? PodName = null, string? PodNamespace = null);
