using System.Globalization;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// The policy's allow list for processes: by executable path or SHA-256, user
/// and job. A path allows only the file it names in the sensor's mount
/// namespace: a process exec'd from that path string in a namespace where it
/// names another file (a bind mount in a user namespace) is not allowed.
/// The SHA-256 is the one hashed off the event thread (a process's
/// <see cref="ProcessEntry.ExecutableSha256"/>): until it is in, a process is
/// not allowed by hash, and a finding about it waits for it (<see cref="WaitsForHash"/>).
/// </summary>
public sealed class AllowedProcesses
{
    private readonly HashSet<string> executables;
    private readonly HashSet<string> hashes;
    private readonly HashSet<string> users;
    private readonly HashSet<string> jobs;
    private readonly Dictionary<string, (FileId? File, long ResolvedNs)> files = [];

    /// <summary>How often an allowed path whose file did not match is looked up again (an upgrade replaces the file).</summary>
    private const long ResolveAgainNs = 1_000_000_000;

    public AllowedProcesses(Policy policy)
    {
        executables = [.. policy.Allow.Executables];
        hashes = [.. policy.Allow.Hashes.Select(h => h.ToLowerInvariant())];
        users = [.. policy.Allow.Users];
        jobs = [.. policy.Allow.Jobs];
    }

    /// <summary>Whether the list names hashes: then a process's verdict needs its executable's hash.</summary>
    public bool ByHash => hashes.Count > 0;

    public bool Allows(ProcessEntry process) =>
        AllowsExecutable(process)
        || (users.Count > 0 && (users.Contains(process.Uid.ToString(CultureInfo.InvariantCulture))
            || (process.UserName is { } name && users.Contains(name))))
        || (process.Membership.Id is { } job && jobs.Contains(job))
        || (process.ExecutableSha256 is { } hash && hashes.Contains(hash));

    /// <summary>
    /// The path is allowed and, when the exec record named the file, is that
    /// file (a process found in /proc at start has only its path).
    /// </summary>
    private bool AllowsExecutable(ProcessEntry process)
    {
        // Asked for every connection a process makes: no path string made while the list names none.
        if (executables.Count == 0)
            return false;
        string path = process.ExecutableText;
        if (!executables.Contains(path))
            return false;
        if (process.ExecutableFile is not { } ran)
            return true;
        long now = Libc.NowNs(Libc.ClockBoottime);
        if (!files.TryGetValue(path, out (FileId? File, long ResolvedNs) known) || (known.File != ran && now - known.ResolvedNs > ResolveAgainNs))
            files[path] = known = (ExecutedFile.KernelIdOf(path), now);
        return known.File == ran;
    }

    /// <summary>Whether the list names this SHA-256 (lower-case hex).</summary>
    public bool AllowsHash(string sha256) => hashes.Contains(sha256);

    /// <summary>Whether a finding about <paramref name="process"/> must wait for its hash before anything is done: the list names hashes, and its hash is neither in nor refused.</summary>
    public bool WaitsForHash(ProcessEntry process) =>
        ByHash && process.ExecutableSha256 is null && process.ExecutableNotHashed is null;
}
