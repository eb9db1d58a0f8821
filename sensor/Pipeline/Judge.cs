using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;

namespace Guard.Sensor.Pipeline;

/// <summary>
/// The findings-and-response path: runs the policy's detectors on what the
/// pipeline has emitted, has the responder carry out what a finding asks,
/// then emits the alert (one per process and rule, repeats counted) and each
/// action taken. Allowed processes and destinations are never judged.
/// Executables are hashed off this thread (<see cref="ExecutableHashes"/>):
/// what needs a hash (the deny list, a known miner's evidence, a finding about
/// a process the allow list may name by hash, a staged file's markers) waits
/// for it in a <see cref="HashWait"/>, and <see cref="OnHashes"/> finishes it.
/// A network finding that is to act is first followed back through any
/// local relay (<see cref="RelayTrace"/>): it acts on the process that sent
/// the bytes, or on no one.
/// </summary>
public sealed class Judge
{
    private PolicyDetectors detectors;
    private Responder? responder;
    private readonly EventEmitter emitter;
    private readonly RelayTrace? relays;
    private readonly AlertCounts alertCounts = new();
    private readonly List<AlertEvent> dueAlerts = [];
    private readonly Dictionary<ProcessEntry, HashWait> waits = new(ReferenceEqualityComparer.Instance);
    private readonly List<HashOutcome> outcomes = [];
    private readonly List<(AlertEvent Alert, bool Act)> followed = [];

    /// <param name="detectors">The policy's detectors.</param>
    /// <param name="responder">Acts on findings; null only reports them.</param>
    /// <param name="emitter">Where alerts and actions go.</param>
    /// <param name="relays">Follows network findings back through local relays; null acts on the connection's owner as the kernel recorded it.</param>
    public Judge(PolicyDetectors detectors, Responder? responder, EventEmitter emitter, RelayTrace? relays = null)
    {
        this.detectors = detectors;
        this.responder = responder;
        this.emitter = emitter;
        this.relays = relays;
    }

    /// <summary>
    /// A reloaded policy's detectors and responder from now on (on the thread
    /// that judges). What waits for a hash is finished by the new ones; each
    /// detector's memory of what it saw starts afresh; alert counts stay.
    /// </summary>
    public void Reload(PolicyDetectors detectors, Responder? responder)
    {
        this.detectors = detectors;
        this.responder = responder;
    }

    /// <summary>Wakes the event thread when hashes are in: give it to the ring buffer reader.</summary>
    public int HashesWakeFd => detectors.Executables.WakeFd;

    /// <summary>The policy's [[confine]] sections in the kernel, for programs they deny by hash; null when none.</summary>
    public Response.Confinement? Confinement { get; set; }

    /// <summary>Findings still being followed through relays.</summary>
    public int RelaysPending => relays?.Pending ?? 0;

