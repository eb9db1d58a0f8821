using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The approval gate of ask sections, in the sensor. A denial under ask
/// raises a request (one per job and destination, or job and program: a
/// retry while it waits only counts); a person's decision
/// (<see cref="ApprovalChannel"/>) approves it into the job's own approved
/// set in the kernel (confine_approved, confine_exec_approved), for a time
/// or the job's life, or denies it; a request nobody answers expires after
/// its section's ask_expiry_seconds; an approval ends when its time or its
/// job ends, or with this sensor. After a deny, retries of the same job and
/// destination or program raise nothing until the section's expiry has passed
/// again, so a job retrying in a loop cannot flood the person with requests.
/// Every decision is an action event (<see cref="ActionEvent.Approval"/>).
/// </summary>
public sealed class Approvals
{
    /// <summary>Requests (pending and approved) one sensor holds at most: past it, new denials raise nothing, and say so once.</summary>
    public const int Capacity = 1024;

    /// <summary>
    /// Requests (pending and approved) one job holds at most: past it, that job's new denials
    /// raise nothing, so one job flooding denials cannot take the whole <see cref="Capacity"/>
    /// from every other job (an adversary pass filled it with 3,000 denied connects).
    /// </summary>
    public const int JobCapacity = 64;

    private const int LineageDepth = 16;

    private readonly ConfineKernel kernel;
    private readonly Func<uint, bool> jobAlive;
    private readonly Dictionary<string, ApprovalRequest> byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ApprovalRequest> byKey = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> refusedUntilNs = new(StringComparer.Ordinal);
    private readonly Dictionary<DenialKey, ulong> counted = [];
    private readonly List<ActionEvent> queued = [];
    private bool listChanged = true;
    private bool firstScan = true;

    /// <summary>
    /// The gate over <paramref name="kernel"/>; <paramref name="jobAlive"/> says whether the job
    /// with an own rule set still runs (an approval for the job's life ends with it). What a sensor
    /// before this one approved is removed: approvals end with the sensor that made them.
    /// </summary>
    public Approvals(ConfineKernel kernel, Func<uint, bool> jobAlive)
    {
        this.kernel = kernel;
        this.jobAlive = jobAlive;
        kernel.ClearApprovals();
    }

    /// <summary>The requests held now, pending and approved.</summary>
    public IReadOnlyCollection<ApprovalRequest> Requests => byId.Values;

    /// <summary>Whether the capacity was reached (new denials raise nothing until requests end).</summary>
    public bool Full => byId.Count >= Capacity;

