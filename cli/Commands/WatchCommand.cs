using System.CommandLine;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;

namespace Guard.Cli.Commands;

public static class WatchCommand
{
    /// <summary>The names --type accepts, for the help and the usage error.</summary>
    private static readonly string TypeList = string.Join(", ", EventNames.SelectableTypes.Select(EventNames.Of));

    private static readonly Option<string> Output = new("--output", "-o")
    {
        Description = "json: ECS JSON lines; text: one readable line per event; auto: text on a terminal, else json",
        DefaultValueFactory = _ => "auto",
    };

    private static readonly Option<string?> Duration = new("--duration")
    {
        Description = "Stop after this long (90s, 5m, 1h); default: until Ctrl-C or SIGTERM",
    };

    private static readonly Option<int?> Pid = new("--pid")
    {
        Description = "Only this process and its descendants",
        CustomParser = r => int.TryParse(r.Tokens[0].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) && pid > 0
            ? pid
            : Refuse<int?>(r, $"--pid: '{r.Tokens[0].Value}' is not a process id (a whole number above 0)"),
    };

    private static readonly Option<string[]> Types = new("--type")
    {
        Description = $"Only these event types ({TypeList}); repeat or separate with commas",
        AllowMultipleArgumentsPerToken = true,
    };

    private static readonly Option<string?> Job = new("--job")
    {
        Description = "Only processes of this job (slurm:123, k8s-pod:UID, container:ID, systemd:UNIT)",
    };

    private static readonly Option<string[]> GpuDevices = new("--gpu-device")
    {
        Description = "Count this device as a GPU: MAJOR:MINOR, MAJOR:* or a /dev path (/uvm after the numbers: unified memory); default: NVIDIA devices from /proc/devices",
    };

    private static readonly Option<string?> GpuInterval = new("--gpu-interval")
    {
        Description = "How often GPUs are sampled through NVML (default 1s)",
    };

    private static readonly Option<string?> RingSize = new("--ring-size")
    {
        Description = "Kernel ring buffer size, a power of two (default 16M)",
    };

    private static readonly Option<string?> Heartbeat = new("--heartbeat")
    {
        Description = "Interval of the health metric event (default 10s)",
    };

    private static readonly Option<string?> StallLimit = new("--stall-limit")
    {
        Description = "Say so on stderr, and stop systemd's watchdog pings, when the ring has not been drained for this long (default 30s; WatchdogSec= shortens it)",
    };

    private static readonly Option<string?> PolicyFile = new("--policy")
    {
        Description = $"Policy laid over the built-in one (default: {Policy.SystemPath} when it exists)",
    };

    private static readonly Option<string[]> Redact = new("--redact")
    {
        Description = "More argument names whose values are hidden (added to password, token, secret, key, ...)",
        AllowMultipleArgumentsPerToken = true,
    };

    /// <summary>Reports a value an option's parser refuses (the line a person sees) and yields nothing.</summary>
    private static T? Refuse<T>(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default;
    }

    public static Command Create(IConsole console)
    {
        var command = new Command("watch", "Stream process, network and GPU events until Ctrl-C, SIGTERM or --duration.");
        Output.AcceptOnlyFromAmong("auto", "json", "text");
        foreach (Option option in new Option[] { Output, Duration, Pid, Types, Job, GpuDevices, GpuInterval, RingSize, Heartbeat, StallLimit, Redact, PolicyFile })
            command.Options.Add(option);
        command.SetAction((parse, cancellation) => Task.FromResult(Run(parse, console, cancellation)));
        return command;
    }

