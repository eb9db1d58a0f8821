using System.Globalization;
using System.Net;
using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Output;

/// <summary>One readable line per event, for a terminal.</summary>
public sealed class TextEncoder
{
    private readonly RunInfo run;
    private readonly ArgumentRedactor redactor;
    private readonly StringBuilder line = new();
    private readonly byte[] scratch = new byte[2048];
    private readonly bool colour;

    /// <summary>SGR bold red: an alert (ECMA-48; every colour terminal reads it).</summary>
    public const string AlertColour = "\u001b[1;31m";

    /// <summary>SGR yellow: an action Guard took or refused.</summary>
    public const string ActionColour = "\u001b[33m";

    /// <summary>SGR reset, after a coloured line.</summary>
    public const string ResetColour = "\u001b[0m";

    /// <summary>
    /// An encoder for this run's lines (local time of day), with arguments
    /// redacted by <paramref name="redactor"/>; with <paramref name="colour"/>,
    /// alerts and actions are wrapped in SGR colour sequences (the caller
    /// decides: a terminal that has colour, NO_COLOR unset). Nothing a monitored
    /// process wrote can add a sequence: its bytes go through Printable.
    /// </summary>
    public TextEncoder(RunInfo run, ArgumentRedactor redactor, bool colour = false)
    {
        this.run = run;
        this.redactor = redactor;
        this.colour = colour;
    }

