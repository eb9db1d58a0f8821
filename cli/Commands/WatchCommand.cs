using System.CommandLine;
using System.Runtime.InteropServices;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;

namespace Guard.Cli.Commands;

public static class WatchCommand
{
    /// <summary>The names --type accepts, for the help and the usage error.</summary>
    private static readonly string TypeList = string.Join(", ", EventNames.SelectableTypes.Select(EventNames.Of));

    private static readonly Option<string> Output = new("--output", "-o")
    {
        Description = "Events on stdout. json: ECS JSON lines; text: one readable line per event; auto: text on a terminal, else json; none: nothing on stdout (with --file or --syslog)",
        DefaultValueFactory = _ => "auto",
    };

    private static readonly Option<string?> ConfigFile = new("--config")
    {
        Description = $"Service configuration: outputs, intervals, the policy's path; an option given here wins over it (default: ${ServiceConfig.PathVariable}, else {ServiceConfig.SystemPath} when it exists)",
    };

    private static readonly Option<string?> FilePath = new("--file")
    {
        Description = "Also write ECS JSON lines to this file (mode 0600, rotated by --file-max-size and --file-max-age, reopened on SIGHUP; default: no file)",
    };

    private static readonly Option<string?> FileMaxSize = new("--file-max-size")
    {
        Description = "Rotate the --file before it passes this size (100M default; 0: never, for logrotate)",
    };

    private static readonly Option<string?> FileMaxAge = new("--file-max-age")
    {
        Description = "Rotate the --file once it is this old (1d, 12h; default: never)",
    };

    private static readonly Option<string?> FileBackups = new("--file-backups")
    {
        Description = $"How many rotated --file backups are kept, gzip-compressed as FILE.1.gz (newest) to FILE.N.gz (default {DefaultBackups})",
    };

    private static readonly Option<string?> Syslog = new("--syslog")
    {
        Description = $"Also send events to syslog, RFC 5424 with the ECS JSON line as message: {SyslogAddress.Forms} (tcp frames by octet counting, RFC 6587; default: no syslog)",
    };

    private static readonly Option<string?> SyslogFacility = new("--syslog-facility")
    {
        Description = $"The syslog facility (default {DefaultFacility}; {string.Join(", ", SyslogHeader.Facilities)})",
    };

    private static readonly Option<string?> OutputQueue = new("--output-queue")
    {
        Description = "Each output's queue: past it, an output that cannot keep up drops lines, counted (default 4M)",
    };

    private const int DefaultBackups = 5;
    private const string DefaultFacility = "daemon";
    private const long DefaultMaxFileBytes = 100L << 20;

    /// <summary>How long outputs may take, at a stop, to write what they hold: within StopDeadline's 600 ms with the final drain and the hand-over.</summary>
    private static readonly TimeSpan OutputDrainWait = TimeSpan.FromMilliseconds(150);

    private static readonly Option<string?> Duration = new("--duration")
    {
        Description = "Stop after this long (90s, 5m, 1h, 1h30m); default: until Ctrl-C or SIGTERM",
    };

    private static readonly Option<bool> Quiet = new("--quiet", "-q")
    {
        Description = "Keep stderr to errors and warnings: no start lines, no stop summary (default: both)",
    };

    private static readonly Option<int?> Pid = new("--pid")
    {
        Description = "Only this process and its descendants (default: every process)",
        CustomParser = r => int.TryParse(r.Tokens[0].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) && pid > 0
            ? pid
            : Refuse<int?>(r, $"--pid: '{r.Tokens[0].Value}' is not a process id (a whole number above 0)"),
    };

    private static readonly Option<string[]> Types = new("--type")
    {
        Description = $"Only these event types ({TypeList}); repeat or separate with commas (default: all but fork; alerts and actions always)",
        AllowMultipleArgumentsPerToken = true,
    };

    private static readonly Option<string?> Job = new("--job")
    {
        Description = "Only processes of this job (slurm:123, k8s-pod:UID, container:ID, systemd:UNIT, tree:ENTITY_ID; default: every job and none)",
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
        Description = "More argument names whose values are hidden (added to password, token, secret, key, ...; default: none added)",
        AllowMultipleArgumentsPerToken = true,
    };