    private static SensorOptions Options(ParseResult parse, out TimeSpan? duration)
    {
        duration = null;
        if (parse.GetValue(Duration) is { } d)
        {
            if (!ValueParsers.TryParseDuration(d, out TimeSpan parsed))
                throw new UsageException($"--duration: '{d}' is not a duration (try 30s, 5m, 1h)");
            duration = parsed;
        }
        var types = new HashSet<EventType>();
        foreach (string name in (parse.GetValue(Types) ?? []).SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries)))
        {
            if (!EventNames.TryParseSelectable(name, out EventType type))
                throw new UsageException($"--type: '{name}' is not an event type ({TypeList})");
            types.Add(type);
        }
        int ringBytes = KernelOptions.DefaultRingBufferBytes;
        if (parse.GetValue(RingSize) is { } ring && (!ValueParsers.TryParseSize(ring, out ringBytes) || !int.IsPow2(ringBytes) || ringBytes < Environment.SystemPageSize))
            throw new UsageException($"--ring-size: '{ring}' must be a power of two of at least {Environment.SystemPageSize} bytes (4K, 16M)");
        TimeSpan heartbeat = TimeSpan.FromSeconds(10);
        if (parse.GetValue(Heartbeat) is { } hb && !ValueParsers.TryParseDuration(hb, out heartbeat))
            throw new UsageException($"--heartbeat: '{hb}' is not a duration");
        TimeSpan gpuInterval = TimeSpan.FromSeconds(1);
        if (parse.GetValue(GpuInterval) is { } gi && !ValueParsers.TryParseDuration(gi, out gpuInterval))
            throw new UsageException($"--gpu-interval: '{gi}' is not a duration");
        TimeSpan stallLimit = TimeSpan.FromSeconds(30);
        if (parse.GetValue(StallLimit) is { } sl && (!ValueParsers.TryParseDuration(sl, out stallLimit) || stallLimit < TimeSpan.FromMilliseconds(100)))
            throw new UsageException($"--stall-limit: '{sl}' is not a duration of at least 100ms");
        if (parse.GetValue(Job) is { } job && !Guard.Sensor.Processes.JobIds.IsWellFormed(job))
            throw new UsageException($"--job: '{job}' names no job; a job is {Guard.Sensor.Processes.JobIds.Formats}");

        return new SensorOptions
        {
            Policy = PolicyLoader.Load(parse.GetValue(PolicyFile)),
            Kernel = new KernelOptions
            {
                RingBufferBytes = ringBytes,
                GpuDevices = ValueParsers.ParseGpuDevices(parse.GetValue(GpuDevices)),
            },
            Filter = new EventFilter
            {
                Types = types.Count > 0 ? types : EventFilter.DefaultTypes,
                Pid = parse.GetValue(Pid),
                Job = parse.GetValue(Job),
            },
            HeartbeatInterval = heartbeat,
            GpuSampleInterval = gpuInterval,
            StallLimit = stallLimit,
        };
    }

    private static int Run(ParseResult parse, IConsole console, CancellationToken cancellation)
    {
        SensorOptions options = Options(parse, out TimeSpan? duration);
        string output = parse.GetValue(Output)!;
        bool json = output == "json" || (output == "auto" && console.IsOutputRedirected);
        var run = RunInfo.ForThisHost(GuardCli.Version);
        string[] extraWords = [.. (parse.GetValue(Redact) ?? []).SelectMany(w => w.Split(',', StringSplitOptions.RemoveEmptyEntries))];
        var redactor = new ArgumentRedactor(ArgumentRedactor.DefaultWords.Concat(extraWords));
        using IEventSink sink = json
            ? new JsonLinesSink(console.OpenStandardOutput(), new EcsEncoder(run, redactor))
            : new TextLinesSink(console.Out, new TextEncoder(run, redactor));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        if (duration is { } d)
            stop.CancelAfter(d);
        TextWriter error = console.Error;
        options = options with
        {
            ActionLog = new ActionLog(new EcsEncoder(run, redactor)),
            // From the watchdog's thread: the draining one is the one that is stuck.
            OnStall = late => error.WriteLine($"guard watch: warning: the ring has not been drained for {late.TotalSeconds:F0} s (a stdout nobody reads, or a hung call); events wait in the kernel and are lost once it fills; enforcement in the kernel goes on"),
        };
        using GuardSensor sensor = GuardSensor.Start(options, sink);
        // A signal (the caller's token) is honoured within a second, even if the sensor is stuck.
        var deadline = new StopDeadline(sensor);
        using CancellationTokenRegistration onSignal = cancellation.Register(deadline.Arm);
        foreach (string warning in sensor.Warnings)
            console.Error.WriteLine($"guard: warning: {warning}");
        Policy policy = options.Policy!;
        console.Error.WriteLine($"guard watch: policy {string.Join(" + ", policy.Sources)}, mode {(policy.Mode == PolicyMode.Enforce ? "enforce" : "audit")}");
        console.Error.WriteLine($"guard watch: {sensor.GpuStatus}");
        try
        {
            sensor.Run(stop.Token);
        }
        catch (IOException e) when (e.HResult == BrokenPipe)
        {
            // `guard watch | head -1`: the reader is gone, which ends the run like Ctrl-C.
        }
        catch
        {
            // A fault ends the run (a closed stdout, say): enforcement is handed over before it propagates.
            if (HandOver(sensor) is { } said)
                console.Error.WriteLine(said);
            throw;
        }
        string? handover = HandOver(sensor);
        WriteSummary(console.Error, sensor.Summary());
        if (handover is not null)
            console.Error.WriteLine(handover);
        deadline.Finished();
        return (int)ExitCode.Success;
    }

    /// <summary>EPIPE (asm-generic/errno-base.h): what a write to a pipe whose reader left fails with; .NET puts the errno in HResult.</summary>
    private const int BrokenPipe = 32;

    /// <summary>Hands the kernel's enforcement over to pinned programs; says what stays, or why nothing does.</summary>
    private static string? HandOver(GuardSensor sensor)
    {
        try
        {
            return sensor.HandOverEnforcement() is > 0 and int pinned
                ? $"guard watch: {pinned} enforcement programs stay, pinned under {EnforcementKernel.PinRoot}, until the next guard watch (guard detach --all removes them)"
                : null;
        }
        catch (SensorException e)
        {
            return $"guard watch: warning: could not hand enforcement over: {e.Message}";
        }
    }

    private static void WriteSummary(TextWriter error, SensorSummary s)
    {
        string byType = string.Join(", ", s.EventsByType.Select(kv => $"{EventNames.Of(kv.Key)} {kv.Value}"));
        error.WriteLine($"guard watch: {s.Duration.TotalSeconds:F1} s, {s.Events} events{(byType.Length > 0 ? $" ({byType})" : "")}, {s.Drops} records dropped, {s.DecodeFailures} undecodable");
        if (s.DetectorFaults.Count > 0)
            error.WriteLine($"guard watch: {s.DetectorFaults.Count} events went unjudged: a detector failed on them (latest: {s.DetectorFaults.Latest})");
        if (s.Drops > 0)
        {
            string drops = string.Join(", ", s.DropsByKind.Select((n, kind) => (n, kind)).Where(x => x.n > 0).Select(x => $"{EventNames.Of((RecordKind)x.kind)} {x.n}"));
            error.WriteLine($"guard watch: the ring buffer was full; lost records: {drops} (raise --ring-size)");
        }
        if (s.HashesDropped + s.HashesTimedOut > 0)
            error.WriteLine($"guard watch: executables not hashed: {s.HashesDropped} with the queue full, {s.HashesTimedOut} over the time limit");
        error.WriteLine($"guard watch: programs attached: {string.Join(", ", s.Attached.Select(a => a.Spec.Name))}");
        error.WriteLine($"guard watch: programs missing: {(s.Missing.Count == 0 ? "none" : string.Join("; ", s.Missing.Select(m => $"{m.Spec.Name} ({m.Reason})")))}");
        error.WriteLine("guard watch: detached");
    }
}