    /// <summary>
    /// The event as one line, without the newline: time of day (HH:mm:ss.fff),
    /// type name padded to 9, pid, name, parent and job, then what happened.
    /// </summary>
    public string Encode(SensorEvent e)
    {
        line.Clear();
        line.Append(run.WallClock(e.TimeNs).ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)).Append(' ');
        line.Append(TypeColumn(e).PadRight(9));
        if (e.Process is { } p)
        {
            line.Append(CultureInfo.InvariantCulture, $"{p.Pid,7} {Printable(p.Name),-15}");
            if (p.Parent is { } parent)
                line.Append(CultureInfo.InvariantCulture, $" < {parent.Pid} {Printable(parent.Name)}");
            if (p.Membership.Id is { } job)
                line.Append(" [").Append(job).Append(']');
        }
        else if (e is not HeartbeatEvent)
        {
            line.Append(CultureInfo.InvariantCulture, $"{"?",7} {"(unknown)",-15}");
        }
        line.Append("  ");
        switch (e)
        {
            case ProcessEvent { Type: EventType.Exit } x:
                line.Append(x.ExitSignal != 0 ? $"killed by signal {x.ExitSignal}{(x.CoreDumped ? " (core dumped)" : "")}" : $"exit code {x.ExitCode}");
                break;
            case ProcessEvent { Process: { } process }:
                AppendArgs(process);
                break;
            case NetworkEvent n:
                line.Append(Endpoint(n)).Append(' ');
                line.Append(n.Type switch
                {
                    EventType.Connect => n.Result.ToString().ToLowerInvariant(),
                    EventType.Dns => $"query {Printable(n.DataSpan)} {Encoding.ASCII.GetString(DnsNames.TypeName(n.DnsQueryType))}",
                    _ => $"{n.DataLength} bytes: {Printable(n.DataSpan)}",
                });
                break;
            case GpuEvent gpu:
                line.Append(CultureInfo.InvariantCulture, $"device {gpu.Major}:{gpu.Minor}");
                if (gpu.Activity is { } a)
                    line.Append(CultureInfo.InvariantCulture, $" alloc {a.Counts[0]} free {a.Counts[1]} control {a.Counts[2]} map {a.Counts[3]} other {a.Counts[4]} uvm {a.Counts[5]} classes {string.Join(",", a.Classes.Keys.Select(c => $"0x{c:x4}"))}");
                break;
            case AlertEvent alert:
                line.Append("ALERT ").Append(alert.Rule).Append(": ").Append(alert.Description);
                if (alert.Count > 1)
                    line.Append(CultureInfo.InvariantCulture, $" (x{alert.Count})");
                foreach ((string key, string value) in alert.Evidence)
                    line.Append("; ").Append(key).Append('=').Append(Printable(System.Text.Encoding.UTF8.GetBytes(value)));
                line.Append(alert.Response.Count == 0 ? "; no action" : "; " + string.Join("; ", alert.Response));
                break;
            case ActionEvent action:
                line.Append(action.Action).Append(": ").Append(action.Message);
                break;
            case ProcessDenialEvent d:
                line.Append("confine-").Append(d.What).Append(d.Enforced ? " denied by " : " would be denied by (audit) ").Append(d.Section);
                if (d.Path is { } path)
                    line.Append(": ").Append(Printable(System.Text.Encoding.UTF8.GetBytes(path))).Append(" [").Append(string.Join(",", d.DeniedBy)).Append(']');
                if (d.Device is { } device)
                    line.Append(CultureInfo.InvariantCulture, $": device {device.Major}:{device.Minor}");
                if (d.Killed)
                    line.Append("; killed by ").Append(d.By);
                break;
            case ConfineEvent c:
                var to = new IPAddress(c.DestinationAddress.AsSpan(0, c.Family == 2 ? 4 : 16));
                line.Append(CultureInfo.InvariantCulture, $"{(c.WouldDeny ? "would deny" : "denied")} {c.Attempt} to {(c.Family == 2 ? $"{to}" : $"[{to}]")}:{c.DestinationPort}/{(c.Protocol == 17 ? "udp" : "tcp")} x{c.Count} by [[confine]] {c.Section} ({c.Mode})");
                if (e.Process is null && c.JobId is { } job)
                    line.Append(" [").Append(job).Append(']');
                break;
            case HeartbeatEvent h:
                line.Append(CultureInfo.InvariantCulture, $"{h.Events} events, {h.Drops} dropped, {h.DecodeFailures} undecodable, {h.DetectorFaults} detector faults, {h.Processes} processes");
                foreach (OutputHealth o in h.Outputs.Where(o => o.Lost > 0))
                    line.Append(CultureInfo.InvariantCulture, $", {o.Name} lost {o.Lost} lines");
                break;
        }
        if (colour && e is AlertEvent or ActionEvent)
            line.Insert(0, e is AlertEvent ? AlertColour : ActionColour).Append(ResetColour);
        return line.ToString();
    }

    /// <summary>
    /// The event's type name; a GPU open or first ioctl goes by its ECS
    /// event.action, the rest of a process's GPU activity by the type.
    /// </summary>
    private static string TypeColumn(SensorEvent e) => e is GpuEvent { Kind: not GpuEventKind.Activity } g
        ? EventNames.Action(EventNames.ActionOf(g.Kind))
        : EventNames.Of(e.Type);

    private void AppendArgs(ProcessEntry p)
    {
        bool secretNext = false;
        bool first = true;
        foreach (Range r in p.Args.AsSpan().Split((byte)0))
        {
            if (!first)
                line.Append(' ');
            first = false;
            line.Append(Printable(redactor.Redact(p.Args.AsSpan()[r], ref secretNext, scratch)));
        }
        if (first)
            line.Append(Printable(p.Executable));
    }

    private static string Endpoint(NetworkEvent n)
    {
        var address = n.Family == 2 ? new IPAddress(n.DestinationAddress.AsSpan(0, 4)) : new IPAddress(n.DestinationAddress.AsSpan(0, 16));
        return n.Family == 2 ? $"{address}:{n.DestinationPort}" : $"[{address}]:{n.DestinationPort}";
    }

    /// <summary>Control characters and invalid UTF-8 shown as escapes, so a name cannot drive the terminal (<see cref="Abi.Printable"/>).</summary>
    public static string Printable(ReadOnlySpan<byte> bytes) => Abi.Printable.Of(bytes);
}
