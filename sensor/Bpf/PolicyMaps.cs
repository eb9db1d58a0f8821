using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// The policy as the kernel applies it itself (bpf/verdicts.h): miner and
/// job-root names, the units that are jobs, allowed users, executables and
/// destinations, Stratum methods. The sensor's object and the enforcement object both carry these maps.
/// <para>
/// Each map is brought to the rules in place: every wanted entry is written
/// (a changed value is replaced in one update), and only then are the entries
/// the rules no longer name deleted. A map is never cleared first, so a
/// reload has no moment in which a name both policies kill is not killed.
/// Only when a map is full is an entry that goes deleted before one that comes
/// is written: never one both policies keep.
/// </para>
/// </summary>
internal static unsafe class PolicyMaps
{
    /// <summary>E2BIG: what a full hash map answers an insert with (kernel/bpf/hashtab.c).</summary>
    private const int FullHashMap = 7;

    /// <summary>ENOSPC: what a full LPM trie (the miner names) answers an insert with (kernel/bpf/lpm_trie.c).</summary>
    private const int FullTrie = 28;

    /// <summary>
    /// Brings a loaded object's maps (names from verdicts.h) to <paramref name="rules"/>;
    /// returns whether the job units changed. Every key is built before any
    /// map is touched, so rules the kernel cannot hold change nothing.
    /// </summary>
    /// <exception cref="SensorException">A name is too long for its map, or the kernel refused an update (the maps hold the entries written so far and every one both rules name).</exception>
    public static bool Write(nint obj, InKernelRules rules)
    {
        var flags = new Dictionary<MinerNamePattern, uint>();
        foreach (string name in rules.MinersAnywhere)
            flags[MinerNamePattern.Parse(name)] = GuardName.Anywhere | (rules.KillAnywhere ? GuardName.Kill : 0);
        foreach (string name in rules.MinersInJobs)
        {
            MinerNamePattern pattern = MinerNamePattern.Parse(name);
            flags[pattern] = flags.GetValueOrDefault(pattern) | GuardName.InJob | (rules.KillInJobs ? GuardName.Kill : 0);
        }
        (GuardNameKey, uint)[] miners = [.. flags.Select(f => (MinerKey(f.Key), f.Value))];
        (GuardName, uint)[] roots = [.. rules.JobRoots.Select(n => (NameKey(Comm.Of(n)), 1u))];
        uint verdict = rules.DropStratum ? GuardMethod.Drop : GuardMethod.Alert;
        (GuardMethod, uint)[] methods = [.. rules.StratumMethods.Select(m => (MethodKey(m), verdict))];
        (GuardDestinationKey, byte)[] destinations = [.. rules.AllowedDestinations.Select(r => (DestinationKey(r), (byte)1))];
        (GuardFileKey, byte)[] files = [.. rules.AllowedFiles.Select(f => (new GuardFileKey { Inode = f.Inode, Device = f.Device }, (byte)1))];
        (GuardCgroupName, byte)[] units = [.. rules.JobUnits.Select(u => (UnitKey(u), (byte)1))];
        (uint, uint)[] uids = [.. rules.AllowedUids.Select(u => (u, 1u))];

        Sync(obj, BpfMapNames.MinerNames, miners, "the known-miner names");
        Sync(obj, BpfMapNames.JobRootNames, roots, "the job roots");
        Sync(obj, BpfMapNames.StratumMethods, methods, "the Stratum methods");
        Sync(obj, BpfMapNames.AllowedDestinations, destinations, "the allowed destinations");
        Sync(obj, BpfMapNames.AllowedFiles, files, "the allowed executables");
        bool unitsChanged = Sync(obj, BpfMapNames.JobUnits, units, "the job units");
        Sync(obj, BpfMapNames.AllowedUids, uids, "the allowed users");
        return unitsChanged;
    }