    private static readonly Option<string?> Metrics = new("--metrics")
    {
        Description = $"Serve Prometheus metrics (/metrics) and /healthz on ADDRESS: PORT (on 127.0.0.1), IP:PORT or [IPV6]:PORT; default: off (e.g. --metrics {MetricsServer.DefaultPort})",
    };

    private static readonly Option<string?> AccessGroup = new("--access-group")
    {
        Description = "Open `guard status` (published every 5 s), the --file and the action log to this group, read-only (acting commands stay root's): the run directory and the --file's directory become root:GROUP, mode 2750, their files 0640 (default: root alone)",
    };

    private static readonly Option<string?> DropAlertRate = new("--drop-alert-rate")
    {
        Description = "Alert when the kernel's ring loses more than N records a second (N or N/s), at most once a minute with the count; default: off",
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
        Output.AcceptOnlyFromAmong("auto", "json", "text", "none");
        foreach (Option option in new Option[] { Output, Quiet, Duration, Pid, Types, Job, GpuDevices, GpuInterval, RingSize, Heartbeat, StallLimit, Redact, PolicyFile, Metrics, DropAlertRate, AccessGroup, ConfigFile, FilePath, FileMaxSize, FileMaxAge, FileBackups, Syslog, SyslogFacility, OutputQueue })
            command.Options.Add(option);
        command.SetAction((parse, cancellation) => Task.FromResult(Run(parse, console, cancellation)));
        return command;
    }

    /// <summary>Where the service's outputs go, as the options and the configuration say.</summary>
    private sealed record OutputSettings(string Stdout, string? File, FileRotation Rotation, SyslogAddress? Syslog, string Facility, int QueueBytes);

    /// <summary>
    /// An option's value: from the command line when given there, else from the
    /// configuration file; <see cref="Where"/> starts its error line
    /// (--heartbeat, or file:line:key).
    /// </summary>
    private sealed record Setting(IReadOnlyList<string> Values, string Where, ConfigValue? FromFile)
    {
        public string Value => Values[0];

        /// <summary>Refuses the value: a usage error for an option, file:line:key for the configuration.</summary>
        public Exception Refuse(string reason) => FromFile is { } v
            ? new ConfigException([new ConfigError(v.File, v.Line, v.Key, reason)])
            : new UsageException($"{Where}: {reason}");
    }

    private static Setting? Get(ParseResult parse, Option<string?> option, ServiceConfig? config) =>
        parse.GetResult(option) is { Implicit: false } && parse.GetValue(option) is { } given
            ? new Setting([given], option.Name, null)
            : config?.For(option.Name) is { } v ? new Setting(v.Values, v.Where, v) : null;

    private static Setting? Get(ParseResult parse, Option<string[]> option, ServiceConfig? config) =>
        parse.GetResult(option) is { Implicit: false } && parse.GetValue(option) is { Length: > 0 } given
            ? new Setting(given, option.Name, null)
            : config?.For(option.Name) is { } v ? new Setting(v.Values, v.Where, v) : null;

    private static TimeSpan DurationOf(Setting? s, TimeSpan fallback, TimeSpan? atLeast = null)
    {
        if (s is null)
            return fallback;
        if (!ValueParsers.TryParseDuration(s.Value, out TimeSpan parsed) || parsed < (atLeast ?? TimeSpan.Zero))
            throw s.Refuse(atLeast is { } min ? $"'{s.Value}' is not a duration of at least {min.TotalMilliseconds:F0}ms" : $"'{s.Value}' is not a duration");
        return parsed;
    }

