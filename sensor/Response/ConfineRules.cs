using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The [[confine]] sections as the kernel takes them: each section's rule set
/// (its egress addresses and its resolvers' port 53, folded so that the
/// longest matching prefix carries every port a shorter one allows), and
/// which section confines a job (the first that selects it).
/// </summary>
public sealed class ConfineRules
{
    /// <summary>GUARD_CONFINE_JOB_SETS: rule sets below this are sections' (the section's place + 1); a job cgroup's own sets are numbered from here.</summary>
    public const uint FirstJobSet = 1024;

    /// <summary>GUARD_CONFINE_TREE_SETS: the own set of a tree user space confines is this + its root's tgid.</summary>
    public const uint FirstTreeSet = 0x40000000;

    /// <summary>GUARD_CONFINE_KERNEL_SETS: own sets from here are those the kernel gives trees it starts at a launcher's exec.</summary>
    public const uint FirstKernelSet = 0x80000000;

    /// <summary>
    /// The own rule set of the job whose cgroup has id <paramref name="cgroupId"/>: the
    /// same for the same cgroup in every sensor run, so what its DNS answers allowed
    /// survives a restart. Two cgroups share one only 2^30 cgroup ids apart.
    /// </summary>
    public static uint CgroupJobSet(ulong cgroupId) => FirstJobSet + (uint)(cgroupId % (FirstTreeSet - FirstJobSet));

    /// <summary>The own rule set of a tree user space confines from its root <paramref name="rootTgid"/> (pid_max is at most 2^22).</summary>
    public static uint TreeJobSet(int rootTgid) => FirstTreeSet + (uint)rootTgid;

    private const ushort DnsPort = 53;

    /// <summary>Reads the sections of <paramref name="policy"/>; throws <see cref="SensorException"/> when a section needs more than the kernel holds.</summary>
    public ConfineRules(Policy policy)
    {
        if (policy.Confine.Count >= FirstJobSet)
            throw new SensorException($"{policy.Confine.Count} [[confine]] sections: the kernel numbers at most {FirstJobSet - 1}");
        Sections = policy.Confine;
        Sets = [.. Sections.Select((s, i) => EntriesOf(s, (uint)i + 1))];
    }

    /// <summary>The sections, in policy order.</summary>
    public IReadOnlyList<ConfineSection> Sections { get; }

    /// <summary>Each section's allow entries, in section order (set = index + 1).</summary>
    public IReadOnlyList<IReadOnlyList<ConfineAllowEntry>> Sets { get; }

    /// <summary>The rule set number of a section.</summary>
    public uint SetOf(ConfineSection section)
    {
        for (int i = 0; i < Sections.Count; i++)
        {
            if (ReferenceEquals(Sections[i], section))
                return (uint)i + 1;
        }
        throw new ArgumentException($"section {section.Name} is not one of these rules", nameof(section));
    }

    /// <summary>The section with rule set <paramref name="set"/>; null for a job's own set or one no section has.</summary>
    public ConfineSection? SectionOfSet(uint set) => set >= 1 && set <= Sections.Count ? Sections[(int)set - 1] : null;

    /// <summary>The kernel's entry for a job confined by <paramref name="section"/>, with its own set <paramref name="jobSet"/> (0: none).</summary>
    public GuardConfineJob KernelJob(ConfineSection section, uint jobSet) => new()
    {
        Section = SetOf(section),
        Job = jobSet,
        Mode = (uint)(section.Mode switch { ConfineMode.Audit => ConfineKernelMode.Audit, ConfineMode.Ask => ConfineKernelMode.Ask, _ => ConfineKernelMode.Enforce }),
    };

    /// <summary>The job id prefixes of the kinds the kernel tells by cgroup name, in enum guard_confine_kind order from 1 (bpf/jobnames.h).</summary>
    private static readonly string[] KernelKindPrefixes = ["slurm:", "k8s-pod:", "container:"];

    /// <summary>
    /// confine_kinds: for each job kind the kernel tells by its cgroup's name (Slurm
    /// job, pod, container; index by enum guard_confine_kind, 0 the first of them
    /// set), the entry of the section that confines every new job of the kind at its
    /// first exec, before a sensor sees it; Section 0 where the first section that
    /// could select such a job selects only some, by terms the kernel cannot judge
    /// (an id glob, a user, a group), or none does.
    /// </summary>
    public GuardConfineJob[] KernelKinds()
    {
        var kinds = new GuardConfineJob[KernelKindPrefixes.Length + 1];
        for (int k = 0; k < KernelKindPrefixes.Length; k++)
        {
            string prefix = KernelKindPrefixes[k];
            foreach (ConfineSection s in Sections)
            {
                if (s.Select.Jobs.Any(g => SelectsEvery(g, prefix)))
                {
                    kinds[k + 1] = KernelJob(s, 0);
                    break;
                }
                if (s.Select.Users.Count > 0 || s.Select.Groups.Count > 0 || s.Select.Jobs.Any(g => MaySelect(g, prefix)))
                    break;
            }
        }
        kinds[0] = kinds.Skip(1).FirstOrDefault(k => k.Section != 0);
        return kinds;
    }

