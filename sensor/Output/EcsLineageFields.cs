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
        w.EndObject();
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
