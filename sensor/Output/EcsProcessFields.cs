using System.Buffers.Text;
using System.Runtime.CompilerServices;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>
/// process.* (with its parent) for every line about a process, rendered once
/// per revision and cached; the guard.* members a process brings; and the
/// exec, fork and exit lines themselves.
/// </summary>
internal sealed class EcsProcessFields
{
    /// <summary>A process's members are kept from its third showing on (see <see cref="Members"/>).</summary>
    private const int ShowingsBeforeCaching = 3;

    private readonly EcsHeader header;
    private readonly ArgumentRedactor redactor;
    private readonly JsonLineWriter processScratch = new();
    private readonly ConditionalWeakTable<ProcessEntry, RenderedProcess> rendered = new();

    /// <summary>Where the redactor writes an argument it changed: 2 KiB; a longer one it replaces by the mask alone.</summary>
    private readonly byte[] scratch = new byte[2048];

    /// <summary>process.command_line as it is built: twice the arguments' size at least, grown as needed.</summary>
    private byte[] commandLine = new byte[2048];

    /// <summary>Process fields with event.*, start and exit times through <paramref name="header"/> and arguments redacted by <paramref name="redactor"/>.</summary>
    public EcsProcessFields(EcsHeader header, ArgumentRedactor redactor)
    {
        this.header = header;
        this.redactor = redactor;
    }

    /// <summary>An exec, fork or exit line's members after the header's: event.*, process.*, guard.*.</summary>
    public void Write(JsonLineWriter w, ProcessEvent e)
    {
        bool exit = e.Type == EventType.Exit;
        header.Event(w, e.Sequence, exit ? "end"u8 : "start"u8, "process"u8, EventNames.Utf8(Action(e.Type)));
        Process(w, e.Process, e);
        if (e.Process is null && !exit)
            return;
        w.StartObject("guard"u8);
        if (exit)
        {
            // The status byte is process.exit_code when no signal ended it; ECS has no field for the signal.
            w.StartObject("exit"u8);
            w.Number("signal"u8, e.ExitSignal);
            w.Bool("core_dumped"u8, e.CoreDumped);
            w.EndObject();
        }
        if (e.Process is { } p)
            GuardMembers(w, p);
        w.EndObject();
    }

    /// <summary>process.*, when there is a process: for a line that is not itself an exec, fork or exit.</summary>
    public void Process(JsonLineWriter w, ProcessEntry? p) => Process(w, p, null);

    /// <summary>
    /// What a process adds to guard.*: guard.job (with its cgroup),
    /// args_truncated, staging, job_root_pid, guard.ancestry.
    /// </summary>
    public static void GuardMembers(JsonLineWriter w, ProcessEntry p)
    {
        EcsLineageFields.Job(w, p, withCgroup: true);
        if (p.ArgsTruncated)
            w.Bool("args_truncated"u8, true);
        if (p.Staging is { } staging)
            w.Text("staging"u8, staging);
        if (p.JobRootPid > 0)
            w.Number("job_root_pid"u8, p.JobRootPid);
        EcsLineageFields.Ancestry(w, p);
    }

    private static EventAction Action(EventType type) => type switch
    {
        EventType.Exec => EventAction.Exec,
        EventType.Fork => EventAction.Fork,
        EventType.Exit => EventAction.Exit,
        _ => EventAction.Heartbeat,
    };

    /// <summary>process.*; for an exit, with process.exit_code and process.end. <paramref name="e"/> is the process's own exec, fork or exit, when this is its line.</summary>
    private void Process(JsonLineWriter w, ProcessEntry? p, ProcessEvent? e)
    {
        if (p is null)
            return;
        w.StartObject("process"u8);
        w.RawMembers(Members(p, mayCache: e is null));
        if (e is { Type: EventType.Exit })
        {
            w.Number("exit_code"u8, e.ExitSignal != 0 ? 128 + e.ExitSignal : e.ExitCode);
            header.Timestamp(w, "end"u8, e.TimeNs);
        }
        w.EndObject();
        EcsLineageFields.Orchestrator(w, p);
    }

