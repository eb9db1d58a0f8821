using Guard.Sensor.Abi;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>A process on a GPU with its lineage, job root and what Guard makes of it.</summary>
public sealed record GpuUser(GpuProcessSample Sample, ProcessEntry? Process, ProcessEntry? JobRoot, string Verdict);

/// <summary>A device and who uses it.</summary>
public sealed record GpuDeviceReport(GpuDeviceSample Device, IReadOnlyList<GpuUser> Users);

/// <summary>
/// `guard gpu`'s view: NVML's devices and processes joined with each
/// process's lineage from /proc and judged as a running sensor would (job
/// roots found by lineage, since no kernel saw these processes start).
/// </summary>
public static class GpuUsers
{
    public static IReadOnlyList<GpuDeviceReport> Report(IReadOnlyList<GpuDeviceSample> devices, Policy policy, ProcessTable table)
    {
        var findings = new GpuIntruderFindings(policy);
        var roots = new HashSet<string>(policy.Jobs.Roots.Select(Comm.Of));
        var reports = new List<GpuDeviceReport>();
        foreach (GpuDeviceSample device in devices)
        {
            var users = new List<GpuUser>();
            foreach (GpuProcessSample sample in device.Processes)
            {
                ProcessEntry? process = table.Load(sample.Pid);
                ProcessEntry? root = process is null ? null : ProcessTable.JobRootByLineage(process, roots);
                if (process is not null)
                    process.JobRootPid = root?.Pid ?? 0;
                string verdict = process is null ? "exited"
                    : findings.Verdict(process) is { } why ? $"intruder: {why}"
                    : root is null ? "GPU service" : "worker";
                users.Add(new GpuUser(sample, process, root, verdict));
            }
            reports.Add(new GpuDeviceReport(device, users));
        }
        return reports;
    }
}