    /// <summary>
    /// Raises requests for what the kernel denied ask sections' jobs since the last scan
    /// (<paramref name="counts"/>: confine_denials as read now); returns the denial events
    /// of new requests (event.action confine-ask). A retry of a pending request adds to its
    /// count only. At a sensor's first scan, denials older than their section's expiry are
    /// counted as seen, not raised.
    /// </summary>
    public List<ConfineEvent> Scan(
        IReadOnlyList<(GuardConfineDenialKey Key, GuardConfineDenial Value)> counts, long nowNs, ConfineRules rules,
        IReadOnlyDictionary<uint, ConfinedJob> jobs, ProcessTable processes)
    {
        var raised = new List<ConfineEvent>();
        foreach ((GuardConfineDenialKey key, GuardConfineDenial value) in counts)
        {
            if (value.Mode != (uint)ConfineKernelMode.Ask || key.Job == 0)
                continue;
            DenialKey id = DenialKey.Of(key);
            ulong before = counted.GetValueOrDefault(id);
            if (value.Count < before)
                before = 0; // evicted and counted again from 0
            counted[id] = value.Count;
            if (value.Count == before)
                continue;
            ConfineSection? section = rules.SectionOfSet(key.Section);
            if (section is null)
                continue;
            long expiryNs = section.AskExpirySeconds * 1_000_000_000L;
            if (firstScan && nowNs - (long)value.LastNs > expiryNs)
                continue;
            ProcessEntry? process = value.Tgid == 0 ? null : processes.Find((int)value.Tgid, ClockTicks.FromBootNs(value.StartTimeNs));
            byte[] address = ((ReadOnlySpan<byte>)key.Address).ToArray();
            string? jobId = process?.Membership.Id ?? (jobs.TryGetValue(key.Job, out ConfinedJob? job) ? job.JobId : null);
            ApprovalRequest? request = Raise(
                ApprovalRequest.KeyOf(ApprovalKind.Destination, key.Job, address, key.Port, key.Protocol, null), key.Job, value.Count - before, nowNs, section,
                () => new ApprovalRequest
                {
                    Id = ApprovalRequest.NewId(),
                    Kind = ApprovalKind.Destination,
                    JobSet = key.Job,
                    JobId = jobId,
                    Section = section.Name,
                    SectionSource = section.Source,
                    Address = address,
                    Port = key.Port,
                    Protocol = key.Protocol,
                    Pid = (int)value.Tgid,
                    StartTicks = process?.StartTicks ?? 0,
                    ProcessName = process?.NameText ?? Comm.Text(value.Comm),
                    ProcessExecutable = process?.ExecutableText ?? "",
                    Lineage = LineageOf(process),
                });
            if (request is null)
                continue;
            bool v4 = address.AsSpan(0, 10).IndexOfAnyExcept((byte)0) < 0 && address[10] == 0xff && address[11] == 0xff;
            byte[] destination = new byte[16];
            (v4 ? address.AsSpan(12) : address).CopyTo(destination);
            raised.Add(new ConfineEvent
            {
                TimeNs = (long)value.LastNs,
                Process = process,
                Section = section.Name,
                SectionSource = section.Source,
                Mode = "ask",
                Attempt = ConfineEvent.AttemptOf((ConfineWhat)key.What),
                JobId = jobId,
                JobSet = key.Job,
                Family = v4 ? 2 : 10,
                DestinationAddress = destination,
                DestinationPort = key.Port,
                Protocol = key.Protocol,
                Count = request.Count,
                FirstNs = (long)value.FirstNs,
                ApprovalId = request.Id,
                ApprovalExpiresUnixMs = request.ExpiresUnixMs,
            });
        }
        firstScan = false;
        return raised;
    }

    /// <summary>
    /// A program the kernel killed under ask (<paramref name="denial"/>, the file
    /// <paramref name="file"/> it ran): raises a request and marks the event with it
    /// (its SHA-256 read from the path when that is still the same file), or counts a retry.
    /// </summary>
    public void OnProgramDenied(ProcessDenialEvent denial, uint jobSet, FileId file, ConfineSection section, long nowNs)
    {
        if (jobSet == 0)
            return;
        ProcessEntry? process = denial.Process;
        string path = process?.ExecutableText is { Length: > 0 } exe && exe.StartsWith('/') ? exe : denial.Path ?? "";
        string? sha = null;
        ApprovalRequest? request = Raise(ApprovalRequest.KeyOf(ApprovalKind.Program, jobSet, [], 0, 0, file), jobSet, 1, nowNs, section, () =>
        {
            sha = HashOf(path, file);
            return new ApprovalRequest
            {
                Id = ApprovalRequest.NewId(),
                Kind = ApprovalKind.Program,
                JobSet = jobSet,
                JobId = process?.Membership.Id,
                Section = section.Name,
                SectionSource = section.Source,
                ProgramPath = path,
                ProgramFile = file,
                Sha256 = sha,
                Pid = process?.Pid ?? 0,
                StartTicks = process?.StartTicks ?? 0,
                ProcessName = process?.NameText ?? "",
                ProcessExecutable = process?.ExecutableText ?? "",
                Lineage = LineageOf(process),
            };
        });
        if (request is null)
            return;
        denial.ApprovalId = request.Id;
        denial.ApprovalExpiresUnixMs = request.ExpiresUnixMs;
        denial.Sha256 ??= sha;
    }

    /// <summary>Whether any program is approved now: only then are a confined job's programs hashed for the gate.</summary>
    public bool HasProgramApprovals => byKey.Values.Any(r => r.Kind == ApprovalKind.Program && r.State == ApprovalState.Approved);

