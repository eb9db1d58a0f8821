namespace Guard.Sensor.Processes;

/// <summary>The job a process belongs to by its cgroup: a Slurm job, a Kubernetes pod, a container, a systemd unit.</summary>
public sealed record Job(string Id, string Kind, string CgroupPath);
