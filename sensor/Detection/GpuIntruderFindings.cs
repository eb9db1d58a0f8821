using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// GPU work by a process that is not one of its training job's workers, or
/// by a process outside every job that is no GPU service; and, from NVML,
/// sustained SM use by a process with pool evidence, or a busy GPU no process
/// accounts for. A worker is what the job's launcher starts to run the job's
/// code: the root itself, launchers and interpreters below it with no shell in
/// between, and an interpreter a shell started on a script of the job's own
/// tree. Every rank under torchrun, deepspeed, accelerate or mpirun, and every
/// DataLoader worker, is one; a binary started through the job's shell, inline
/// code a shell ran, a staged executable, or a script from /tmp is not.
/// </summary>
public sealed class GpuIntruderFindings
{
    private static readonly HashSet<string> Shells = ["sh", "bash", "dash", "zsh", "ksh", "fish", "busybox"];
    private static readonly string[] SharedDirectories = ["/tmp/", "/var/tmp/", "/dev/shm/"];

    private readonly Policy policy;
    private readonly HashSet<string> roots;
    private readonly HashSet<string> services;
    private readonly HashSet<ProcessEntry> reported = [];
    private readonly Dictionary<ProcessEntry, long> busySince = [];
    private readonly Dictionary<string, long> unaccountedSince = [];

    public GpuIntruderFindings(Policy policy)
    {
        this.policy = policy;
        roots = [.. policy.Jobs.Roots.Select(Comm.Of)];
        services = [.. policy.Jobs.Services.Select(Comm.Of)];
    }

    /// <summary>Judges a process whose GPU counts moved: one alert per process, once it does GPU work that is not a worker's.</summary>
    public AlertEvent? OnGpuWork(ProcessEntry process, GpuActivity gpu, ProcessTable table, long timeNs)
    {
        GpuWork work = gpu.Work;
        if ((work & (GpuWork.Compute | GpuWork.Channel)) == 0)
            return null;
        var classes = new StringBuilder();
        foreach (uint id in gpu.Classes.Keys)
            classes.Append(classes.Length > 0 ? ", " : "").Append(GpuClasses.Find(id)?.Name ?? $"0x{id:x4}");
        return Judge(process, table, timeNs, new KeyValuePair<string, string>("work", work.ToString().ToLowerInvariant()), new KeyValuePair<string, string>("classes", classes.ToString()));
    }

    /// <summary>
    /// Judges a process NVML lists on a device: a non-worker is an intruder; a
    /// worker too once its SM use stays busy while it has pool evidence
    /// (a pool port or pool DNS query on its record).
    /// </summary>
    public AlertEvent? OnNvmlProcess(ProcessEntry process, GpuDeviceSample device, GpuProcessSample sample, ProcessTable table, long timeNs)
    {
        string memory = sample.UsedMemoryBytes is ulong bytes ? $"{bytes >> 20} MiB" : "memory unknown";
        string sm = sample.SmPercent is uint percent ? $", SM {percent}%" : "";
        var nvml = new KeyValuePair<string, string>("nvml", $"on GPU {device.Index} ({device.Name}, {device.Uuid}): {memory}{sm}");
        if (Judge(process, table, timeNs, nvml) is { } intruder)
            return intruder;
        if (Sustained(busySince, process, sample.SmPercent >= (uint)policy.Thresholds.GpuBusyPercent, timeNs)
            && PoolEvidence(process) is { Length: > 0 } pool && !reported.Contains(process) && policy.ActionFor(Detectors.GpuIntruder) != RuleAction.Off)
        {
            reported.Add(process);
            return new AlertEvent
            {
                Rule = Detectors.GpuIntruder.Name,
                Description = "sustained GPU compute by a process with pool evidence",
                RequestedAction = policy.ActionFor(Detectors.GpuIntruder),
                Evidence = [nvml, .. pool, new("executable", process.ExecutableText)],
                Process = process,
                TimeNs = timeNs,
            };
        }
        return null;
    }

    /// <summary>The pool DNS queries and pool-port connects on a process's record; its other weak evidence (--algo=ppo, staging) says nothing of pools.</summary>
    private static KeyValuePair<string, string>[] PoolEvidence(ProcessEntry process) =>
        process.WeakEvidence is { } seen ? [.. seen.Where(e => e.Key == Detectors.PoolDns.Name || e.Key == Detectors.PoolPort.Name)] : [];

    /// <summary>A device busy for the sustained time with no process on it that NVML can name (MIG aside): someone hides.</summary>
    public AlertEvent? OnDevice(GpuDeviceSample device, long timeNs)
    {
        bool busy = !device.Mig && device.Processes.Count == 0 && device.GpuPercent >= (uint)policy.Thresholds.GpuBusyPercent;
        if (!Sustained(unaccountedSince, device.Uuid, busy, timeNs) || policy.ActionFor(Detectors.GpuIntruder) == RuleAction.Off)
            return null;
        unaccountedSince[device.Uuid] = long.MaxValue; // once, until it is idle again
        return new AlertEvent
        {
            Rule = Detectors.GpuIntruder.Name,
            Description = "GPU busy with no known process accounting for it",
            RequestedAction = RuleAction.Alert, // no process to act on
            Evidence = [new("device", $"GPU {device.Index} ({device.Name}, {device.Uuid})"), new("utilization", $"{device.GpuPercent}% for {policy.Thresholds.GpuBusySeconds} s or more, no compute process")],
            TimeNs = timeNs,
        };
    }

