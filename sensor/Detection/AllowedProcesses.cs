using System.Globalization;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>The policy's allow list for processes: by executable path, user and job.</summary>
public sealed class AllowedProcesses
{
    private readonly HashSet<string> executables;
    private readonly HashSet<string> users;
    private readonly HashSet<string> jobs;

    public AllowedProcesses(Policy policy)
    {
        executables = [.. policy.Allow.Executables];
        users = [.. policy.Allow.Users];
        jobs = [.. policy.Allow.Jobs];
    }

    public bool Allows(ProcessEntry process) =>
        executables.Contains(process.ExecutableText)
        || users.Contains(process.Uid.ToString(CultureInfo.InvariantCulture))
        || (process.UserName is { } name && users.Contains(name))
        || (process.Job is { } job && jobs.Contains(job.Id));
}