    /// <summary>Whether <paramref name="glob"/> matches every job id that starts with <paramref name="prefix"/>: a literal start of the prefix, then only '*'.</summary>
    private static bool SelectsEvery(string glob, string prefix)
    {
        string literal = glob.TrimEnd('*');
        return literal.Length < glob.Length && literal.IndexOfAny(['*', '?']) < 0 && prefix.StartsWith(literal, StringComparison.Ordinal);
    }

    /// <summary>Whether <paramref name="glob"/> may match some job id that starts with <paramref name="prefix"/>: its literal start and the prefix agree.</summary>
    private static bool MaySelect(string glob, string prefix)
    {
        int wild = glob.IndexOfAny(['*', '?']);
        string literal = wild < 0 ? glob : glob[..wild];
        return literal.StartsWith(prefix, StringComparison.Ordinal) || prefix.StartsWith(literal, StringComparison.Ordinal);
    }

    /// <summary>
    /// The first section that confines a job with id <paramref name="jobId"/> (slurm:N,
    /// tree:ID, ...) whose first process seen is <paramref name="process"/>; null when none does.
    /// </summary>
    public ConfineSection? SectionFor(string? jobId, ProcessEntry? launcher, uint uid, uint gid, Func<string, uint?> userId, Func<string, uint?> groupId) =>
        Sections.FirstOrDefault(s =>
            (jobId is not null && s.Select.Jobs.Any(g => ConfineParser.GlobMatches(g, jobId)))
            || (launcher is not null && s.Select.Launchers.Any(l => LauncherIs(l, launcher)))
            || s.Select.Users.Any(u => userId(u) == uid)
            || s.Select.Groups.Any(g => groupId(g) == gid));

    /// <summary>Whether <paramref name="launcher"/> (a comm, or an absolute path) names the process.</summary>
    public static bool LauncherIs(string launcher, ProcessEntry process) =>
        launcher.StartsWith('/') ? process.ExecutableText == launcher : process.NameText == launcher;

    /// <summary>The launchers named by comm, each with the first section naming it: the kernel starts their trees at exec.</summary>
    public IEnumerable<(string Comm, ConfineSection Section)> LauncherNames() =>
        Sections.SelectMany(s => s.Select.Launchers.Where(l => !l.StartsWith('/')).Select(l => (Comm: l, Section: s))).DistinctBy(x => x.Comm);

    /// <summary>
    /// One section's allow entries: every address rule and every resolver's port 53,
    /// IPv4 as v4-mapped IPv6 (prefix 96 + n), each prefix carrying the ranges of
    /// every prefix of the section that covers it. Throws <see cref="SensorException"/>
    /// when a prefix needs more port ranges than the kernel keeps.
    /// </summary>
    public static List<ConfineAllowEntry> EntriesOf(ConfineSection section, uint set)
    {
        var rules = new List<(byte[] Address, int Prefix, GuardPortRange Ports)>();
        foreach (EgressAddress a in section.Egress?.Addresses ?? [])
            rules.Add((Mapped(a.Network), MappedPrefix(a.Network, a.PrefixLength), Range(a.Ports, a.Protocol)));
        foreach (IPAddress resolver in section.Resolvers)
            rules.Add((Mapped(resolver), 128, Range(new PortRange(DnsPort, DnsPort), ConfineProtocol.Any)));
        var entries = new List<ConfineAllowEntry>();
        foreach (var prefix in rules.Select(r => (r.Address, r.Prefix)).DistinctBy(p => (Convert.ToHexString(p.Address), p.Prefix)))
        {
            List<GuardPortRange> ranges = Merge(rules.Where(r => r.Prefix <= prefix.Prefix && Covers(r.Address, r.Prefix, prefix.Address)).Select(r => r.Ports));
            if (ranges.Count > GuardConfinePorts.Capacity)
                throw new SensorException($"[[confine]] {section.Name} ({section.Source}): {new IPAddress(prefix.Address)}/{prefix.Prefix} needs {ranges.Count} port ranges; the kernel keeps {GuardConfinePorts.Capacity} at one prefix");
            entries.Add(new ConfineAllowEntry(set, prefix.Address, prefix.Prefix, ranges, 0));
        }
        return entries;
    }

