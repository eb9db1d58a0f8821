using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>
/// guard.job and guard.ancestry: where a process belongs. The one renderer of
/// each, for every kind of line that carries them.
/// </summary>
internal static class EcsLineageFields
{
    /// <summary>
    /// guard.job: which job the process is in (<see cref="ProcessEntry.Membership"/>),
    /// id and kind, and with <paramref name="withCgroup"/> the job's cgroup path
    /// when it has one (process and GPU lines carry it; network, metric and
    /// alert lines do not). Nothing outside every job.
    /// </summary>
    public static void Job(JsonLineWriter w, ProcessEntry p, bool withCgroup)
    {
        JobMembership job = p.Membership;
        if (job.Id is not { } id)
            return;
        w.StartObject("job"u8);
        w.Text("id"u8, id);
        w.Text("kind"u8, job.Kind!);
        if (withCgroup && job.Cgroup is { } cgroup)
            w.Text("cgroup"u8, cgroup.CgroupPath);
        // A Slurm step and task: ECS has no field for them.
        if (job.Cgroup?.Placement is { } placed)
        {
            if (placed.SlurmStep is { } step)
                w.Text("step"u8, step);
            if (placed.SlurmTask is { } task)
                w.Text("task"u8, task);
        }
        w.EndObject();
    }

    /// <summary>
    /// orchestrator.* and container.* for a process in a pod, a Slurm job or a
    /// container: orchestrator.type (kubernetes, slurm), resource.type (pod,
    /// job), resource.id (the pod's UID, the job's number), and where known the
    /// pod's resource.name and namespace; container.id (the whole id) and
    /// container.runtime. Nothing for other processes.
    /// </summary>
    public static void Orchestrator(JsonLineWriter w, ProcessEntry p)
    {
        if (p.CgroupJob is not { } job)
            return;
        JobPlacement? placed = job.Placement;
        if (job.Kind is "kubernetes" or "slurm")
        {
            bool pod = job.Kind == "kubernetes";
            w.StartObject("orchestrator"u8);
            w.Text("type"u8, pod ? "kubernetes"u8 : "slurm"u8);
            if (pod && placed?.PodNamespace is { } ns)
                w.Text("namespace"u8, ns);
            w.StartObject("resource"u8);
            w.Text("type"u8, pod ? "pod"u8 : "job"u8);
            w.Text("id"u8, job.Id[(job.Id.IndexOf(':', StringComparison.Ordinal) + 1)..]);
            if (pod && placed?.PodName is { } name)
                w.Text("name"u8, name);
            w.EndObject();
            w.EndObject();
        }
        if (placed?.ContainerId is { } id)
        {
            w.StartObject("container"u8);
            w.Text("id"u8, id);
            if (placed.ContainerRuntime is { } runtime)
                w.Text("runtime"u8, runtime);
            w.EndObject();
        }
    }

    /// <summary>guard.ancestry: the entity ids of the process's parent, its parent's, and so on up to the oldest known.</summary>
    public static void Ancestry(JsonLineWriter w, ProcessEntry p)
    {
        w.StartArray("ancestry"u8);
        for (ProcessEntry? a = p.Parent; a is not null; a = a.Parent)
            w.TextItem(a.EntityIdUtf8);
        w.EndArray();
    }
}
