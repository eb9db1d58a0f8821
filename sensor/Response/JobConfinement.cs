using System.Globalization;
using System.Net;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// What confines one job, for <c>guard confine show JOB</c>: the section the
/// policy gives it (or the kernel confines it by), its mode, allow list and
/// resolvers, whether the kernel confines it now, and what its own DNS
/// answers allow it now. Reads only.
/// </summary>
public static class JobConfinement
{
    /// <summary>
    /// The lines describing job <paramref name="jobId"/> (slurm:N, k8s-pod:UID,
    /// container:ID, systemd:UNIT, tree:ENTITY_ID or tree:PID) under
    /// <paramref name="policy"/>, the cgroup2 hierarchy at <paramref name="cgroupRoot"/>
    /// and the pinned confinement; null when no such job is on this host.
    /// Throws <see cref="SensorException"/> when the pinned maps cannot be read.
    /// </summary>
    public static List<string>? Describe(string jobId, Policy policy, string cgroupRoot)
    {
        var rules = new ConfineRules(policy);
        using ConfineKernel? kernel = ConfineKernel.OpenPinned();
        GuardConfineJob? inKernel;
        string where;
        int firstPid;
        if (jobId.StartsWith(JobMembership.TreeKind + ":", StringComparison.Ordinal))
        {
            if (TreeRoot(jobId[(JobMembership.TreeKind.Length + 1)..]) is not { } root)
                return null;
            firstPid = root.Pid;
            where = $"process tree under pid {root.Pid}";
            inKernel = kernel?.JobOfProcess(root.Pid, root.StartTicks);
        }
        else
        {
            var cgroupfs = new Cgroupfs(cgroupRoot);
            if (cgroupfs.FindJob(jobId) is not { } path || cgroupfs.IdOf(path) is not { } id)
                return null;
            List<int> members = cgroupfs.Processes(path);
            firstPid = members.Count > 0 ? members.Min() : 0;
            where = $"cgroup {path} (id {id})";
            inKernel = kernel?.JobOfCgroup(id);
        }
        (uint uid, uint gid) = IdsOf(firstPid);
        ConfineSection? section = inKernel is { } k
            ? rules.SectionOfSet(k.Section)
            : rules.SectionFor(jobId, null, uid, gid, n => ConfineRules.IdFromFile(n, "/etc/passwd"), n => ConfineRules.IdFromFile(n, "/etc/group"));
        var lines = new List<string>();
        if (inKernel is { } confined)
            lines.Add($"job {jobId}: confined now ({where}; kernel rule set {confined.Section}, own set {confined.Job}, mode {ModeName((ConfineKernelMode)confined.Mode)})");
        else
            lines.Add($"job {jobId}: not confined now ({where}){(section is null ? "" : "; a running guard watch confines it at its next exec")}");
        if (section is null)
        {
            lines.Add(inKernel is null
                ? "  no [[confine]] section of the policy read selects it"
                : $"  the policy read has no section for kernel rule set {inKernel.Value.Section}: it was confined under another policy (name the running guard watch's with --policy)");
            return lines;
        }
        lines.Add($"  section: {section.Name} ({section.Source}), mode {section.Mode.ToString().ToLowerInvariant()}");
        lines.Add($"  resolvers: {(section.Resolvers.Count == 0 ? "none" : string.Join(", ", section.Resolvers) + " (UDP 53 answers read for names)")}");
        if (section.Egress is not { } egress)
            lines.Add("  egress: not confined by this section");
        else
        {
            lines.Add($"  egress allow: {(egress.Addresses.Count + egress.Names.Count == 0 ? "nothing" : string.Join(", ", egress.Addresses.Select(a => a.Text).Concat(egress.Names.Select(n => n.Text))))}");
            if (egress.Names.Count > 0)
                lines.Add("  names are allowed by the addresses the job's own DNS answers give, for the record's TTL (at least 30 s, at most 1 h)");
        }
        lines.Add(section.Exec is { } exec
            ? $"  exec deny: {Rules(exec.Deny)}; allow: {Rules(exec.Allow)}"
            : "  exec: not confined by this section");
        lines.Add(section.Gpu is { } gpu
            ? $"  gpu: devices {(gpu.Devices.Count == 0 ? "none" : string.Join(", ", gpu.Devices))} only"
            : "  gpu: not confined by this section");
        if (inKernel is { Job: not 0 } own && kernel is not null)
        {
            ulong now = (ulong)Libc.NowNs(Libc.ClockBoottime);
            foreach ((GuardConfineKey key, GuardConfinePorts ports) in kernel.Entries().Where(e => e.Key.Set == own.Job))
            {
                if (ports.ExpiresNs != 0 && ports.ExpiresNs < now)
                    continue;
                lines.Add($"  allowed now by its DNS answers: {Address(key)} ports {Ports(ports)}{(ports.ExpiresNs == 0 ? "" : $" for {(ports.ExpiresNs - now) / 1_000_000_000} s more")}");
            }
        }
        return lines;
    }