    /// <summary>
    /// One section's DNS names as the kernel keys them (wire form, lower case):
    /// each name with the ports an answer for it allows, and for a *.SUFFIX rule
    /// the ports an answer for a name under it allows; rules of one name merged.
    /// Throws <see cref="SensorException"/> when a name needs more port ranges than the kernel keeps.
    /// </summary>
    public static List<(byte[] Wire, IReadOnlyList<GuardPortRange> Exact, IReadOnlyList<GuardPortRange> Under)> NamesOf(ConfineSection section)
    {
        var names = new List<(byte[], IReadOnlyList<GuardPortRange>, IReadOnlyList<GuardPortRange>)>();
        foreach (IGrouping<string, EgressName> same in (section.Egress?.Names ?? []).GroupBy(n => n.Name))
        {
            List<GuardPortRange> exact = Merge(same.Where(n => !n.Suffix).Select(n => Range(n.Ports, n.Protocol)));
            List<GuardPortRange> under = Merge(same.Where(n => n.Suffix).Select(n => Range(n.Ports, n.Protocol)));
            if (exact.Count > GuardConfinePorts.Capacity || under.Count > GuardConfinePorts.Capacity)
                throw new SensorException($"[[confine]] {section.Name} ({section.Source}): {same.Key} needs more than {GuardConfinePorts.Capacity} port ranges");
            names.Add((Wire(same.Key), exact, under));
        }
        return names;
    }

    /// <summary>A DNS name (lower case, dotted, no final dot) in wire form without the final zero: "a.b" is 1 'a' 1 'b'.</summary>
    public static byte[] Wire(string name)
    {
        var wire = new List<byte>(name.Length + 1);
        foreach (string label in name.Split('.'))
        {
            wire.Add((byte)label.Length);
            wire.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        return [.. wire];
    }

    /// <summary>16 bytes: IPv6 as it is, IPv4 v4-mapped (::ffff:a.b.c.d), as the kernel keys both.</summary>
    public static byte[] Mapped(IPAddress address) =>
        (address.AddressFamily == AddressFamily.InterNetwork ? address.MapToIPv6() : address).GetAddressBytes();

    /// <summary>The prefix of a mapped address: an IPv4 /n is /96+n.</summary>
    public static int MappedPrefix(IPAddress address, int prefix) => address.AddressFamily == AddressFamily.InterNetwork ? 96 + prefix : prefix;

    /// <summary>A range as the kernel keeps it.</summary>
    public static GuardPortRange Range(PortRange ports, ConfineProtocol protocol) =>
        new() { Low = ports.Low, High = ports.High, Protocol = (byte)protocol };

    private static bool Covers(byte[] network, int prefix, byte[] address)
    {
        for (int bit = 0; bit < prefix; bit++)
        {
            int mask = 0x80 >> (bit % 8);
            if ((network[bit / 8] & mask) != (address[bit / 8] & mask))
                return false;
        }
        return true;
    }

    /// <summary>Overlapping or adjacent ranges of one protocol joined; a range for any protocol swallows those of one it covers.</summary>
    private static List<GuardPortRange> Merge(IEnumerable<GuardPortRange> ranges)
    {
        var merged = new List<GuardPortRange>();
        foreach (IGrouping<byte, GuardPortRange> group in ranges.GroupBy(r => r.Protocol).OrderBy(g => g.Key))
        {
            foreach (GuardPortRange r in group.OrderBy(r => r.Low))
            {
                if (merged.Count > 0 && merged[^1].Protocol == r.Protocol && r.Low <= merged[^1].High + 1)
                {
                    GuardPortRange last = merged[^1];
                    last.High = Math.Max(last.High, r.High);
                    merged[^1] = last;
                }
                else
                    merged.Add(r);
            }
        }
        // A TCP or UDP range inside a range for any protocol adds nothing.
        return [.. merged.Where(r => r.Protocol == 0 || !merged.Any(a => a.Protocol == 0 && a.Low <= r.Low && a.High >= r.High))];
    }

    /// <summary>A user or group name, or a number, resolved through <paramref name="file"/> (/etc/passwd, /etc/group); null when unknown.</summary>
    public static uint? IdFromFile(string name, string file) => LocalAccounts.IdFromFile(name, file);
}
