using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// Turns what the kernel counts in confine_denials (per section, job,
/// destination and kind of attempt, counted in place) into events: a count
/// that grew is reported at once the first time, then at most once a
/// minute per key with the growth since the last report, so a denied
/// connect loop makes one line a minute, never one per packet. Counts the
/// map had before this sensor started are reported whole once: they
/// happened while no sensor ran.
/// </summary>
public sealed class ConfineDenials
{
    /// <summary>The least time between two reports of one job's denials of one destination: a minute.</summary>
    public const long ReportIntervalNs = 60_000_000_000;

    private const int AddressFamilyIPv4 = 2;
    private const int AddressFamilyIPv6 = 10;

    private readonly Dictionary<DenialKey, (ulong Reported, long ReportedAtNs)> reported = [];

    /// <summary>
    /// The reports due at <paramref name="nowNs"/> (CLOCK_BOOTTIME) from the map's
    /// <paramref name="counts"/>: sections named through <paramref name="rules"/>, jobs through <paramref name="jobs"/> (the jobs a sensor confined, by own set),
    /// the latest denied process found in <paramref name="processes"/> (null at egress, or gone).
    /// Forgets keys the map no longer has.
    /// </summary>
    public List<ConfineEvent> Check(
        IReadOnlyList<(GuardConfineDenialKey Key, GuardConfineDenial Value)> counts, long nowNs, ConfineRules rules, IReadOnlyDictionary<uint, ConfinedJob> jobs, ProcessTable processes)
    {
        var events = new List<ConfineEvent>();
        var seen = new HashSet<DenialKey>();
        foreach ((GuardConfineDenialKey key, GuardConfineDenial value) in counts)
        {
            DenialKey id = DenialKey.Of(key);
            seen.Add(id);
            (ulong before, long at) = reported.GetValueOrDefault(id);
            // An LRU eviction and a new entry count from 0 again: all of it is new.
            if (value.Count < before)
                before = 0;
            if (value.Count == before || (at != 0 && nowNs - at < ReportIntervalNs))
                continue;
            reported[id] = (value.Count, nowNs);
            events.Add(Event(key, value, value.Count - before, rules, jobs, processes));
        }
        foreach (DenialKey gone in reported.Keys.Where(k => !seen.Contains(k)).ToList())
            reported.Remove(gone);
        return events;
    }

    private static ConfineEvent Event(GuardConfineDenialKey key, GuardConfineDenial value, ulong count, ConfineRules rules, IReadOnlyDictionary<uint, ConfinedJob> jobs, ProcessTable processes)
    {
        ConfineSection? section = rules.SectionOfSet(key.Section);
        ProcessEntry? process = value.Tgid == 0 ? null : processes.Find((int)value.Tgid, ClockTicks.FromBootNs(value.StartTimeNs));
        ReadOnlySpan<byte> address = key.Address;
        bool v4 = address[..10].IndexOfAnyExcept((byte)0) < 0 && address[10] == 0xff && address[11] == 0xff;
        byte[] destination = new byte[16];
        (v4 ? address[12..] : address).CopyTo(destination);
        return new ConfineEvent
        {
            TimeNs = (long)value.LastNs,
            Process = process,
            Section = section?.Name ?? $"rule set {key.Section}",
            SectionSource = section?.Source ?? "",
            Mode = (ConfineKernelMode)value.Mode switch { ConfineKernelMode.Audit => "audit", ConfineKernelMode.Ask => "ask", _ => "enforce" },
            Attempt = ConfineEvent.AttemptOf((ConfineWhat)key.What),
            JobId = process?.Membership.Id ?? (jobs.TryGetValue(key.Job, out ConfinedJob? job) ? job.JobId : null),
            JobSet = key.Job,
            Family = v4 ? AddressFamilyIPv4 : AddressFamilyIPv6,
            DestinationAddress = destination,
            DestinationPort = key.Port,
            Protocol = key.Protocol,
            Count = count,
            FirstNs = (long)value.FirstNs,
        };
    }

    /// <summary>A confine_denials key as a value with equality: the address as two halves.</summary>
    private readonly record struct DenialKey(uint Section, uint Job, ulong AddressHigh, ulong AddressLow, ushort Port, byte Protocol, byte What)
    {
        public static DenialKey Of(GuardConfineDenialKey k)
        {
            ReadOnlySpan<byte> a = k.Address;
            return new DenialKey(
                k.Section, k.Job, System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(a), System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(a[8..]),
                k.Port, k.Protocol, k.What);
        }
    }
}
