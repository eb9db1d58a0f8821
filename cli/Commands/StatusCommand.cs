using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>`guard status`: what is held, what Guard has in the kernel, and what it did lately.</summary>
public static class StatusCommand
{
    private const int RecentCount = 10;

    private static readonly Option<string> Output = ActionOutput.CreateOption("one JSON document");

    public static Command Create(IConsole console)
    {
        var command = new Command("status", "List quarantined jobs, the Guard programs and pins in the kernel, and recent actions. Carries out holds whose timeout has passed.");
        command.Options.Add(Output);
        command.SetAction(parse => Run(parse, console));
        return command;
    }

    /// <summary>What `guard watch` publishes for the access group: the text, and the JSON document.</summary>
    public const string PublishedText = "status.txt";

    /// <summary>The JSON document published beside <see cref="PublishedText"/>.</summary>
    public const string PublishedJson = "status.json";

    /// <summary>How often a running `guard watch` publishes its status for the access group.</summary>
    public static readonly TimeSpan PublishInterval = TimeSpan.FromSeconds(5);

    private static int Run(ParseResult parse, IConsole console)
    {
        // Not root: what a running watch published for its access group, if this caller may read it.
        if (Privileges.Missing().Count > 0)
            return ShowPublished(parse, console);
        var quarantines = new Quarantines(KernelMounts.FindCgroup2Root());
        var log = new ActionLog(new EcsEncoder(RunInfo.ForThisHost(GuardCli.Version), new ArgumentRedactor()));
        foreach (QuarantineOutcome expired in quarantines.Expire(DateTimeOffset.UtcNow))
            log.Append(expired.ToActionEvent(null));
        quarantines.Prune();
        Snapshot now = Collect(quarantines);
        if (ActionOutput.IsJson(parse, Output))
        {
            using Stream stdout = console.OpenStandardOutput();
            WriteJson(stdout, now, null);
        }
        else
        {
            WriteText(console.Out, now);
        }
        return (int)ExitCode.Success;
    }

    /// <summary>Everything `guard status` shows, read once (reads only: nothing expires or is pruned).</summary>
    private sealed record Snapshot(IReadOnlyList<QuarantineHold> Held, IReadOnlyList<LoadedProgram> Programs, IReadOnlyList<string> Pins, Lineage? Lineage, IReadOnlyList<RegisteredSensor> Sensors, IReadOnlyList<LoggedAction> Recent);

    private static Snapshot Collect(Quarantines quarantines) =>
        new(quarantines.List(), GuardProgramsLoaded.List(), Pins.Links(Pins.Root), ReadLineage(), RunningSensors.List(), ActionLog.Recent(RecentCount));

    /// <summary>
    /// Writes the status, text and JSON, into the run directory for the group it
    /// is shared with ([access] group), each through a temporary name: a reader
    /// sees a whole one. Nothing when the run directory is not shared; what
    /// was published before is removed then. Called by `guard watch` every
    /// <see cref="PublishInterval"/> from a timer's thread.
    /// </summary>
    /// <exception cref="IOException">A file could not be written.</exception>
    public static void Publish(Quarantines quarantines, int sensorPid)
    {
        string dir = RunDirectory.Path;
        if (SharedDirectory.GroupOf(dir) is null)
        {
            Unpublish();
            return;
        }
        Snapshot now = Collect(quarantines);
        DateTimeOffset at = DateTimeOffset.UtcNow;
        var text = new StringWriter();
        text.WriteLine($"status as of {Time(at)}, published by guard watch pid {sensorPid} every {PublishInterval.TotalSeconds:F0} s for its access group (root sees it live)");
        WriteText(text, now);
        using var json = new MemoryStream();
        WriteJson(json, now, (at, sensorPid));
        WriteWhole(Path.Join(dir, PublishedText), Encoding.UTF8.GetBytes(text.ToString()));
        WriteWhole(Path.Join(dir, PublishedJson), json.ToArray());
    }

    /// <summary>Removes what <see cref="Publish"/> wrote (a watch's stop): no status outlives the sensor that vouched for it.</summary>
    public static void Unpublish()
    {
        foreach (string name in (string[])[PublishedText, PublishedJson])
        {
            try
            {
                File.Delete(Path.Join(RunDirectory.Path, name));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another watch's, or a directory gone: nothing to take back.
            }
        }
    }

