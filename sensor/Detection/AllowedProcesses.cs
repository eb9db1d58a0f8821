using System.Globalization;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>The policy's allow list for processes: by executable path or SHA-256, user and job.</summary>
public sealed class AllowedProcesses
{
    private readonly HashSet<string> executables;
    private readonly HashSet<string> hashes;
    private readonly HashSet<string> users;
    private readonly HashSet<string> jobs;
    private readonly ExecutableHashes hasher;

    public AllowedProcesses(Policy policy, ExecutableHashes hasher)
    {
        executables = [.. policy.Allow.Executables];
        hashes = [.. policy.Allow.Hashes.Select(h => h.ToLowerInvariant())];
        users = [.. policy.Allow.Users];
        jobs = [.. policy.Allow.Jobs];
        this.hasher = hasher;
    }

    public bool Allows(ProcessEntry process) =>
        executables.Contains(process.ExecutableText)
        || users.Contains(process.Uid.ToString(CultureInfo.InvariantCulture))
        || (process.UserName is { } name && users.Contains(name))
        || (process.Membership.Id is { } job && jobs.Contains(job))
        // Hashed only when the list names any: the default policy reads no file here.
        || (hashes.Count > 0 && hasher.Of(ExecutableHashes.PathOf(process)) is { } hash && hashes.Contains(hash));
}
