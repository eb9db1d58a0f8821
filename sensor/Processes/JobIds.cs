namespace Guard.Sensor.Processes;

/// <summary>
/// The shapes of a job id as events name them (guard.job.id) and a person
/// filters by them: slurm:N, k8s-pod:UID, container:ID, systemd:UNIT and
/// tree:ENTITY_ID (<see cref="CgroupJobs"/>, <see cref="JobMembership"/>).
/// </summary>
public static class JobIds
{
    private static readonly string[] Prefixes = ["slurm:", "k8s-pod:", "container:", "systemd:", JobMembership.TreeKind + ":"];

    /// <summary>The accepted forms, for a usage message.</summary>
    public const string Formats = "slurm:N, k8s-pod:UID, container:ID, systemd:UNIT or tree:ENTITY_ID";

    /// <summary>
    /// <paramref name="id"/> as events write it: a pod's UID as Kubernetes prints it
    /// (lower case, dashes), also when given as a systemd cgroup path writes it (with
    /// underscores) or in upper case; any other id as given.
    /// </summary>
    public static string Canonical(string id) =>
        id.StartsWith("k8s-pod:", StringComparison.Ordinal) ? "k8s-pod:" + id["k8s-pod:".Length..].Replace('_', '-').ToLowerInvariant() : id;

    /// <summary>Whether <paramref name="id"/> has one of the prefixes and something after it.</summary>
    public static bool IsWellFormed(string id) =>
        Prefixes.Any(p => id.Length > p.Length && id.StartsWith(p, StringComparison.Ordinal));
}
