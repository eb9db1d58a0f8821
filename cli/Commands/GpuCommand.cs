using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;

namespace Guard.Cli.Commands;

/// <summary>`guard gpu`: nvidia-smi with lineage: devices, the processes on them, their jobs and Guard's verdict.</summary>
public static class GpuCommand
{
    private static readonly Option<string> Output = ActionOutput.CreateOption("one JSON document per refresh, {\"nvml\": {\"available\": false, \"reason\": ...}} without NVML");

    /// <summary>The older spelling of --output json, kept so scripts that use it go on working.</summary>
    private static readonly Option<bool> Json = new("--json")
    {
        Description = "Same as --output json",
        Hidden = true,
    };

    private static readonly Option<bool> Watch = new("--watch")
    {
        Description = "Refresh in place until Ctrl-C (default: print once)",
    };

    private static readonly Option<string?> Interval = new("--interval")
    {
        Description = "Refresh interval with --watch (default 1s)",
    };

    private static readonly Option<string?> PolicyFile = new("--policy")
    {
        Description = $"Policy laid over the built-in one, for the verdicts (default: {Policy.SystemPath} when it exists)",
    };

    public static Command Create(IConsole console)
    {
        var command = new Command("gpu", "GPUs and the processes on them, with utilisation, memory, lineage, job and verdict (NVML).");
        foreach (Option option in new Option[] { Output, Json, Watch, Interval, PolicyFile })
            command.Options.Add(option);
        command.SetAction((parse, cancellation) => Task.FromResult(Run(parse, console, cancellation)));
        return command;
    }

    private static int Run(ParseResult parse, IConsole console, CancellationToken cancellation)
    {
        TimeSpan interval = TimeSpan.FromSeconds(1);
        if (parse.GetValue(Interval) is { } text && !ValueParsers.TryParseDuration(text, out interval))
            throw new UsageException($"--interval: '{text}' is not a duration");
        bool json = parse.GetValue(Json) || ActionOutput.IsJson(parse, Output);
        Policy policy = PolicyLoader.Load(parse.GetValue(PolicyFile));
        using var nvml = new NvmlSource();
        if (!nvml.Available)
        {
            // A script reading JSON gets JSON, with the reason; a person gets the line.
            if (json)
                WriteUnavailable(console, nvml.Status);
            console.Error.WriteLine($"guard: {nvml.Status}");
            return (int)ExitCode.Failure;
        }
        do
        {
            var table = new ProcessTable(EntityIds.ForThisBoot(), new CgroupPaths(KernelMounts.FindCgroup2Root(), new CgroupJobs(policy.Jobs.Units)), new UserNames());
            IReadOnlyList<GpuDeviceReport> reports = GpuUsers.Report(nvml.Sample(), policy, table);
            if (json)
                WriteJson(console, reports);
            else
                WriteTable(console.Out, reports, clear: parse.GetValue(Watch));
        }
        while (parse.GetValue(Watch) && !cancellation.WaitHandle.WaitOne(interval));
        return (int)ExitCode.Success;
    }

    private static void WriteTable(TextWriter o, IReadOnlyList<GpuDeviceReport> reports, bool clear)
    {
        var text = new StringBuilder();
        if (clear)
            text.Append("\u001b[H\u001b[2J");
        foreach (GpuDeviceReport r in reports)
        {
            GpuDeviceSample d = r.Device;
            text.Append(CultureInfo.InvariantCulture, $"GPU {d.Index}  {d.Name}  {d.Uuid}  util {d.GpuPercent}%  memory {Gib(d.MemoryUsedBytes)}/{Gib(d.MemoryTotalBytes)} GiB");
            if (d.PowerMilliwatts is uint mw)
                text.Append(CultureInfo.InvariantCulture, $"  {mw / 1000} W");
            text.Append(d.Mig ? "  MIG on" : "").AppendLine();
            if (d.UtilizationNote is { } note)
                text.Append("  (").Append(note).AppendLine(")");
            if (r.Users.Count == 0)
            {
                text.AppendLine("  no processes");
                continue;
            }
            text.AppendLine("  PID       SM%  MEMORY    JOB ROOT              PROCESS                                   VERDICT");
            foreach (GpuUser u in r.Users)
            {
                string sm = u.Sample.SmPercent is uint s ? s.ToString(CultureInfo.InvariantCulture) : "-";
                string memory = u.Sample.UsedMemoryBytes is ulong b ? $"{b >> 20} MiB" : "-";
                string root = u.JobRoot is { } j ? $"{j.DisplayName} {j.Pid}" : "-";
                string process = u.Process is { } p ? Command(p) : "?";
                text.Append(CultureInfo.InvariantCulture, $"  {u.Sample.Pid,-9} {sm,3}  {memory,-9} {Clip(root, 20),-20}  {Clip(process, 40),-40}  {u.Verdict}").AppendLine();
            }
        }
        o.Write(text.ToString());
        o.Flush();
    }

    /// <summary>The document without NVML: no devices, and why (the library missing, the driver not loaded, ...).</summary>
    internal static void WriteUnavailable(IConsole console, string reason)
    {
        using Stream stdout = console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            w.WriteStartObject("nvml");
            w.WriteBoolean("available", false);
            w.WriteString("reason", reason);
            w.WriteEndObject();
            w.WriteStartArray("devices");
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    private static void WriteJson(IConsole console, IReadOnlyList<GpuDeviceReport> reports)
    {
        using Stream stdout = console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            w.WriteStartObject("nvml");
            w.WriteBoolean("available", true);
            w.WriteEndObject();
            w.WriteStartArray("devices");
            foreach (GpuDeviceReport r in reports)
            {
                GpuDeviceSample d = r.Device;
                w.WriteStartObject();
                w.WriteNumber("index", d.Index);
                w.WriteString("name", d.Name);
                w.WriteString("uuid", d.Uuid);
                w.WriteNumber("utilization_percent", d.GpuPercent);
                w.WriteNumber("memory_used_bytes", d.MemoryUsedBytes);
                w.WriteNumber("memory_total_bytes", d.MemoryTotalBytes);
                if (d.PowerMilliwatts is uint mw)
                    w.WriteNumber("power_watts", mw / 1000.0);
                w.WriteBoolean("mig", d.Mig);
                if (d.UtilizationNote is { } note)
                    w.WriteString("note", note);
                w.WriteStartArray("processes");
                foreach (GpuUser u in r.Users)
                {
                    w.WriteStartObject();
                    w.WriteNumber("pid", u.Sample.Pid);
                    if (u.Process is { } p)
                    {
                        w.WriteString("entity_id", p.EntityId);
                        w.WriteString("command", Command(p));
                    }
                    if (u.Sample.UsedMemoryBytes is ulong b)
                        w.WriteNumber("memory_bytes", b);
                    if (u.Sample.SmPercent is uint sm)
                        w.WriteNumber("sm_percent", sm);
                    if (u.JobRoot is { } j)
                        w.WriteNumber("job_root_pid", j.Pid);
                    if (u.Process?.Membership.Id is { } job)
                        w.WriteString("job", job);
                    w.WriteString("verdict", u.Verdict);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    private static string Command(ProcessEntry p) => Printable.Of(p.Args.Length > 0 ? Encoding.UTF8.GetString(p.Args).Replace('\0', ' ') : p.NameText);

    private static string Gib(ulong bytes) => (bytes / (double)(1UL << 30)).ToString("F1", CultureInfo.InvariantCulture);

    private static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "~";
}