    /// <summary>
    /// Makes the map <paramref name="map"/> hold exactly <paramref name="wanted"/>:
    /// writes each, then deletes what else it holds. Returns whether anything changed.
    /// </summary>
    private static bool Sync<TKey, TValue>(nint obj, string map, IReadOnlyList<(TKey Key, TValue Value)> wanted, string what)
        where TKey : unmanaged
        where TValue : unmanaged
    {
        int fd = KernelSession.MapFd(obj, map);
        List<(TKey Key, TValue Value)> present = Libbpf.Entries<TKey, TValue>(fd);
        var keep = new HashSet<string>(wanted.Select(w => Bytes(w.Key)), StringComparer.Ordinal);
        var had = present.ToDictionary(p => Bytes(p.Key), p => Bytes(p.Value), StringComparer.Ordinal);
        bool changed = false;
        bool staleGone = false;
        foreach ((TKey key, TValue value) in wanted)
        {
            if (had.TryGetValue(Bytes(key), out string? old) && old == Bytes(value))
                continue;
            changed = true;
            TKey k = key;
            TValue v = value;
            int rc = Libbpf.MapUpdate(fd, &k, &v, 0);
            if (rc is -FullHashMap or -FullTrie && !staleGone)
            {
                // Full: what goes makes room for what comes. Nothing both rules name is removed.
                DeleteStale(fd, present, keep);
                staleGone = true;
                rc = Libbpf.MapUpdate(fd, &k, &v, 0);
            }
            if (rc != 0)
                throw new SensorException($"cannot write {what} into the kernel map {map}: {Libc.ErrorText(-rc)}");
        }
        if (!staleGone)
            changed |= DeleteStale(fd, present, keep) > 0;
        else
            changed = true;
        return changed;
    }

    private static int DeleteStale<TKey, TValue>(int fd, List<(TKey Key, TValue Value)> present, HashSet<string> keep)
        where TKey : unmanaged
        where TValue : unmanaged
    {
        int deleted = 0;
        foreach ((TKey key, _) in present)
        {
            if (keep.Contains(Bytes(key)))
                continue;
            TKey k = key;
            _ = Libbpf.MapDelete(fd, &k); // one gone meanwhile is gone
            deleted++;
        }
        return deleted;
    }

    /// <summary>Deletes every entry of the map <paramref name="map"/> (a cache the kernel fills again).</summary>
    public static void Clear<TKey>(nint obj, string map)
        where TKey : unmanaged
    {
        int fd = KernelSession.MapFd(obj, map);
        TKey key = default, next = default;
        while (Libbpf.MapNextKey(fd, null, &next) == 0)
        {
            key = next;
            if (Libbpf.MapDelete(fd, &key) != 0)
                break;
        }
    }

    private static string Bytes<T>(T value)
        where T : unmanaged => Convert.ToBase64String(new ReadOnlySpan<byte>(&value, sizeof(T)));

    private static GuardNameKey MinerKey(MinerNamePattern pattern)
    {
        byte[] bytes = pattern.KeyBytes();
        var key = new GuardNameKey { PrefixLength = (uint)(8 * bytes.Length) };
        bytes.CopyTo(key.Name);
        return key;
    }

    private static GuardName NameKey(string comm)
    {
        GuardName key = default;
        System.Text.Encoding.UTF8.GetBytes(comm, key.Name);
        return key;
    }

    /// <summary>A method as the scan compares it (bpf/stream.h): ASCII folded to lower case, NUL-padded.</summary>
    private static GuardMethod MethodKey(string method)
    {
        GuardMethod key = default;
        if (System.Text.Encoding.UTF8.GetByteCount(method) >= GuardMethod.Capacity)
            throw new SensorException($"Stratum method '{method}' is longer than {GuardMethod.Capacity - 1} bytes");
        int n = System.Text.Encoding.UTF8.GetBytes(method, key.Name);
        for (int i = 0; i < n; i++)
        {
            if (key.Name[i] is >= (byte)'A' and <= (byte)'Z')
                key.Name[i] += 'a' - 'A';
        }
        return key;
    }

    private static GuardDestinationKey DestinationKey(DestinationRule rule)
    {
        var key = new GuardDestinationKey { PrefixLength = (uint)(16 + rule.PrefixBits) };
        key.Port[0] = (byte)(rule.Port >> 8);
        key.Port[1] = (byte)rule.Port;
        rule.Network.CopyTo(key.Address);
        return key;
    }

    private static GuardCgroupName UnitKey(string unit)
    {
        GuardCgroupName key = default;
        if (System.Text.Encoding.UTF8.GetByteCount(unit) >= GuardCgroupName.Capacity - 1)
            throw new SensorException($"job unit '{unit}' is longer than {GuardCgroupName.Capacity - 2} bytes");
        System.Text.Encoding.UTF8.GetBytes(unit, key.Name);
        return key;
    }
}