    /// <summary>The SHA-256 <paramref name="file"/> was approved with for job set <paramref name="jobSet"/>; null when it is not approved.</summary>
    public string? ApprovedSha256(uint jobSet, FileId? file) =>
        file is { } f && byKey.TryGetValue(ApprovalRequest.KeyOf(ApprovalKind.Program, jobSet, [], 0, 0, f), out ApprovalRequest? r) && r.State == ApprovalState.Approved ? r.Sha256 : null;

    /// <summary>
    /// An approved program ran with other bytes (<paramref name="sha256"/>): its file was rewritten in place.
    /// The approval ends (the kernel kills its next exec again); the action event waits in <see cref="TakeQueued"/>.
    /// </summary>
    public void EndChangedProgram(uint jobSet, FileId file, string sha256, long nowNs)
    {
        if (!byKey.TryGetValue(ApprovalRequest.KeyOf(ApprovalKind.Program, jobSet, [], 0, 0, file), out ApprovalRequest? r) || r.State != ApprovalState.Approved)
            return;
        End(r);
        queued.Add(Event("approval-ended", true, $"approval {r.Id} of {r.What} for job {r.JobId ?? "?"} ended: the file now has other bytes (sha256 {sha256})", r, "ended", null, null, nowNs));
    }

    /// <summary>Action events made outside <see cref="Expire"/> and <see cref="Decide"/> (an approved file changed), taken once.</summary>
    public List<ActionEvent> TakeQueued()
    {
        List<ActionEvent> taken = [.. queued];
        queued.Clear();
        return taken;
    }

    /// <summary>Whether <paramref name="file"/> is approved for job set <paramref name="jobSet"/> now (the sensor's hash judgement spares it too).</summary>
    public bool ProgramApproved(uint jobSet, FileId? file) =>
        file is { } f && byKey.TryGetValue(ApprovalRequest.KeyOf(ApprovalKind.Program, jobSet, [], 0, 0, f), out ApprovalRequest? r) && r.State == ApprovalState.Approved;

    /// <summary>
    /// A new request under <paramref name="key"/> made by <paramref name="make"/>, or null when one
    /// is pending or approved already (its count grows by <paramref name="count"/>), the key was
    /// denied within the expiry, or the capacity, or job <paramref name="jobSet"/>'s, is reached.
    /// </summary>
    private ApprovalRequest? Raise(string key, uint jobSet, ulong count, long nowNs, ConfineSection section, Func<ApprovalRequest> make)
    {
        if (byKey.TryGetValue(key, out ApprovalRequest? held))
        {
            held.Count += count;
            listChanged = true;
            return null;
        }
        if (refusedUntilNs.TryGetValue(key, out long until) && until > nowNs)
            return null;
        if (Full || byId.Values.Count(r => r.JobSet == jobSet) >= JobCapacity)
            return null;
        ApprovalRequest made = make();
        long wall = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var request = new ApprovalRequest
        {
            Id = UniqueId(),
            Kind = made.Kind,
            JobSet = made.JobSet,
            JobId = made.JobId,
            Section = made.Section,
            SectionSource = made.SectionSource,
            Pid = made.Pid,
            StartTicks = made.StartTicks,
            ProcessName = made.ProcessName,
            ProcessExecutable = made.ProcessExecutable,
            Lineage = made.Lineage,
            Address = made.Address,
            Port = made.Port,
            Protocol = made.Protocol,
            ProgramPath = made.ProgramPath,
            ProgramFile = made.ProgramFile,
            Sha256 = made.Sha256,
            Count = count,
            RaisedNs = nowNs,
            ExpiresNs = nowNs + (section.AskExpirySeconds * 1_000_000_000L),
            RaisedUnixMs = wall,
            ExpiresUnixMs = wall + (section.AskExpirySeconds * 1000L),
            State = ApprovalState.Pending,
        };
        byId[request.Id] = request;
        byKey[key] = request;
        listChanged = true;
        return request;
    }

    private string UniqueId()
    {
        string id;
        do
            id = ApprovalRequest.NewId();
        while (byId.ContainsKey(id));
        return id;
    }