    private static SensorOptions Options(ParseResult parse, ServiceConfig? config, out TimeSpan? duration, out OutputSettings outputs)
    {
        duration = null;
        if (parse.GetValue(Duration) is { } d)
        {
            if (!ValueParsers.TryParseDuration(d, out TimeSpan parsed))
                throw new UsageException($"--duration: '{d}' is not a duration (try 30s, 5m, 1h)");
            duration = parsed;
        }
        var types = new HashSet<EventType>();
        if (Get(parse, Types, config) is { } typeSetting)
        {
            foreach (string name in typeSetting.Values.SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries)))
            {
                if (!EventNames.TryParseSelectable(name, out EventType type))
                    throw typeSetting.Refuse($"'{name}' is not an event type ({TypeList})");
                types.Add(type);
            }
        }
        int ringBytes = KernelOptions.DefaultRingBufferBytes;
        if (Get(parse, RingSize, config) is { } ring && (!ValueParsers.TryParseSize(ring.Value, out ringBytes) || !int.IsPow2(ringBytes) || ringBytes < Environment.SystemPageSize))
            throw ring.Refuse($"'{ring.Value}' must be a power of two of at least {Environment.SystemPageSize} bytes (4K, 16M)");
        TimeSpan heartbeat = DurationOf(Get(parse, Heartbeat, config), TimeSpan.FromSeconds(10));
        TimeSpan gpuInterval = DurationOf(Get(parse, GpuInterval, config), TimeSpan.FromSeconds(1));
        TimeSpan stallLimit = DurationOf(Get(parse, StallLimit, config), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100));
        if (parse.GetValue(Job) is { } job && !Guard.Sensor.Processes.JobIds.IsWellFormed(job))
            throw new UsageException($"--job: '{job}' names no job; a job is {Guard.Sensor.Processes.JobIds.Formats}");
        IReadOnlyList<GpuDevice> gpus;
        Setting? gpuSetting = Get(parse, GpuDevices, config);
        try
        {
            gpus = ValueParsers.ParseGpuDevices(gpuSetting is null ? null : [.. gpuSetting.Values]);
        }
        catch (UsageException e) when (gpuSetting?.FromFile is not null)
        {
            throw gpuSetting.Refuse(e.Message.Replace("--gpu-device: ", "", StringComparison.Ordinal));
        }
        outputs = OutputsFrom(parse, config);

        System.Net.IPEndPoint? metrics = null;
        if (Get(parse, Metrics, config) is { } address && !MetricsServer.TryParseAddress(address.Value, out metrics))
            throw address.Refuse($"'{address.Value}' is not PORT, IP:PORT or [IPV6]:PORT (try {MetricsServer.DefaultPort} or 127.0.0.1:{MetricsServer.DefaultPort})");
        long dropAlertRate = 0;
        if (Get(parse, DropAlertRate, config) is { } rate && !TryParseRate(rate.Value, out dropAlertRate))
            throw rate.Refuse($"'{rate.Value}' is not a whole number of records a second of at least 1 (try 100 or 100/s)");
        string? policyFile = Get(parse, PolicyFile, config)?.Value;

        return new SensorOptions
        {
            Policy = PolicyLoader.Load(policyFile, out string policySha256),
            PolicySha256 = policySha256,
            ReloadPolicy = () => (PolicyLoader.Load(policyFile, out string sha256), sha256),
            MetricsEndpoint = metrics,
            DropAlertRate = dropAlertRate,
            Kernel = new KernelOptions
            {
                RingBufferBytes = ringBytes,
                GpuDevices = gpus,
            },
            Filter = new EventFilter
            {
                Types = types.Count > 0 ? types : EventFilter.DefaultTypes,
                Pid = parse.GetValue(Pid),
                Job = parse.GetValue(Job) is { } jobId ? Guard.Sensor.Processes.JobIds.Canonical(jobId) : null,
            },
            HeartbeatInterval = heartbeat,
            GpuSampleInterval = gpuInterval,
            StallLimit = stallLimit,
        };
    }

    /// <summary>"N" or "N/s", N a whole number of at least 1.</summary>
    private static bool TryParseRate(string text, out long perSecond)
    {
        string n = text.EndsWith("/s", StringComparison.Ordinal) ? text[..^2] : text;
        return long.TryParse(n, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out perSecond) && perSecond >= 1;
    }

    private static OutputSettings OutputsFrom(ParseResult parse, ServiceConfig? config)
    {
        string stdout = parse.GetValue(Output)!;
        if (parse.GetResult(Output) is not { Implicit: false } && config?.For(Output.Name) is { } fromFile)
        {
            stdout = fromFile.Value;
            if (stdout is not ("auto" or "json" or "text" or "none"))
                throw new ConfigException([new ConfigError(fromFile.File, fromFile.Line, fromFile.Key, $"'{stdout}' is not auto, json, text or none")]);
        }
        long maxBytes = DefaultMaxFileBytes;
        if (Get(parse, FileMaxSize, config) is { } size && !(size.Value == "0" ? (maxBytes = 0) == 0 : ValueParsers.TryParseByteCount(size.Value, out maxBytes) && maxBytes >= 4096))
            throw size.Refuse($"'{size.Value}' is not a size of at least 4K (64K, 100M, 1G; 0: never)");
        Setting? ageSetting = Get(parse, FileMaxAge, config);
        TimeSpan? maxAge = ageSetting is null ? null : DurationOf(ageSetting, default, TimeSpan.FromSeconds(1));
        int backups = DefaultBackups;
        if (Get(parse, FileBackups, config) is { } b && (!int.TryParse(b.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out backups) || backups > 10_000))
            throw b.Refuse($"'{b.Value}' is not a number of backups (0 to 10000)");
        SyslogAddress? syslog = null;
        if (Get(parse, Syslog, config) is { } address && !SyslogAddress.TryParse(address.Value, out syslog))
            throw address.Refuse($"'{address.Value}' is not a syslog address ({SyslogAddress.Forms})");
        string facility = DefaultFacility;
        if (Get(parse, SyslogFacility, config) is { } f)
        {
            facility = f.Value;
            if (!SyslogHeader.Facilities.Contains(facility))
                throw f.Refuse($"'{facility}' is not a syslog facility ({string.Join(", ", SyslogHeader.Facilities)})");
        }
        int queueBytes = QueuedOutput.DefaultQueueBytes;
        if (Get(parse, OutputQueue, config) is { } q && (!ValueParsers.TryParseSize(q.Value, out queueBytes) || queueBytes < 64 << 10 || queueBytes > 1 << 30))
            throw q.Refuse($"'{q.Value}' is not a queue size from 64K to 1024M");
        string? file = Get(parse, FilePath, config)?.Value;
        if (stdout == "none" && file is null && syslog is null)
            throw new UsageException("--output none: with no --file or --syslog, events would go nowhere");
        return new OutputSettings(stdout, file, new FileRotation(maxBytes, maxAge, backups), syslog, facility, queueBytes);
    }

    private static int Run(ParseResult parse, IConsole console, CancellationToken cancellation)
    {
        ServiceConfig? config = ServiceConfig.Load(parse.GetValue(ConfigFile));
        SensorOptions options = Options(parse, config, out TimeSpan? duration, out OutputSettings settings);
        bool json = settings.Stdout == "json" || (settings.Stdout == "auto" && console.IsOutputRedirected);
        var run = RunInfo.ForThisHost(GuardCli.Version);
        IEnumerable<string> extraWords = Get(parse, Redact, config)?.Values.SelectMany(w => w.Split(',', StringSplitOptions.RemoveEmptyEntries)) ?? [];
        var redactor = new ArgumentRedactor(ArgumentRedactor.DefaultWords.Concat(extraWords));

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        if (duration is { } d)
            stop.CancelAfter(d);
        TextWriter error = console.Error;
        uint? group = null;
        if (Get(parse, AccessGroup, config) is { } access)
            group = SharedDirectory.GroupId(access.Value) ?? throw access.Refuse($"'{access.Value}' is not a group on this host (/etc/group), or is root's");
        // Before any file is opened: a file takes its mode and group from its directory.
        if (ShareDirectories(group, settings.File) is { } notShared)
            error.WriteLine(notShared);
        // --quiet: what is neither an error nor a warning (the start lines, the summary) is not said.
        TextWriter info = parse.GetValue(Quiet) ? TextWriter.Null : console.Error;
        using Stream stdout = console.OpenStandardOutput();
        bool colour = !json && TerminalColour.Wanted(console.IsOutputRedirected, Environment.GetEnvironmentVariable("NO_COLOR"), Environment.GetEnvironmentVariable("TERM"));
        using var outputs = new OutputSet(
            new EcsEncoder(run, redactor), new TextEncoder(run, redactor, colour),
            settings.Syslog is null ? null : new SyslogHeader(run, settings.Facility),
            line => error.WriteLine(line));
        if (settings.Stdout != "none")
        {
            // `guard watch | head -1`: the reader is gone, which ends the run like Ctrl-C.
            outputs.Add(new QueuedOutput(OutputNames.Stdout, new StreamTarget(stdout, onReaderGone: stop.Cancel), settings.QueueBytes), json ? OutputFormat.Json : OutputFormat.Text);
        }
        if (settings.File is { } file)
            outputs.Add(new QueuedOutput(OutputNames.File, new FileTarget(new RotatingFile(file, settings.Rotation)), settings.QueueBytes), OutputFormat.Json);
        if (settings.Syslog is { } syslog)
            outputs.Add(new QueuedOutput(OutputNames.Syslog, new SyslogTarget(syslog), settings.QueueBytes), OutputFormat.Syslog);
        QueuedOutput actions = outputs.Add(new QueuedOutput(OutputNames.ActionLog, ActionLog.Open(), settings.QueueBytes), OutputFormat.None);
        // SIGHUP reopens the files (logrotate's postrotate) instead of ending the process.
        using IDisposable hangup = HangupSignal.Add(outputs.Reopen);
        options = options with
        {
            ActionLog = new ActionLog(new EcsEncoder(run, redactor), actions),
            // From the watchdog's thread: the draining one is the one that is stuck.
            OnStall = late => error.WriteLine($"guard watch: warning: the ring has not been drained for {late.TotalSeconds:F0} s (a hung call); events wait in the kernel and are lost once it fills; enforcement in the kernel goes on"),
            OnReload = line => error.WriteLine(line),
            OnConfineNote = line => error.WriteLine(line),
        };
        using GuardSensor sensor = GuardSensor.Start(options, outputs);
        // A signal (the caller's token) is honoured within a second, even if the sensor is stuck.
        var deadline = new StopDeadline(sensor);
        using CancellationTokenRegistration onSignal = cancellation.Register(deadline.Arm);
        foreach (string warning in sensor.Warnings)
            console.Error.WriteLine($"guard: warning: {warning}");
        using var publisher = new StatusPublisher(group is not null, error);
        Policy policy = options.Policy!;
        if (config is not null)
            info.WriteLine($"guard watch: configuration {config.Path}");
        info.WriteLine($"guard watch: policy {string.Join(" + ", policy.Sources)}, mode {(policy.Mode == PolicyMode.Enforce ? "enforce" : "audit")}");
        info.WriteLine($"guard watch: {sensor.GpuStatus}");
        if (sensor.MetricsEndpoint is { } endpoint)
            info.WriteLine($"guard watch: metrics on http://{endpoint}/metrics and /healthz");
        info.WriteLine($"guard watch: outputs: {string.Join(", ", Describe(settings))}");
        try
        {
            sensor.Run(stop.Token);
        }
        catch
        {
            // A fault ends the run: enforcement is handed over before it propagates.
            if (HandOver(sensor) is { } said)
                (said.Contains("warning:", StringComparison.Ordinal) ? error : info).WriteLine(said);
            throw;
        }
        publisher.Dispose();
        string? handover = HandOver(sensor);
        // What the outputs hold is written before the summary: a stop loses no line that was queued.
        outputs.Complete(OutputDrainWait);
        WriteSummary(info, sensor.Summary(), outputs.Health);
        if (handover is not null)
            (handover.Contains("warning:", StringComparison.Ordinal) ? error : info).WriteLine(handover);
        deadline.Finished();
        return (int)ExitCode.Success;
    }

    /// <summary>
    /// Shares the run directory, and the --file's directory when it is
    /// Guard's own (made here, or named guard), with <paramref name="group"/>;
    /// without a group, the run directory is root's alone again. Returns a
    /// warning when the file's directory is someone else's and left as it is.
    /// </summary>
    /// <exception cref="IOException">A directory could not be made, or given its owner and mode.</exception>
    private static string? ShareDirectories(uint? group, string? file)
    {
        string run = RunDirectory.Ensure();
        if (group is not uint gid)
        {
            SharedDirectory.Unshare(run, 0x1ED); // 0755, as RunDirectory makes it
            return null;
        }
        SharedDirectory.Share(run, gid);
        if (file is null)
            return null;
        string dir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? "/";
        bool made = !Directory.Exists(dir);
        if (made && !OperatingSystem.IsWindows())
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (made || Path.GetFileName(dir) == "guard")
        {
            SharedDirectory.Share(dir, gid);
            return null;
        }
        return SharedDirectory.GroupOf(dir) == gid ? null
            : $"guard watch: warning: --access-group: {dir} is not Guard's own directory and is left as it is, so the group cannot read {file} (make {dir} root:{gid} mode 2750 to share it)";
    }

    /// <summary>Publishes `guard status` for the access group every <see cref="StatusCommand.PublishInterval"/>; takes it back when disposed.</summary>
    private sealed class StatusPublisher : IDisposable
    {
        private readonly Timer? timer;
        private readonly TextWriter error;
        private readonly Guard.Sensor.Response.Quarantines? quarantines;
        private readonly object gate = new();
        private bool stopped;
        private bool failureSaid;

        public StatusPublisher(bool shared, TextWriter error)
        {
            this.error = error;
            if (!shared)
            {
                StatusCommand.Unpublish();
                return;
            }
            quarantines = new Guard.Sensor.Response.Quarantines(KernelMounts.FindCgroup2Root());
            timer = new Timer(_ => Publish(), null, TimeSpan.Zero, StatusCommand.PublishInterval);
        }

        private void Publish()
        {
            lock (gate)
            {
                if (stopped)
                    return;
                try
                {
                    StatusCommand.Publish(quarantines!, Environment.ProcessId);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or SensorException)
                {
                    // Tried again at the next interval; said once.
                    if (!failureSaid)
                        error.WriteLine($"guard watch: warning: cannot publish the status for the access group: {e.Message}");
                    failureSaid = true;
                }
            }
        }

        public void Dispose()
        {
            lock (gate)
            {
                if (stopped)
                    return;
                stopped = true;
            }
            timer?.Dispose();
            lock (gate)
                StatusCommand.Unpublish();
        }
    }

    private static IEnumerable<string> Describe(OutputSettings s)
    {
        if (s.Stdout != "none")
            yield return $"stdout ({s.Stdout})";
        if (s.File is { } file)
        {
            FileRotation r = s.Rotation;
            string rotation = !r.Rotates ? "not rotated"
                : $"rotated{(r.MaxBytes > 0 ? $" at {r.MaxBytes / 1024} KiB" : "")}{(r.MaxAge is { } age ? $" after {age}" : "")}, {r.Backups} backups";
            yield return $"file {file} ({rotation})";
        }
        if (s.Syslog is { } syslog)
            yield return $"syslog {syslog} ({s.Facility})";
        yield return $"action log {ActionLog.DefaultPath}";
    }

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

    private static void WriteSummary(TextWriter error, SensorSummary s, IReadOnlyList<OutputHealth> outputs)
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
        error.WriteLine($"guard watch: outputs: {string.Join(", ", outputs.Select(o => $"{o.Name} {o.Written} written" + (o.Lost > 0 ? $", {o.Dropped} dropped unwritten (queue full, or still queued at the stop), {o.Failed} failed{(o.LastError is { } why ? $" ({why})" : "")}" : "")))}");
        error.WriteLine($"guard watch: programs attached: {string.Join(", ", s.Attached.Select(a => a.Spec.Name))}");
        error.WriteLine($"guard watch: programs missing: {(s.Missing.Count == 0 ? "none" : string.Join("; ", s.Missing.Select(m => $"{m.Spec.Name} ({m.Reason})")))}");
        error.WriteLine("guard watch: detached");
    }
}
