namespace Guard.Sensor.Processes;

/// <summary>
/// A job with a cgroup of its own: a Slurm job, a Kubernetes pod, a
/// container, a systemd unit the policy names (see <see cref="CgroupJobs"/>).
/// </summary>
/// <param name="Id">slurm:N, k8s-pod:UID, container:ID12 (the id's first 12 hex digits), systemd:UNIT.</param>
/// <param name="Kind">slurm, kubernetes, container, systemd.</param>
/// <param name="CgroupPath">The job's own cgroup, relative to the cgroup2 mount ("/slurm/job_42").</param>
public sealed record Job(string Id, string Kind, string CgroupPath);