    /// <summary>
    /// Carries out <paramref name="d"/>: an approval puts the destination or program on the job's
    /// approved list in the kernel at once; a deny closes the request. Returns the one line for the
    /// person, whether it was done, and the action event (null when the id is unknown).
    /// </summary>
    public (bool Done, string Line, ActionEvent? Action) Decide(ApprovalDecision d, long nowNs)
    {
        if (!byId.TryGetValue(d.Id, out ApprovalRequest? r) || r.State != ApprovalState.Pending)
            return (false, $"guard: no pending request {d.Id} (unknown, answered already, or expired)", null);
        uint person = d.SudoUid ?? d.FileOwner;
        if (!d.Approve)
        {
            Close(r);
            refusedUntilNs[r.Key] = nowNs + (r.ExpiresNs - r.RaisedNs);
            return (true, $"guard: denied {r.Id}: {r.What} for job {r.JobId ?? "?"}", Event("deny", true, $"denied {r.What} to job {r.JobId ?? "?"} (request {r.Id})", r, "denied", null, d, nowNs));
        }
        long untilNs = d.ForSeconds == 0 ? 0 : nowNs + (d.ForSeconds * 1_000_000_000L);
        long untilUnixMs = d.ForSeconds == 0 ? 0 : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + (d.ForSeconds * 1000L);
        string forText = d.ForSeconds == 0 ? "for the job's life" : $"for {Duration(d.ForSeconds)}";
        try
        {
            if (r.Kind == ApprovalKind.Destination)
                kernel.ApproveDestination(r.JobSet, r.Address, r.Port, r.Protocol, (ulong)untilNs);
            else
            {
                if (SameProgram(r) is { } changed)
                    return (false, $"guard: not approved {r.Id}: {changed}", Event("approve", false, $"refused to approve {r.What}: {changed}", r, "refused", null, d, nowNs));
                kernel.ApproveProgram(r.JobSet, r.ProgramFile!.Value, (ulong)untilNs);
            }
        }
        catch (SensorException e)
        {
            return (false, $"guard: not approved {r.Id}: {e.Message}", Event("approve", false, $"could not approve {r.What}: {e.Message}", r, "refused", null, d, nowNs));
        }
        r.State = ApprovalState.Approved;
        r.AllowedUntilNs = untilNs;
        r.AllowedUntilUnixMs = untilUnixMs;
        r.ApprovedBy = person;
        listChanged = true;
        return (true, $"guard: approved {r.Id}: {r.What} for job {r.JobId ?? "?"} {forText}",
            Event("approve", true, $"approved {r.What} for job {r.JobId ?? "?"} {forText}", r, "approved", untilUnixMs, d, nowNs));
    }

    /// <summary>Why the file at the request's path is not the program denied (another file there now, or other bytes); null when it is.</summary>
    private static string? SameProgram(ApprovalRequest r)
    {
        if (r.ProgramFile is not { } file || string.IsNullOrEmpty(r.ProgramPath))
            return "the program denied is not known by its file";
        if (r.Sha256 is null)
            return $"{r.ProgramPath} could not be read when it was denied: its SHA-256 is unknown";
        string? now = HashOf(r.ProgramPath, file);
        return now == r.Sha256 ? null : $"{r.ProgramPath} is no longer the file denied (another file there, or other bytes)";
    }

    /// <summary>
    /// Requests unanswered past their expiry, and approvals whose time or job ended: removed
    /// (from the kernel too), one action event each. Call about every second.
    /// </summary>
    public List<ActionEvent> Expire(long nowNs)
    {
        var events = new List<ActionEvent>();
        foreach (ApprovalRequest r in byId.Values.ToList())
        {
            if (r.ExpiredAt(nowNs))
            {
                Close(r);
                events.Add(Event("approval-expired", true, $"request {r.Id} for {r.What} of job {r.JobId ?? "?"} expired unanswered", r, "expired", null, null, nowNs));
            }
            else if (r.AllowEndedAt(nowNs) || (r.State == ApprovalState.Approved && !jobAlive(r.JobSet)))
            {
                string why = r.AllowEndedAt(nowNs) ? "its time ended" : "its job ended";
                End(r);
                events.Add(Event("approval-ended", true, $"approval {r.Id} of {r.What} for job {r.JobId ?? "?"} ended: {why}", r, "ended", null, null, nowNs));
            }
        }
        foreach (string key in refusedUntilNs.Where(kv => kv.Value <= nowNs).Select(kv => kv.Key).ToList())
            refusedUntilNs.Remove(key);
        return events;
    }