    /// <summary>
    /// A program started: known miner (killed by the kernel already), arguments,
    /// weak evidence now; the file's hash is asked for when the deny list, the
    /// known miner's evidence or the allow list needs it, and judged when in.
    /// </summary>
    public void OnExec(ProcessEntry entry, in ExecRecord record)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry))
                JudgeProgram(entry, detectors.KnownMiners.OnExec(entry, record) ?? detectors.KnownMiners.OnLoaderExec(entry, (long)record.Header.TimeNs),
                    (long)record.Header.TimeNs, atExec: true);
            // A confined job's program its section may deny by hash (a copy of a shell by its bytes): hashed whatever the allow list says,
            // unless this exec's hash is asked for already (a wait for the process's previous program, env's or nice's, is not this one's).
            long execNs = (long)record.Header.TimeNs;
            if (Confinement?.WantsHash(entry) == true && !(waits.TryGetValue(entry, out HashWait? asked) && asked.TimeNs == execNs))
                StartHash(entry, execNs, judgeHash: false, atExec: true);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// A process that was running when the sensor started, judged as its exec
    /// would have been (name, arguments, hash, job) at <paramref name="nowNs"/>;
    /// a known miner among them is killed here, since the kernel never saw it start.
    /// <paramref name="late"/>: one whose exec record the full ring lost, judged the same way.
    /// </summary>
    public void OnExisting(ProcessEntry entry, long nowNs, bool late = false)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry))
                JudgeProgram(entry, detectors.KnownMiners.OnExisting(entry, nowNs, late), nowNs, atExec: false);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>What an exec and a process found at start share: the name's verdict, then hash, arguments and weak evidence.</summary>
    private void JudgeProgram(ProcessEntry entry, AlertEvent? verdict, long timeNs, bool atExec)
    {
        HashWait? wait = verdict is not null || detectors.Hashes.Active || detectors.Allowed.ByHash || detectors.Content.Reads(entry)
            ? StartHash(entry, timeNs, judgeHash: verdict is not null || detectors.Hashes.Active, atExec) : null;
        if (verdict is not null)
        {
            // At exec the kernel has killed it already; its job (and, for one found at start, the kill)
            // is left to the response, at once unless the allow list may name its hash. The alert goes out with the hash.
            wait!.KnownMiner = verdict;
            if (!detectors.Allowed.ByHash)
                wait.KnownMinerActions = responder?.Apply(verdict) ?? [];
            return;
        }
        if (detectors.Arguments.OnExec(entry, timeNs) is { } alert)
        {
            // An acting finding is enough; weak evidence alone leaves the deny list its word.
            wait?.ArgumentsFound = KernelRules.Acts(alert.RequestedAction);
            Respond(alert);
        }
        if (detectors.Weak.OnExec(entry, timeNs) is { } weak)
            Report(weak);
    }

    /// <summary>
    /// Between polls: finishes what waited for a hash. A process gone with its
    /// file renamed is hashed through another process running the same file.
    /// </summary>
    public void OnHashes(ProcessTable table)
    {
        outcomes.Clear();
        detectors.Executables.Drain(outcomes);
        foreach (HashOutcome outcome in outcomes)
        {
            try
            {
                var wait = (HashWait)outcome.Request.State!;
                if (outcome.Why == NotHashed.Gone && !wait.Retried && outcome.Request.Expected is { } file
                    && table.Entries.FirstOrDefault(e => !e.Exited && e != wait.Process && e.ExecutableFile == file) is { } sibling)
                {
                    wait.Retried = true;
                    detectors.Executables.Submit(outcome.Request.Through(sibling));
                    continue;
                }
                Finish(wait, outcome);
            }
            catch (Exception e) when (Faulted(e))
            {
            }
        }
    }

    /// <summary>A process ended: its GPU verdict is forgotten and its unreported repeats go out.</summary>
    public void OnExit(ProcessEntry entry)
    {
        try
        {
            detectors.GpuIntruders.Forget(entry);
            dueAlerts.Clear();
            alertCounts.OnExit(entry, dueAlerts);
            foreach (AlertEvent repeated in dueAlerts)
                emitter.Emit(repeated);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A connect's outcome: pool ports and addresses are weak evidence.</summary>
    public void OnConnect(NetworkEvent connect)
    {
        try
        {
            if (!Exempt(connect.Process, (ushort)connect.Family, connect.DestinationAddress, (ushort)connect.DestinationPort)
                && detectors.Weak.OnConnect(connect.Process, connect.DestinationAddress, (ushort)connect.Family, (ushort)connect.DestinationPort, connect.TimeNs) is { } alert)
                Report(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// What the kernel decided about a TCP stream (a record per decision,
    /// however late in the stream): a Stratum verdict, acted on unless the
    /// process or destination is allowed; or the destination asked of a proxy,
    /// a pool domain strong evidence and a pool port weak.
    /// <paramref name="head"/>: the connection's first bytes while still gathered, else null.
    /// </summary>
    public void OnStream(ProcessEntry? owner, in StreamRecord record, AssembledPayload? head)
    {
        try
        {
            long timeNs = (long)record.Header.TimeNs;
            if (record.Verdict != 0)
            {
                if (!Exempt(owner, record.Family, record.DestinationAddress, record.DestinationPort))
                    RespondToConnection(detectors.Stratum.OnVerdict(owner, record, head is null ? [] : head.Bytes), record.Cookie, head is null ? [] : head.Bytes);
                return;
            }
            // A proxy the policy allows may still be asked for a pool: only an allowed process is exempt.
            if (record.Proxy == StreamProxy.None || (owner is not null && detectors.Allowed.Allows(owner)))
                return;
            if (detectors.Stratum.OnProxy(owner, record) is { } pool)
            {
                RespondToConnection(pool, record.Cookie, head is null ? [] : head.Bytes);
                return;
            }
            int port = StratumFindings.ProxyPort(record);
            AlertEvent? weak = StratumFindings.ProxyHostAddress(record) is { } ip
                ? detectors.Weak.OnConnect(owner, ip.GetAddressBytes(), ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 10 : 2, port, timeNs)
                : StratumFindings.ProxyHostName(record) is { } name ? detectors.Weak.OnProxyPort(owner, $"{name}:{port}", port, timeNs) : null;
            if (weak is not null)
                Report(weak);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// A connection's first bytes, whole (<paramref name="head"/>: up to 256,
    /// or a TLS stream's up to 8 KiB; the event carries the first 256): a
    /// ClientHello naming a pool; a Stratum method, when the kernel's record of
    /// one never came (<paramref name="kernelDecided"/> false: a full ring lost it).
    /// </summary>
    public void OnFirstBytes(NetworkEvent payload, ReadOnlySpan<byte> head, bool kernelDecided)
    {
        try
        {
            if (!Exempt(payload.Process, (ushort)payload.Family, payload.DestinationAddress, (ushort)payload.DestinationPort)
                && detectors.Stratum.OnFirstBytes(payload.Process, head, payload.DestinationAddress, payload.Family, payload.DestinationPort, kernelDecided, payload.TimeNs) is { } alert)
                RespondToConnection(alert, payload.Cookie, head);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>One segment of a connection's first bytes: kept when it goes to a loopback address, for telling a relay's clients apart.</summary>
    public void OnSegment(in PayloadRecord record) => relays?.Heads.Add(record);

    /// <summary>
    /// Network findings whose relay lookups have answered: each is acted on
    /// (the sender found, or the connection's own maker when it relays for no
    /// one) or only reported. Call from the draining thread, between polls.
    /// </summary>
    public void CollectRelays()
    {
        if (relays is null || relays.Pending == 0)
            return;
        try
        {
            followed.Clear();
            relays.Collect(followed);
            foreach ((AlertEvent alert, bool act) in followed)
            {
                if (act)
                    Respond(alert);
                else
                    Report(alert);
            }
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// At the end of a run: waits up to <paramref name="waitMs"/> for relay lookups
    /// under way, then reports the findings still unanswered, acting on no one.
    /// </summary>
    public void FinishRelays(int waitMs)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (RelaysPending > 0 && clock.ElapsedMilliseconds < waitMs)
        {
            CollectRelays();
            if (RelaysPending > 0)
                Thread.Sleep(5);
        }
        if (relays is null || relays.Pending == 0)
            return;
        followed.Clear();
        relays.Abandon(followed);
        foreach ((AlertEvent alert, _) in followed)
            Report(alert);
    }

    /// <summary>Relay lookups refused because their queue was full.</summary>
    public long RelayLookupsDropped => relays?.Dropped ?? 0;

    /// <summary>Relay lookups that ran past their time limit.</summary>
    public long RelayLookupsTimedOut => relays?.TimedOut ?? 0;

    /// <summary>A DNS query: pool domains are weak evidence.</summary>
    public void OnDns(NetworkEvent query)
    {
        try
        {
            if (detectors.Weak.OnDns(query.Process, System.Text.Encoding.ASCII.GetString(query.DataSpan), query.TimeNs) is { } alert)
                emitter.Emit(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>The kernel's rounding-mode switch counts (pid, switches per mode), sampled at <paramref name="nowNs"/>.</summary>
    public void OnRoundingSample(IReadOnlyList<(int Pid, GuardRounding Switches)> counts, long nowNs, ProcessTable table)
    {
        foreach (AlertEvent alert in detectors.Rounding.Sample(counts, nowNs, table))
        {
            if (alert.Process is { } p && detectors.Allowed.Allows(p))
                continue;
            Respond(alert);
        }
    }

    /// <summary>A device sample: a GPU busy with no process to account for it.</summary>
    public void OnGpuDevice(GpuDeviceSample device, long nowNs)
    {
        try
        {
            if (detectors.GpuIntruders.OnDevice(device, nowNs) is { } hidden)
                Respond(hidden);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A process NVML puts on a GPU.</summary>
    public void OnNvmlProcess(ProcessEntry entry, GpuDeviceSample device, GpuProcessSample sample, ProcessTable table, long nowNs)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry) && detectors.GpuIntruders.OnNvmlProcess(entry, device, sample, table, nowNs) is { } alert)
                Respond(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>A process whose driver calls the kernel counted moved.</summary>
    public void OnGpuWork(ProcessEntry entry, GpuActivity gpu, ProcessTable table, long nowNs)
    {
        try
        {
            if (!detectors.Allowed.Allows(entry) && detectors.GpuIntruders.OnGpuWork(entry, gpu, table, nowNs) is { } alert)
                Respond(alert);
        }
        catch (Exception e) when (Faulted(e))
        {
        }
    }

    /// <summary>
    /// Detector faults so far: an exception a detector threw on hostile input
    /// (a command line, a payload), caught so that it never stops the sensor.
    /// </summary>
    public long Faults { get; private set; }

    /// <summary>The latest fault, one line (type and message); null when none.</summary>
    public string? LastFault { get; private set; }

    /// <summary>Counts a detector's exception; the event it was judging goes unjudged, the sensor goes on.</summary>
    private bool Faulted(Exception e)
    {
        // Out of memory is the process's, and a failed write is the sink's (a closed stdout ends the run): neither is a detector's.
        if (e is OutOfMemoryException or IOException)
            return false;
        Faults++;
        LastFault = $"{e.GetType().Name}: {e.Message}";
        return true;
    }

    /// <summary>No network finding about an allowed process, or a connection to an allowed destination.</summary>
    private bool Exempt(ProcessEntry? process, ushort family, ReadOnlySpan<byte> address, ushort port) =>
        (process is not null && detectors.Allowed.Allows(process)) || detectors.Destinations.Allows(family, address, port);

    /// <summary>
    /// A finding about a connection: when it is to act and its maker may have
    /// accepted local connections (a quick, bounded look at its descriptors),
    /// the maker is probed off this thread and the finding waits
    /// (<see cref="CollectRelays"/>); otherwise it is answered now.
    /// </summary>
    private void RespondToConnection(AlertEvent alert, ulong cookie, ReadOnlySpan<byte> carried)
    {
        if (relays is null || responder is null || alert.Process is not { } maker || !KernelRules.Acts(alert.RequestedAction)
            || RelayTrace.MadeByItself(maker, cookie))
        {
            Respond(alert);
            return;
        }
        if (!relays.Start(alert, cookie, carried))
            Report(RelayTrace.Unqueued(alert));
    }

    /// <summary>Acts on an alert as its rule asks, then emits the alert and each action taken; first, if the allow list may name its process by hash, waits for the hash.</summary>
    private void Respond(AlertEvent alert)
    {
        if (!WaitForHash(alert, respond: true))
            Act(alert);
    }

    /// <summary>Has the responder carry out what the alert asks, then emits it and each action taken.</summary>
    private void Act(AlertEvent alert) => Emit(alert, responder?.Apply(alert) ?? []);

    /// <summary>Emits a weak-evidence alert, which asks for nothing; first, like <see cref="Respond"/>, waits for an allow-list hash.</summary>
    private void Report(AlertEvent alert)
    {
        if (!WaitForHash(alert, respond: false))
            emitter.Emit(alert);
    }

    private void Emit(AlertEvent alert, IReadOnlyList<ActionEvent> actions)
    {
        if (alertCounts.Admit(alert))
            emitter.Emit(alert);
        foreach (ActionEvent action in actions)
            emitter.Emit(action);
    }

    /// <summary>Parks the alert when its process's allow-list verdict waits for a hash, asking for one if none is under way.</summary>
    private bool WaitForHash(AlertEvent alert, bool respond)
    {
        if (alert.Process is not { } process || !detectors.Allowed.WaitsForHash(process))
            return false;
        HashWait wait = waits.TryGetValue(process, out HashWait? pending) ? pending : StartHash(process, alert.TimeNs, judgeHash: false, atExec: false);
        wait.Parked.Add((alert, respond));
        return true;
    }

    /// <summary>Asks for the process's executable hash; <paramref name="atExec"/>: <paramref name="timeNs"/> is its exec, and its path may stand in once it is gone.</summary>
    private HashWait StartHash(ProcessEntry process, long timeNs, bool judgeHash, bool atExec)
    {
        var wait = new HashWait(process, ExecutableHashes.PathOf(process), timeNs, judgeHash);
        waits[process] = wait; // a wait for its previous image still finishes, without touching the process's hash
        detectors.Executables.Submit(HashRequest.For(process, atExec ? timeNs : null, wait));
        return wait;
    }

    /// <summary>The hash is in, or will not be: the process learns it, then what waited is judged.</summary>
    private void Finish(HashWait wait, HashOutcome outcome)
    {
        ProcessEntry process = wait.Process;
        if (waits.TryGetValue(process, out HashWait? current) && current == wait)
        {
            waits.Remove(process);
            process.ExecutableSha256 = outcome.Sha256;
            process.ExecutableNotHashed = outcome.Sha256 is null ? outcome.WhyText : null;
        }
        if (outcome.Sha256 is { } confinedHash && Confinement?.OnHash(process, confinedHash, wait.TimeNs) is { } denial)
            emitter.Emit(denial);
        bool allowed = outcome.Sha256 is not null && detectors.Allowed.AllowsHash(outcome.Sha256);
        if (wait.KnownMiner is { } verdict)
        {
            KnownMinerFindings.WithSha256(verdict, outcome.Sha256 ?? $"not hashed: {outcome.WhyText}");
            if (wait.KnownMinerActions is { } done)
                Emit(verdict, done);
            else if (!allowed)
                Act(verdict);
        }
        if (allowed)
            return;
        foreach ((AlertEvent alert, bool respond) in wait.Parked)
        {
            if (respond)
                Act(alert);
            else
                emitter.Emit(alert);
        }
        // The bytes read for the hash were searched for a miner's markers too: a miner by content, whatever its name.
        if (wait.KnownMiner is null && outcome is { Sha256: { } sha256, Content: { } content })
        {
            if (detectors.Content.OnContent(process, wait.Path, sha256, content, wait.TimeNs) is { } miner)
            {
                if (!wait.ArgumentsFound)
                    Act(miner);
                return;
            }
            if (detectors.Weak.OnMarkers(process, content, wait.Path, wait.TimeNs) is { } marked)
                emitter.Emit(marked);
        }
        if (!wait.JudgeHash || !detectors.Hashes.Active)
            return;
        if (outcome.Sha256 is { } hash)
        {
            if (!wait.ArgumentsFound && detectors.Hashes.OnHash(process, wait.Path, hash, wait.TimeNs) is { } denied)
                Act(denied);
        }
        else if (detectors.Weak.OnNotHashed(process, outcome.WhyText, wait.Path, wait.TimeNs) is { } unverified)
        {
            emitter.Emit(unverified);
        }
    }

    /// <summary>What waits for one process's executable hash.</summary>
    private sealed class HashWait(ProcessEntry process, string path, long timeNs, bool judgeHash)
    {
        public ProcessEntry Process { get; } = process;

        /// <summary>The executable's path as exec was given it, for evidence.</summary>
        public string Path { get; } = path;

        public long TimeNs { get; } = timeNs;

        /// <summary>The deny list judges this hash: it was asked for at exec.</summary>
        public bool JudgeHash { get; } = judgeHash;

        /// <summary>Miner arguments were found at the same exec: one strong finding is enough.</summary>
        public bool ArgumentsFound { get; set; }

        /// <summary>The kernel's known-miner verdict, whose alert carries the hash.</summary>
        public AlertEvent? KnownMiner { get; set; }

        /// <summary>What the response did about <see cref="KnownMiner"/> already, not waiting for the hash.</summary>
        public IReadOnlyList<ActionEvent>? KnownMinerActions { get; set; }

        /// <summary>Findings held until the allow list has had its word; respond: acted on, else only reported.</summary>
        public List<(AlertEvent Alert, bool Respond)> Parked { get; } = [];

        /// <summary>Asked again through another process running the same file.</summary>
        public bool Retried { get; set; }
    }
}
