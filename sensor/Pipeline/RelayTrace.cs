using System.Diagnostics;
using System.Globalization;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// Follows a network finding that is to act (kill, hold) back from the process
/// that made the connection to the process that sent the bytes through it,
/// when that process is a local relay (socat, haproxy, an ssh tunnel, a
/// port-forward): each process on the way is probed off the draining thread
/// (<see cref="SenderLookups"/>) and judged (<see cref="RelaySenders"/>), up to
/// <see cref="MaxRelays"/> relays. A finding comes out once: about the
/// process that sent the bytes, to be acted on, or about the process that made
/// the connection, acting on no one, with the reason. The kernel has dropped
/// the bytes either way.
/// </summary>
public sealed class RelayTrace : IDisposable
{
    /// <summary>Relays followed at most between the connection and its sender.</summary>
    public const int MaxRelays = 4;

    private readonly SenderLookups lookups;
    private readonly ProcessTable table;
    private readonly Func<bool> payloadsLost;
    private readonly Dictionary<long, Following> pending = [];
    private long nextId;

    /// <summary>
    /// Follows with <paramref name="lookups"/>, naming processes through <paramref name="table"/>;
    /// <paramref name="payloadsLost"/> says whether the kernel has lost payload records to a full ring.
    /// </summary>
    public RelayTrace(SenderLookups lookups, ProcessTable table, Func<bool> payloadsLost)
    {
        this.lookups = lookups;
        this.table = table;
        this.payloadsLost = payloadsLost;
    }

    /// <summary>What loopback TCP streams sent first: how a relay's client is told by content.</summary>
    public LocalStreamHeads Heads { get; } = new();

    /// <summary>Findings being followed.</summary>
    public int Pending => pending.Count;

    /// <summary>Probes refused because their queue was full.</summary>
    public long Dropped => lookups.Dropped;

    /// <summary>Probes that ran past their time limit.</summary>
    public long TimedOut => lookups.TimedOut;

    /// <summary>
    /// Whether the process that made the connection with cookie <paramref name="cookie"/>
    /// surely relays for no one (<see cref="InboundConnections.AcceptedNone"/>): then the
    /// finding acts on it at once, as the kernel recorded it.
    /// </summary>
    public static bool MadeByItself(ProcessEntry maker, ulong cookie) => InboundConnections.AcceptedNone(maker.Pid, maker.StartTicks, cookie);

    /// <summary>
    /// Starts following <paramref name="alert"/>, about the connection with socket cookie
    /// <paramref name="cookie"/> whose first bytes are <paramref name="carried"/>; false
    /// when the probe could not be queued (the finding then acts on no one: see <see cref="Unqueued"/>).
    /// </summary>
    public bool Start(AlertEvent alert, ulong cookie, ReadOnlySpan<byte> carried)
    {
        ProcessEntry maker = alert.Process!;
        return Ask(new Following(alert, carried.ToArray(), maker), maker, cookie, 0);
    }

    /// <summary>
    /// The finding, acting on no one, when its first probe could not be queued:
    /// whether a relay made the connection is not known, and a shared proxy is
    /// never killed on a guess. The bytes are dropped all the same.
    /// </summary>
    public static AlertEvent Unqueued(AlertEvent alert)
    {
        alert.Response = [.. alert.Response, $"whether a local relay made the connection was not checked ({SenderLookups.QueueCapacity} relay lookups were waiting): nothing killed, nothing held"];
        return alert;
    }

    /// <summary>
    /// Judges every answer ready and adds each finding that is complete to
    /// <paramref name="finished"/>, with whether it is to be acted on. Call from
    /// the draining thread.
    /// </summary>
    public void Collect(List<(AlertEvent Alert, bool Act)> finished)
    {
        while (lookups.TryTake(out SenderLookup lookup, out PeerProbe probe))
        {
            if (!pending.Remove(lookup.Id, out Following? following))
                continue;
            RelayVerdict verdict = RelaySenders.Decide(probe, following.Carried, Heads.Find, headsComplete: !payloadsLost());
            switch (verdict.Role)
            {
                case RelayRole.Origin:
                    finished.Add((following.Hops.Count == 0 ? following.Alert : ForSender(following), true));
                    break;
                case RelayRole.Relay:
                    if (Onward(following, verdict) is { } stopped)
                        finished.Add((stopped, false));
                    break;
                default:
                    finished.Add((Unknown(following, verdict.Reason ?? "the sender cannot be told", verdict.Through?.Connection), false));
                    break;
            }
        }
        // An answer that never came (the lookup thread stopped): the finding goes out acting on no one.
        long now = Stopwatch.GetTimestamp();
        foreach ((long id, Following following) in pending.Where(p => now > p.Value.Due).ToList())
        {
            pending.Remove(id);
            finished.Add((Unknown(following, lookups.Stopped ?? "no answer from the relay lookup in time", null), false));
        }
    }