    /// <summary>Ends every approval (the sensor stops: approvals end with it), one action event each.</summary>
    public List<ActionEvent> EndAll(long nowNs)
    {
        var events = new List<ActionEvent>();
        foreach (ApprovalRequest r in byId.Values.ToList())
        {
            if (r.State == ApprovalState.Approved)
            {
                End(r);
                events.Add(Event("approval-ended", true, $"approval {r.Id} of {r.What} for job {r.JobId ?? "?"} ended: the sensor stopped", r, "ended", null, null, nowNs));
            }
            else
                Close(r);
        }
        return events;
    }

    /// <summary>Writes the list for <c>guard approvals</c> when it changed.</summary>
    public void Publish()
    {
        if (!listChanged)
            return;
        listChanged = false;
        ApprovalChannel.WriteList(byId.Values.OrderBy(r => r.RaisedNs));
    }

    private void End(ApprovalRequest r)
    {
        try
        {
            if (r.Kind == ApprovalKind.Destination)
                kernel.RevokeDestination(r.JobSet, r.Address, r.Port, r.Protocol);
            else if (r.ProgramFile is { } file)
                kernel.RevokeProgram(r.JobSet, file);
        }
        finally
        {
            Close(r);
        }
    }

    private void Close(ApprovalRequest r)
    {
        byId.Remove(r.Id);
        byKey.Remove(r.Key);
        listChanged = true;
    }

    private static ActionEvent Event(string action, bool succeeded, string message, ApprovalRequest r, string decision, long? untilUnixMs, ApprovalDecision? d, long nowNs) => new()
    {
        Action = action,
        Succeeded = succeeded,
        Message = message,
        OrderedBy = d is null ? "approval-gate" : "cli",
        OrderedByUid = d is null ? 0 : d.SudoUid ?? d.FileOwner,
        TimeNs = nowNs,
        Pids = r.Pid > 0 ? [r.Pid] : [],
        Approval = new ApprovalFacts(r.Id, r.Kind == ApprovalKind.Destination ? "destination" : "program", r.JobId, r.Section, r.What, r.Sha256, decision, untilUnixMs, d?.FileOwner, d?.SudoUid),
    };

    private static List<string> LineageOf(ProcessEntry? process)
    {
        var lineage = new List<string>();
        for (ProcessEntry? a = process?.Parent; a is not null && lineage.Count < LineageDepth; a = a.Parent)
            lineage.Add($"{a.Pid} {a.NameText}");
        return lineage;
    }

    /// <summary>The SHA-256 of the regular file at <paramref name="path"/> when it is <paramref name="file"/> (at most <see cref="ExecutableHashes.MaxBytes"/>); null otherwise.</summary>
    public static string? HashOf(string path, FileId file)
    {
        if (!path.StartsWith('/'))
            return null;
        using FileDescriptor? handle = FileDescriptor.OpenPathOnly(path, out _);
        if (handle?.Status(out _) is not { IsRegular: true } status || status.Id != file || status.Size > ExecutableHashes.MaxBytes)
            return null;
        using FileDescriptor? reading = handle.ReopenForReading(out _);
        if (reading is null)
            return null;
        using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(reading.Fd, ownsHandle: false), FileAccess.Read);
        try
        {
            return Sha256.HexOf(stream);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string Duration(long seconds) =>
        seconds % 3600 == 0 ? $"{seconds / 3600} h" : seconds % 60 == 0 ? $"{seconds / 60} min" : $"{seconds} s";

    /// <summary>A confine_denials key as a value with equality.</summary>
    private readonly record struct DenialKey(uint Section, uint Job, string Address, ushort Port, byte Protocol, byte What)
    {
        public static DenialKey Of(GuardConfineDenialKey k) =>
            new(k.Section, k.Job, Convert.ToHexString(k.Address), k.Port, k.Protocol, k.What);
    }
}
