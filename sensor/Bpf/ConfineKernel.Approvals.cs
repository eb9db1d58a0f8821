using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// What a person approved for one job (<c>guard approve</c>): destinations in
/// confine_approved and programs in confine_exec_approved, both keyed by the
/// job's own rule set and read by the kernel only after the allow lists denied.
/// </summary>
public sealed unsafe partial class ConfineKernel
{
    private int ApprovedFd => MapFd(BpfMapNames.ConfineApproved);

    private int ExecApprovedFd => MapFd(BpfMapNames.ConfineExecApproved);

    /// <summary>
    /// Lets job set <paramref name="set"/> reach <paramref name="address"/> (16 bytes, IPv4
    /// v4-mapped) on <paramref name="port"/> over <paramref name="protocol"/> (IPPROTO_TCP 6,
    /// IPPROTO_UDP 17) until <paramref name="expiresNs"/> (CLOCK_BOOTTIME; 0: until revoked).
    /// Another approved port of the same address is kept beside it (up to
    /// <see cref="GuardConfinePorts.Capacity"/>). Throws <see cref="SensorException"/> when the map refuses it.
    /// </summary>
    public void ApproveDestination(uint set, byte[] address, ushort port, byte protocol, ulong expiresNs)
    {
        GuardConfineKey key = KeyOf(set, address, 128);
        GuardConfinePorts value = default;
        var ranges = new List<GuardPortRange>();
        if (Libbpf.MapLookup(ApprovedFd, &key, &value) == 0)
        {
            for (int i = 0; i < (int)Math.Min(value.Count, GuardConfinePorts.Capacity); i++)
            {
                GuardPortRange r = value.Ranges[i];
                if (r.Low != port || r.Protocol != protocol)
                    ranges.Add(r);
            }
            // One end for the address: the later of the two, so no approval ends early.
            expiresNs = value.ExpiresNs == 0 || expiresNs == 0 ? 0 : Math.Max(value.ExpiresNs, expiresNs);
        }
        if (ranges.Count >= GuardConfinePorts.Capacity)
            throw new SensorException($"{GuardConfinePorts.Capacity} ports of this address are approved for the job already; deny or let one end first");
        ranges.Add(new GuardPortRange { Low = port, High = port, Protocol = protocol });
        var fresh = new GuardConfinePorts { Count = (uint)ranges.Count, ExpiresNs = expiresNs };
        for (int i = 0; i < ranges.Count; i++)
            fresh.Ranges[i] = ranges[i];
        Check(Libbpf.MapUpdate(ApprovedFd, &key, &fresh, 0), $"approve a destination for rule set {set}");
    }

    /// <summary>Ends the approval of <paramref name="port"/>/<paramref name="protocol"/> at <paramref name="address"/> for job set <paramref name="set"/>, and has connected sockets judged again.</summary>
    public void RevokeDestination(uint set, byte[] address, ushort port, byte protocol)
    {
        GuardConfineKey key = KeyOf(set, address, 128);
        GuardConfinePorts value = default;
        if (Libbpf.MapLookup(ApprovedFd, &key, &value) == 0)
        {
            var ranges = new List<GuardPortRange>();
            for (int i = 0; i < (int)Math.Min(value.Count, GuardConfinePorts.Capacity); i++)
            {
                GuardPortRange r = value.Ranges[i];
                if (r.Low != port || r.Protocol != protocol)
                    ranges.Add(r);
            }
            if (ranges.Count == 0)
                _ = Libbpf.MapDelete(ApprovedFd, &key);
            else
            {
                var kept = new GuardConfinePorts { Count = (uint)ranges.Count, ExpiresNs = value.ExpiresNs };
                for (int i = 0; i < ranges.Count; i++)
                    kept.Ranges[i] = ranges[i];
                _ = Libbpf.MapUpdate(ApprovedFd, &key, &kept, 0);
            }
        }
        BumpGeneration();
    }

    /// <summary>Every approved destination, by job set, address and ports.</summary>
    public List<(GuardConfineKey Key, GuardConfinePorts Ports)> ApprovedDestinations() => Libbpf.Entries<GuardConfineKey, GuardConfinePorts>(ApprovedFd);

    /// <summary>Lets job set <paramref name="set"/> run <paramref name="file"/> until <paramref name="expiresNs"/> (CLOCK_BOOTTIME; 0: until revoked). Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void ApproveProgram(uint set, FileId file, ulong expiresNs)
    {
        var key = new GuardConfineFileKey { Inode = file.Inode, Device = file.Device, Set = set };
        ulong value = expiresNs;
        Check(Libbpf.MapUpdate(ExecApprovedFd, &key, &value, 0), $"approve program {file.Device}:{file.Inode} for rule set {set}");
    }

    /// <summary>Ends the approval of <paramref name="file"/> for job set <paramref name="set"/>.</summary>
    public void RevokeProgram(uint set, FileId file)
    {
        var key = new GuardConfineFileKey { Inode = file.Inode, Device = file.Device, Set = set };
        _ = Libbpf.MapDelete(ExecApprovedFd, &key);
    }

    /// <summary>Every approved program, by job set and file, with its end (CLOCK_BOOTTIME ns; 0: until revoked).</summary>
    public List<(GuardConfineFileKey Key, ulong ExpiresNs)> ApprovedPrograms() => Libbpf.Entries<GuardConfineFileKey, ulong>(ExecApprovedFd);

    /// <summary>Removes every approval (a sensor starts: approvals end with the sensor that made them), and has connected sockets judged again.</summary>
    public void ClearApprovals()
    {
        foreach ((GuardConfineKey key, GuardConfinePorts _) in ApprovedDestinations())
        {
            GuardConfineKey k = key;
            _ = Libbpf.MapDelete(ApprovedFd, &k);
        }
        foreach ((GuardConfineFileKey key, ulong _) in ApprovedPrograms())
        {
            GuardConfineFileKey k = key;
            _ = Libbpf.MapDelete(ExecApprovedFd, &k);
        }
        BumpGeneration();
    }
}