    /// <summary>
    /// At the end of a run: findings whose answers have not come go out acting
    /// on no one, so that none is lost.
    /// </summary>
    public void Abandon(List<(AlertEvent Alert, bool Act)> finished)
    {
        foreach (Following following in pending.Values)
            finished.Add((Unknown(following, "the sensor stopped before the relay lookup answered", null), false));
        pending.Clear();
    }

    /// <summary>The process probed is a relay for the sender found: the sender is probed next. Returns the finding when the trail stops here.</summary>
    private AlertEvent? Onward(Following following, RelayVerdict verdict)
    {
        LocalPeer through = verdict.Through!;
        SocketHolder holder = verdict.Sender!;
        following.Hops.Add(new RelayHop(following.Current, following.Current.Pid, following.Current.DisplayName, through.Connection));
        following.Basis = verdict.Basis;
        ProcessEntry? sender = table.Find(holder.Pid, holder.StartTicks);
        if (sender is null && table.Load(holder.Pid) is { } loaded && loaded.StartTicks == holder.StartTicks)
            sender = loaded;
        if (sender is null)
            return Unknown(following, $"the sender {holder} has exited", null, hopAdded: true);
        if (following.Hops.Count >= MaxRelays)
            return Unknown(following, $"the bytes came through more than {MaxRelays} relays", null, hopAdded: true);
        following.Current = sender;
        if (!Ask(following, sender, through.PeerCookie, through.PeerInode))
            return Unknown(following, $"{SenderLookups.QueueCapacity} relay lookups were waiting already", null, hopAdded: true);
        return null;
    }

    private bool Ask(Following following, ProcessEntry process, ulong cookie, ulong inode)
    {
        long id = ++nextId;
        long deadline = Stopwatch.GetTimestamp() + (long)(SenderLookups.TimeLimit.TotalSeconds * Stopwatch.Frequency);
        if (!lookups.TryAsk(new SenderLookup(id, process.Pid, process.StartTicks, cookie, inode, deadline, following.Needle)))
            return false;
        // Twice the probe's own limit: past that its answer is not coming.
        following.Due = deadline + (long)(SenderLookups.TimeLimit.TotalSeconds * Stopwatch.Frequency);
        pending[id] = following;
        return true;
    }

    /// <summary>The finding about the sender at the end of the trail, naming every relay; it is to be acted on.</summary>
    private static AlertEvent ForSender(Following following)
    {
        AlertEvent original = following.Alert;
        ProcessEntry sender = following.Current;
        RelayHop nearest = following.Hops[0];
        string chain = following.Hops.Count == 1 ? "" : $" through {following.Hops.Count} relays";
        var alert = new AlertEvent
        {
            Rule = original.Rule,
            Description = original.Description,
            RequestedAction = original.RequestedAction,
            Evidence = original.Evidence,
            Response =
            [
                .. original.Response,
                $"the connection was made by the local relay {nearest.Name} (pid {Pid(nearest.Pid)}){chain} for {sender.DisplayName} (pid {Pid(sender.Pid)}), "
                    + $"found by {following.Basis}: the relay is left alone",
            ],
            Relay = new RelayEvidence { Hops = following.Hops, SenderFound = true, Basis = following.Basis },
        };
        alert.Process = sender;
        alert.TimeNs = original.TimeNs;
        return alert;
    }

    /// <summary>The finding about the process that made the connection, acting on no one, saying why.</summary>
    private static AlertEvent Unknown(Following following, string reason, string? connection, bool hopAdded = false)
    {
        AlertEvent alert = following.Alert;
        var hops = new List<RelayHop>(following.Hops);
        if (!hopAdded)
            hops.Add(new RelayHop(following.Current, following.Current.Pid, following.Current.DisplayName, connection));
        alert.Relay = new RelayEvidence { Hops = hops, SenderFound = false, Reason = reason };
        alert.Response = [.. alert.Response, $"the connection was made by a local relay ({hops[0].Name}, pid {Pid(hops[0].Pid)}) and its sender cannot be told: {reason}; nothing killed, nothing held"];
        return alert;
    }

    private static string Pid(int pid) => pid.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => lookups.Dispose();

    /// <summary>One finding being followed: the relays so far and the process probed now.</summary>
    private sealed class Following(AlertEvent alert, byte[] carried, ProcessEntry current)
    {
        public AlertEvent Alert { get; } = alert;

        public byte[] Carried { get; } = carried;

        public byte[] Needle { get; } = RelaySenders.Needle(carried).ToArray();

        public List<RelayHop> Hops { get; } = [];

        public ProcessEntry Current { get; set; } = current;

        public string? Basis { get; set; }

        public long Due { get; set; }
    }
}