    /// <summary>
    /// process.* with its parent, rendered once per revision of the two: a
    /// process that connects a thousand times is encoded once. Kept from the
    /// third showing on a line of another kind; the process's own exec, fork
    /// and exit lines neither count nor keep one, so a process seen only at
    /// exec, once more and at exit keeps no rendering here (only an empty entry).
    /// </summary>
    private ReadOnlySpan<byte> Members(ProcessEntry p, bool mayCache)
    {
        RenderedProcess cached = rendered.GetValue(p, static _ => new RenderedProcess());
        long parentRevision = p.Parent?.Revision ?? -1;
        if (cached.Members is { } members && cached.Revision == p.Revision && cached.ParentRevision == parentRevision)
            return members;
        processScratch.Clear();
        processScratch.StartObject();
        Fields(processScratch, p);
        if (p.Parent is { } parent)
        {
            processScratch.StartObject("parent"u8);
            Fields(processScratch, parent);
            processScratch.EndObject();
        }
        else if (p.ParentPid > 0)
        {
            processScratch.StartObject("parent"u8);
            processScratch.Number("pid"u8, p.ParentPid);
            processScratch.EndObject();
        }
        processScratch.EndObject();
        ReadOnlySpan<byte> rendering = processScratch.Written[1..^1];
        if (mayCache && ++cached.Showings >= ShowingsBeforeCaching)
        {
            cached.Members = rendering.ToArray();
            cached.Revision = p.Revision;
            cached.ParentRevision = parentRevision;
        }
        return rendering;
    }

    /// <summary>One process's own fields: pid, entity_id, name, start, executable, args, working_directory, user.</summary>
    private void Fields(JsonLineWriter w, ProcessEntry p)
    {
        w.Number("pid"u8, p.Pid);
        w.Text("entity_id"u8, p.EntityIdUtf8);
        w.Text("name"u8, p.Name);
        // Clock ticks since boot (CLOCK_BOOTTIME, as /proc shows them) to the same wall clock as @timestamp.
        header.Timestamp(w, "start"u8, p.StartTicks * (1_000_000_000 / ClockTicks.PerSecond));
        if (p.Executable.Length > 0)
            w.Text("executable"u8, p.Executable);
        Arguments(w, p.Args);
        if (p.WorkingDirectory is { } cwd)
            w.Text("working_directory"u8, cwd);
        w.StartObject("user"u8);
        Span<byte> id = stackalloc byte[12];
        Utf8Formatter.TryFormat(p.Uid, id, out int n);
        w.AsciiString("id"u8, id[..n]);
        if (p.UserName is { } user)
            w.Text("name"u8, user);
        w.EndObject();
    }

    /// <summary>args, args_count and command_line from the NUL-separated argument bytes, secrets redacted.</summary>
    private void Arguments(JsonLineWriter w, byte[] args)
    {
        if (args.Length == 0)
            return;
        if (commandLine.Length < args.Length * 2)
            commandLine = new byte[args.Length * 2];
        int lineLength = 0;
        int count = 0;
        bool secretNext = false;
        w.StartArray("args"u8);
        foreach (Range r in args.AsSpan().Split((byte)0))
        {
            ReadOnlySpan<byte> arg = redactor.Redact(args.AsSpan()[r], ref secretNext, scratch);
            w.TextItem(arg);
            if (lineLength + arg.Length + 1 > commandLine.Length)
                Array.Resize(ref commandLine, (lineLength + arg.Length + 1) * 2);
            if (count > 0)
                commandLine[lineLength++] = (byte)' ';
            arg.CopyTo(commandLine.AsSpan(lineLength));
            lineLength += arg.Length;
            count++;
        }
        w.EndArray();
        w.Number("args_count"u8, count);
        w.Text("command_line"u8, commandLine.AsSpan(0, lineLength));
    }

    /// <summary>A process's rendered members and the revisions they were rendered at.</summary>
    private sealed class RenderedProcess
    {
        /// <summary>The members as JSON, once cached; null before.</summary>
        public byte[]? Members;

        /// <summary>The process's revision when they were rendered.</summary>
        public long Revision;

        /// <summary>The parent's revision when they were rendered; -1 without a parent.</summary>
        public long ParentRevision;

        /// <summary>How often the process was shown on a line that may cache.</summary>
        public int Showings;
    }
}