    private static string Rules(IReadOnlyList<ExecRule> rules) => rules.Count == 0 ? "nothing" : string.Join(", ", rules.Select(r => r.Text));

    private static string ModeName(ConfineKernelMode mode) => mode switch { ConfineKernelMode.Audit => "audit", ConfineKernelMode.Ask => "ask", _ => "enforce" };

    /// <summary>The root of tree:ENTITY_ID (BOOT-STARTTICKS-PID) or tree:PID when it runs; null otherwise.</summary>
    private static (int Pid, long StartTicks)? TreeRoot(string id)
    {
        string[] parts = id.Split('-');
        if (!int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0 || !ProcfsReader.TryReadStat(pid, out ProcfsStat stat))
            return null;
        if (parts.Length == 3 && (!long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks) || ticks != stat.StartTicks))
            return null;
        return parts.Length is 1 or 3 ? (pid, stat.StartTicks) : null;
    }

    /// <summary>The real uid and gid of <paramref name="pid"/> from /proc/PID/status; uint.MaxValue each when it cannot be read (matches no user or group).</summary>
    private static (uint Uid, uint Gid) IdsOf(int pid)
    {
        uint uid = uint.MaxValue, gid = uint.MaxValue;
        try
        {
            foreach (string line in pid > 0 ? File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status") : [])
            {
                string[] f = line.Split('\t', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length > 1 && f[0] == "Uid:")
                    uid = uint.TryParse(f[1], CultureInfo.InvariantCulture, out uint u) ? u : uid;
                else if (f.Length > 1 && f[0] == "Gid:")
                    gid = uint.TryParse(f[1], CultureInfo.InvariantCulture, out uint g) ? g : gid;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // gone: no user, no group
        }
        return (uid, gid);
    }

    private static string Address(GuardConfineKey key)
    {
        var ip = new IPAddress(((ReadOnlySpan<byte>)key.Address).ToArray());
        int prefix = (int)key.PrefixLength - 32;
        if (ip.IsIPv4MappedToIPv6)
            return prefix == 128 ? ip.MapToIPv4().ToString() : $"{ip.MapToIPv4()}/{prefix - 96}";
        return prefix == 128 ? ip.ToString() : $"{ip}/{prefix}";
    }

    private static string Ports(GuardConfinePorts ports)
    {
        var ranges = new List<string>();
        for (int i = 0; i < (int)Math.Min(ports.Count, GuardConfinePorts.Capacity); i++)
        {
            GuardPortRange r = ports.Ranges[i];
            string protocol = r.Protocol switch { 6 => "tcp/", 17 => "udp/", _ => "" };
            ranges.Add(r.Low == 0 && r.High == ushort.MaxValue ? $"{protocol}*" : r.Low == r.High ? $"{protocol}{r.Low}" : $"{protocol}{r.Low}-{r.High}");
        }
        return string.Join(",", ranges);
    }
}