    /// <summary>True once <paramref name="key"/> has been busy for the policy's sustained time; not busy resets it.</summary>
    private bool Sustained<TKey>(Dictionary<TKey, long> since, TKey key, bool busy, long timeNs)
        where TKey : notnull
    {
        if (!busy)
        {
            since.Remove(key);
            return false;
        }
        if (!since.TryGetValue(key, out long first))
        {
            since[key] = timeNs;
            return false;
        }
        return first != long.MaxValue && timeNs - first >= policy.Thresholds.GpuBusySeconds * 1_000_000_000L;
    }

    private AlertEvent? Judge(ProcessEntry process, ProcessTable table, long timeNs, params KeyValuePair<string, string>[] evidence)
    {
        if (policy.ActionFor(Detectors.GpuIntruder) == RuleAction.Off || reported.Contains(process))
            return null;
        table.EnsureDetails(process); // a process found in /proc at start has its arguments read now
        if (Verdict(process) is not { } why)
            return null;
        reported.Add(process);
        return new AlertEvent
        {
            Rule = Detectors.GpuIntruder.Name,
            Description = !process.Membership.InJob ? "GPU work outside every training job" : "GPU work by a process that is not one of its job's workers",
            RequestedAction = policy.ActionFor(Detectors.GpuIntruder),
            Evidence = [new("why", why), new("executable", process.ExecutableText), .. evidence],
            Process = process,
            TimeNs = timeNs,
        };
    }

    public void Forget(ProcessEntry process)
    {
        reported.Remove(process);
        busySince.Remove(process);
    }

    /// <summary>Whether anything is kept about <paramref name="process"/> (its report, its busy time): tests see it let go at exit.</summary>
    internal bool Remembers(ProcessEntry process) => reported.Contains(process) || busySince.ContainsKey(process);

    /// <summary>Why this process is no worker of its job, or null when it is one (or a GPU service).</summary>
    public string? Verdict(ProcessEntry process)
    {
        string name = process.NameText;
        if (services.Contains(name))
            return null;
        if (!process.Membership.InJob)
            return $"{name} uses a GPU outside every training job and is no GPU service";
        if (process.Staging is { } staging)
            return $"its executable is staged ({staging})";
        if (!roots.Contains(name))
            return $"{name} is neither a launcher nor an interpreter running the job's code";
        if (ForeignScript(process) is { } script)
            return $"it runs {script}, not the job's code";
        string? shell = process.ExecutedFrom is { } previous && Shells.Contains(Encoding.UTF8.GetString(previous))
            ? $"{Encoding.UTF8.GetString(previous)} ran it in place" : null;
        ProcessEntry? root = process.Pid == process.JobRootPid ? process : null;
        for (ProcessEntry? p = process.Parent; p is not null && root is null; p = p.Parent)
        {
            if (Shells.Contains(p.NameText))
                shell ??= $"{p.DisplayName}, pid {p.Pid}";
            else if (!roots.Contains(p.NameText))
                return $"it descends from {p.DisplayName} (pid {p.Pid}), which is not the job's launcher";
            if (p.Pid == process.JobRootPid)
                root = p;
        }
        // Through a shell, an interpreter is the job's only when it runs a script of the job's own tree
        // (an evaluation script run with shell=True); inline code or a script from elsewhere is not.
        if (shell is not null && !RunsScriptUnder(process, root?.WorkingDirectory))
            return $"it was started through a shell ({shell}) inside the job, running code from outside the job's tree";
        return null;
    }

    private static bool RunsScriptUnder(ProcessEntry process, string? tree)
    {
        if (tree is null || ScriptOf(process) is not { } script)
            return false;
        string path = !script.StartsWith('/') && process.WorkingDirectory is { } cwd ? Path.GetFullPath(Path.Join(cwd, script)) : script;
        return path.StartsWith(tree.TrimEnd('/') + "/", StringComparison.Ordinal);
    }

    /// <summary>The script an interpreter runs: its first argument that is no option; null for -c CODE and -m MODULE.</summary>
    private static string? ScriptOf(ProcessEntry process)
    {
        string[] args = Encoding.UTF8.GetString(process.Args).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        foreach (string arg in args.Skip(1))
        {
            if (arg is "-c" or "-m")
                return null;
            if (!arg.StartsWith('-'))
                return arg;
        }
        return null;
    }

    /// <summary>An interpreter's script when it sits in a world-writable directory: downloaded or staged, not the job's.</summary>
    private static string? ForeignScript(ProcessEntry process)
    {
        if (ScriptOf(process) is not { } script)
            return null;
        string path = !script.StartsWith('/') && process.WorkingDirectory is { } cwd ? Path.Join(cwd, script) : script;
        return SharedDirectories.Any(d => path.StartsWith(d, StringComparison.Ordinal)) ? path : null;
    }
}