    private static void WriteWhole(string path, byte[] content)
    {
        string temporary = path + ".new";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            SharedDirectory.Fit((int)file.SafeFileHandle.DangerousGetHandle(), RunDirectory.Path, temporary);
            file.Write(content);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>`guard status` for a caller who is not root: the published status when it may read it; else one line, exit 77.</summary>
    private static int ShowPublished(ParseResult parse, IConsole console)
    {
        bool json = ActionOutput.IsJson(parse, Output);
        string path = Path.Join(RunDirectory.Path, json ? PublishedJson : PublishedText);
        byte[] content;
        try
        {
            content = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string why = e is FileNotFoundException or DirectoryNotFoundException ? $"no guard watch publishes its status under {RunDirectory.Path}" : $"{path} is not readable by this user ({e.Message})";
            throw new NotPermittedException($"guard status: root sees the status live; others in the [access] group of a running guard watch (guard.toml) see what it publishes, and {why}");
        }
        if (json)
        {
            using Stream stdout = console.OpenStandardOutput();
            stdout.Write(content);
        }
        else
        {
            console.Out.Write(Encoding.UTF8.GetString(content));
        }
        return (int)ExitCode.Success;
    }

    /// <summary>What the lineage recorder holds: entries (running processes and the exited links between them) and forks it could not record.</summary>
    private readonly record struct Lineage(int Entries, ulong Lost);

    private static Lineage? ReadLineage()
    {
        using LineageKernel? lineage = LineageKernel.OpenPinned();
        return lineage is null ? null : new Lineage(lineage.Links().Count, lineage.Lost);
    }

    private static void WriteText(TextWriter o, Snapshot snapshot)
    {
        (IReadOnlyList<QuarantineHold> held, IReadOnlyList<LoadedProgram> programs, IReadOnlyList<string> pins, Lineage? lineage, IReadOnlyList<RegisteredSensor> sensors, IReadOnlyList<LoggedAction> recent) = (snapshot.Held, snapshot.Programs, snapshot.Pins, snapshot.Lineage, snapshot.Sensors, snapshot.Recent);
        o.WriteLine(held.Count == 0 ? "quarantined: none" : $"quarantined: {held.Count}");
        foreach (QuarantineHold h in held)
        {
            string how = Seen(h);
            string until = h.Deadline is { } d ? $"; {(h.OnTimeout == QuarantineExpiry.Kill ? "killed" : "released")} at {Time(d)}" : "; until a person decides";
            IReadOnlyList<int> listed = h.Mode == QuarantineMode.Cgroup ? h.Inside : h.Pids;
            string where = h.Mode == QuarantineMode.Cgroup ? " inside" : "";
            o.WriteLine($"  {Printable.Of(h.Name)}: {how}, {listed.Count} process{(listed.Count == 1 ? "" : "es")}{where} ({string.Join(" ", listed.Take(8))}{(listed.Count > 8 ? " ..." : "")}); since {Time(h.Since)} by {h.OrderedBy} (uid {h.OrderedByUid}){until}");
            o.WriteLine($"    reason: {Printable.Of(h.Reason)}");
            if (h.Outside.Count > 0)
            {
                o.WriteLine($"    {h.Outside.Count} member{(h.Outside.Count == 1 ? "" : "s")} moved out of the cgroup, held where {(h.Outside.Count == 1 ? "it is" : "they are")}:");
                foreach (MemberOutside m in h.Outside.Take(8))
                    o.WriteLine($"      pid {m.Pid} in {Printable.Of(m.CgroupPath)}: {(m.Stopped ? "stopped" : "NOT STOPPED (running)")}");
                if (h.Outside.Count > 8)
                    o.WriteLine($"      ... {h.Outside.Count - 8} more");
            }
            if (h.MovesOut > 0)
                o.WriteLine($"    moves out of the cgroup stopped: {h.MovesOut}{(h.LastContinuedBy is { } mover && h.ContinuesRefused == 0 ? $"; the latest by pid {mover.Pid} ({Printable.Of(mover.Name)})" : "")}");
            if (h.ContinuesRefused + h.ContinuesUnanswered > 0)
                o.WriteLine($"    continues refused: {h.ContinuesRefused}{(h.ContinuesUnanswered > 0 ? $", {h.ContinuesUnanswered} the kernel could not answer" : "")}{(h.LastContinuedBy is { } by ? $"; the latest by pid {by.Pid} ({Printable.Of(by.Name)})" : "")}");
        }
        var bySensor = programs.SelectMany(p => p.HolderPids.Select(pid => (pid, p.Name))).GroupBy(x => x.pid).OrderBy(g => g.Key).ToList();
        int pinned = programs.Count(p => p.HolderPids.Count == 0);
        o.WriteLine($"attached: {programs.Count} Guard program{(programs.Count == 1 ? "" : "s")}");
        foreach (var sensor in bySensor)
            o.WriteLine($"  sensor {sensor.Key}: {sensor.Count()} program{(sensor.Count() == 1 ? "" : "s")}");
        if (pinned > 0 || pins.Count > 0)
            o.WriteLine($"  pinned under {Pins.Root}: {pinned} program{(pinned == 1 ? "" : "s")} through {pins.Count} link{(pins.Count == 1 ? "" : "s")}");
        o.WriteLine($"enforcement: {WhoEnforces(bySensor.Count).Text}");
        DateTimeOffset now = DateTimeOffset.UtcNow;
        o.WriteLine(sensors.Count == 0 ? "sensors: none running" : $"sensors: {sensors.Count} running");
        foreach (RegisteredSensor s in sensors)
        {
            double late = Math.Max(0, (now - s.LastDrained).TotalSeconds);
            o.WriteLine(s.Stalled(now)
                ? $"  pid {s.Pid}: STALLED: has not drained its ring for {late:F0} s (allowed {s.StallLimit!.Value.TotalSeconds:F0} s); its kernel enforcement goes on"
                : $"  pid {s.Pid}: draining its ring (last seen {late:F0} s ago)");
        }
        o.WriteLine(lineage is { } l
            ? $"lineage: recorded at fork under {LineageKernel.PinRoot}, {l.Entries} entries{(l.Lost > 0 ? $"; {l.Lost} forks not recorded (the map was full)" : "")}"
            : "lineage: not recorded (no guard watch, kill --tree or tree hold since boot or the last detach): trees are found by live parents only");
        o.WriteLine(recent.Count == 0 ? "recent actions: none" : $"recent actions (latest {recent.Count}):");
        foreach (LoggedAction a in recent)
            o.WriteLine($"  {a.Timestamp} {a.Action} {(a.Succeeded ? "done" : "refused")} by {a.OrderedBy} (uid {a.OrderedByUid}): {Printable.Of(a.Message)}");
    }

    /// <summary>What the hold looks like now, as /proc and cgroupfs say: not what was done to it.</summary>
    private static string Seen(QuarantineHold h)
    {
        if (h.Mode == QuarantineMode.Cgroup)
        {
            string cgroup = $"cgroup {h.CgroupPath} {h.Frozen switch { true => "frozen", false => "NOT FROZEN (thawed)", null => "gone" }}";
            return h.Running.Count == 0 ? cgroup : $"{cgroup}; {h.Running.Count} member{(h.Running.Count == 1 ? "" : "s")} moved out RUNNING ({string.Join(" ", h.Running.Take(8))}{(h.Running.Count > 8 ? " ..." : "")})";
        }
        if (h.Running.Count == 0)
            return "tree stopped";
        return $"tree NOT STOPPED: {h.Running.Count} of {h.Pids.Count} running ({string.Join(" ", h.Running.Take(8))}{(h.Running.Count > 8 ? " ..." : "")})";
    }

    /// <summary>Who kills miners at exec and drops Stratum right now, as the pins say: words, and the JSON value.</summary>
    private static (string Text, string Json) WhoEnforces(int sensors)
    {
        Enforcement now = Enforcement.Read();
        return now.By switch
        {
            Enforcer.RunningSensor => ($"by the running sensor (pid {string.Join(", ", now.Pids)})", "sensor"),
            Enforcer.EndedSensor => ($"by the pinned programs of a sensor that ended without handing over (pid {string.Join(", ", now.Pids)}), under {SensorPins.Root}", "ended-sensor"),
            Enforcer.HandedOver => ($"handed over by the last sensor, pinned under {EnforcementKernel.PinRoot}", "pinned"),
            _ => (sensors > 0 ? "none: the running sensor only audits" : "none: no sensor runs", "none"),
        };
    }

    private static void WriteJson(Stream stdout, Snapshot snapshot, (DateTimeOffset At, int Pid)? published)
    {
        (IReadOnlyList<QuarantineHold> held, IReadOnlyList<LoadedProgram> programs, IReadOnlyList<string> pins, Lineage? lineage, IReadOnlyList<RegisteredSensor> sensors, IReadOnlyList<LoggedAction> recent) = (snapshot.Held, snapshot.Programs, snapshot.Pins, snapshot.Lineage, snapshot.Sensors, snapshot.Recent);
        using (var w = new Utf8JsonWriter(stdout))
        {
            w.WriteStartObject();
            if (published is { } publisher)
            {
                // Read by a member of the access group: when, and by which sensor.
                w.WriteString("as_of", publisher.At);
                w.WriteNumber("published_by", publisher.Pid);
            }
            w.WriteStartArray("quarantined");
            foreach (QuarantineHold h in held)
            {
                w.WriteStartObject();
                w.WriteString("job", h.Name);
                w.WriteString("mode", h.Mode == QuarantineMode.Cgroup ? "cgroup" : "tree");
                if (h.CgroupPath is { } cgroup)
                    w.WriteString("cgroup", cgroup);
                w.WriteStartArray("pids");
                foreach (int pid in h.Pids)
                    w.WriteNumberValue(pid);
                w.WriteEndArray();
                // What is seen now, not what was done: every member stopped, the cgroup frozen.
                w.WriteBoolean("held", h.Held);
                if (h.Mode == QuarantineMode.Cgroup)
                {
                    if (h.Frozen is { } frozen)
                        w.WriteBoolean("frozen", frozen);
                    w.WriteStartArray("inside");
                    foreach (int pid in h.Inside)
                        w.WriteNumberValue(pid);
                    w.WriteEndArray();
                    w.WriteStartArray("moved_out");
                    foreach (MemberOutside m in h.Outside)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("pid", m.Pid);
                        w.WriteString("cgroup", m.CgroupPath);
                        w.WriteBoolean("stopped", m.Stopped);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteNumber("moves_out", h.MovesOut);
                }
                w.WriteStartArray("running");
                foreach (int pid in h.Running)
                    w.WriteNumberValue(pid);
                w.WriteEndArray();
                w.WriteNumber("continues_refused", h.ContinuesRefused);
                w.WriteNumber("continues_unanswered", h.ContinuesUnanswered);
                if (h.LastContinuedBy is { } by)
                {
                    w.WriteStartObject("last_continued_by");
                    w.WriteNumber("pid", by.Pid);
                    w.WriteString("name", by.Name);
                    w.WriteEndObject();
                }
                w.WriteString("since", h.Since);
                if (h.Deadline is { } d)
                {
                    w.WriteString("deadline", d);
                    w.WriteString("then", h.OnTimeout == QuarantineExpiry.Kill ? "kill" : "release");
                }
                w.WriteString("ordered_by", h.OrderedBy);
                w.WriteNumber("ordered_by_uid", h.OrderedByUid);
                w.WriteString("reason", h.Reason);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("programs");
            foreach (LoadedProgram p in programs)
            {
                w.WriteStartObject();
                w.WriteNumber("id", p.Id);
                w.WriteString("name", p.Name);
                w.WriteStartArray("held_by");
                foreach (int pid in p.HolderPids)
                    w.WriteNumberValue(pid);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("enforcement", WhoEnforces(programs.SelectMany(p => p.HolderPids).Distinct().Count()).Json);
            DateTimeOffset now = DateTimeOffset.UtcNow;
            w.WriteStartArray("sensors");
            foreach (RegisteredSensor s in sensors)
            {
                w.WriteStartObject();
                w.WriteNumber("pid", s.Pid);
                w.WriteString("last_drained", s.LastDrained);
                w.WriteBoolean("stalled", s.Stalled(now));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("lineage");
            w.WriteBoolean("recording", lineage is not null);
            w.WriteNumber("entries", lineage?.Entries ?? 0);
            w.WriteNumber("lost", lineage?.Lost ?? 0);
            w.WriteEndObject();
            w.WriteStartArray("pins");
            foreach (string pin in pins)
                w.WriteStringValue(pin);
            w.WriteEndArray();
            w.WriteStartArray("recent_actions");
            foreach (LoggedAction a in recent)
            {
                w.WriteStartObject();
                w.WriteString("@timestamp", a.Timestamp);
                w.WriteString("action", a.Action);
                w.WriteBoolean("succeeded", a.Succeeded);
                w.WriteString("ordered_by", a.OrderedBy);
                w.WriteNumber("ordered_by_uid", a.OrderedByUid);
                w.WriteString("message", a.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
