using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// The policy as the kernel applies it itself (bpf/verdicts.h): miner and
/// job-root names, the units that are jobs, allowed users, executables and
/// destinations, Stratum methods. The sensor's object and the enforcement object both carry these maps.
/// </summary>
internal static unsafe class PolicyMaps
{
    /// <summary>Writes what the kernel judges itself into a loaded object's maps (names from verdicts.h).</summary>
    public static void Write(nint obj, InKernelRules rules)
    {
        int miners = KernelSession.MapFd(obj, BpfMapNames.MinerNames);
        int roots = KernelSession.MapFd(obj, BpfMapNames.JobRootNames);
        int uids = KernelSession.MapFd(obj, BpfMapNames.AllowedUids);
        var flags = new Dictionary<MinerNamePattern, uint>();
        foreach (string name in rules.MinersAnywhere)
            flags[MinerNamePattern.Parse(name)] = GuardName.Anywhere | (rules.KillAnywhere ? GuardName.Kill : 0);
        foreach (string name in rules.MinersInJobs)
        {
            MinerNamePattern pattern = MinerNamePattern.Parse(name);
            flags[pattern] = flags.GetValueOrDefault(pattern) | GuardName.InJob | (rules.KillInJobs ? GuardName.Kill : 0);
        }
        foreach ((MinerNamePattern pattern, uint value) in flags)
            UpdateMinerName(miners, pattern, value);
        foreach (string name in rules.JobRoots)
            Update(roots, Comm.Of(name), 1);
        int methods = KernelSession.MapFd(obj, BpfMapNames.StratumMethods);
        foreach (string method in rules.StratumMethods)
        {
            GuardMethod key = default;
            if (System.Text.Encoding.UTF8.GetByteCount(method) >= GuardMethod.Capacity)
                throw new SensorException($"Stratum method '{method}' is longer than {GuardMethod.Capacity - 1} bytes");
            System.Text.Encoding.UTF8.GetBytes(method, key.Name);
            uint verdict = rules.DropStratum ? GuardMethod.Drop : GuardMethod.Alert;
            int rc = Libbpf.MapUpdate(methods, &key, &verdict, 0);
            if (rc != 0)
                throw new SensorException($"cannot write Stratum method '{method}' into the kernel map: {Libc.ErrorText(-rc)}");
        }
        int destinations = KernelSession.MapFd(obj, BpfMapNames.AllowedDestinations);
        foreach (DestinationRule rule in rules.AllowedDestinations)
        {
            var key = new GuardDestinationKey { PrefixLength = (uint)(16 + rule.PrefixBits) };
            key.Port[0] = (byte)(rule.Port >> 8);
            key.Port[1] = (byte)rule.Port;
            rule.Network.CopyTo(key.Address);
            byte one = 1;
            int rc = Libbpf.MapUpdate(destinations, &key, &one, 0);
            if (rc != 0)
                throw new SensorException($"cannot write the allowed destinations into the kernel map: {Libc.ErrorText(-rc)}");
        }
        int files = KernelSession.MapFd(obj, BpfMapNames.AllowedFiles);
        foreach ((uint device, ulong inode) in rules.AllowedFiles)
        {
            var key = new GuardFileKey { Inode = inode, Device = device };
            byte one = 1;
            int rc = Libbpf.MapUpdate(files, &key, &one, 0);
            if (rc != 0)
                throw new SensorException($"cannot write the allowed executables into the kernel map: {Libc.ErrorText(-rc)}");
        }
        int units = KernelSession.MapFd(obj, BpfMapNames.JobUnits);
        foreach (string unit in rules.JobUnits)
        {
            GuardCgroupName key = default;
            if (System.Text.Encoding.UTF8.GetByteCount(unit) >= GuardCgroupName.Capacity - 1)
                throw new SensorException($"job unit '{unit}' is longer than {GuardCgroupName.Capacity - 2} bytes");
            System.Text.Encoding.UTF8.GetBytes(unit, key.Name);
            byte one = 1;
            int rc = Libbpf.MapUpdate(units, &key, &one, 0);
            if (rc != 0)
                throw new SensorException($"cannot write the job units into the kernel map: {Libc.ErrorText(-rc)}");
        }
        foreach (uint uid in rules.AllowedUids)
        {
            uint key = uid, one = 1;
            int rc = Libbpf.MapUpdate(uids, &key, &one, 0);
            if (rc != 0)
                throw new SensorException($"cannot write the allowed users into the kernel map: {Libc.ErrorText(-rc)}");
        }
    }

    private static void UpdateMinerName(int fd, MinerNamePattern pattern, uint value)
    {
        byte[] bytes = pattern.KeyBytes();
        var key = new GuardNameKey { PrefixLength = (uint)(8 * bytes.Length) };
        bytes.CopyTo(key.Name);
        int rc = Libbpf.MapUpdate(fd, &key, &value, 0);
        if (rc != 0)
            throw new SensorException($"cannot write the miner name '{pattern}' into a kernel map: {Libc.ErrorText(-rc)}");
    }

    private static void Update(int fd, string name, uint value)
    {
        GuardName key = default;
        System.Text.Encoding.UTF8.GetBytes(name, key.Name);
        int rc = Libbpf.MapUpdate(fd, &key, &value, 0);
        if (rc != 0)
            throw new SensorException($"cannot write '{name}' into a kernel map: {Libc.ErrorText(-rc)}");
    }


}
