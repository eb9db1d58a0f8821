using System.Runtime.InteropServices;
using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>One file the exec maps name: its identity as the kernel sees it, the set (0: class programs), and the value.</summary>
/// <param name="Value"><see cref="ExecClassBits"/> in set 0; <see cref="GuardConfineExecRules.FileDeny"/> or <see cref="GuardConfineExecRules.FileAllow"/> in a section's set.</param>
public readonly record struct ConfineExecFile(FileId File, uint Set, uint Value);

/// <summary>The exec and GPU side of the pinned confinement: what each section denies at exec and which GPUs it may open.</summary>
public sealed unsafe partial class ConfineKernel
{
    /// <summary>GUARD_COMM_LEN - 1: the bytes of a name the kernel compares (a file's name cut to comm's length).</summary>
    public const int ExecNameBytes = 15;

    private int ExecRulesFd => MapFd(BpfMapNames.ConfineExecRules);

    private int ExecFilesFd => MapFd(BpfMapNames.ConfineExecFiles);

    private int ExecNamesFd => MapFd(BpfMapNames.ConfineExecNames);

    private int GpuFd => MapFd(BpfMapNames.ConfineGpu);

    /// <summary>The confine_acts ring buffer's descriptor (for <see cref="ConfineActReader"/>).</summary>
    public int ActsFd => MapFd(BpfMapNames.ConfineActs);

    /// <summary>Sets what rule set <paramref name="set"/> denies at exec (Deny 0: nothing). Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void WriteExecRules(uint set, GuardConfineExecRules rules) =>
        Check(Libbpf.MapUpdate(ExecRulesFd, &set, &rules, 0), $"write the exec rules of rule set {set}");

    /// <summary>Sets the GPUs rule set <paramref name="set"/> may open (Limited 0: any). Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void WriteGpu(uint set, GuardConfineGpu gpu) =>
        Check(Libbpf.MapUpdate(GpuFd, &set, &gpu, 0), $"write the GPUs of rule set {set}");

    /// <summary>What rule set <paramref name="set"/> denies at exec.</summary>
    public GuardConfineExecRules ExecRules(uint set)
    {
        GuardConfineExecRules rules = default;
        _ = Libbpf.MapLookup(ExecRulesFd, &set, &rules);
        return rules;
    }

    /// <summary>
    /// Makes the exec file map exactly <paramref name="files"/>: written first, then
    /// stale ones deleted (files the sensor learnt by hash go too, and are learnt again).
    /// Throws <see cref="SensorException"/> when the map refuses an entry.
    /// </summary>
    public void ReplaceExecFiles(IReadOnlyList<ConfineExecFile> files)
    {
        var keep = new HashSet<(ulong, uint, uint)>();
        foreach (ConfineExecFile f in files)
        {
            PutFile(f);
            keep.Add((f.File.Inode, f.File.Device, f.Set));
        }
        foreach ((GuardConfineFileKey key, uint _) in ExecFiles())
        {
            if (!keep.Contains((key.Inode, key.Device, key.Set)))
            {
                GuardConfineFileKey k = key;
                _ = Libbpf.MapDelete(ExecFilesFd, &k);
            }
        }
    }

    /// <summary>Adds one file (a program the sensor matched by hash): its next exec is judged in the kernel. Throws <see cref="SensorException"/> when the map refuses it.</summary>
    public void PutFile(ConfineExecFile f)
    {
        var key = new GuardConfineFileKey { Inode = f.File.Inode, Device = f.File.Device, Set = f.Set };
        uint value = f.Value;
        Check(Libbpf.MapUpdate(ExecFilesFd, &key, &value, 0), $"name file {f.File.Device}:{f.File.Inode} for exec confinement");
    }

    /// <summary>Every file the exec maps name, with its value.</summary>
    public List<(GuardConfineFileKey Key, uint Value)> ExecFiles() => Libbpf.EntriesInBatches<GuardConfineFileKey, uint>(ExecFilesFd);

    /// <summary>
    /// Makes the class names exactly <paramref name="names"/> (name: <see cref="ExecClassBits"/>);
    /// a name is cut to <see cref="ExecNameBytes"/> bytes as the kernel compares it.
    /// Throws <see cref="SensorException"/> when the map refuses an entry.
    /// </summary>
    public void ReplaceExecNames(IReadOnlyDictionary<string, uint> names)
    {
        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, uint classes) in names)
        {
            GuardName key = NameKey(name);
            uint value = classes;
            Check(Libbpf.MapUpdate(ExecNamesFd, &key, &value, 0), $"name the class program {name}");
            keep.Add(Convert.ToHexString(key.Name));
        }
        foreach ((GuardName key, uint _) in Libbpf.Entries<GuardName, uint>(ExecNamesFd))
        {
            if (!keep.Contains(Convert.ToHexString(key.Name)))
            {
                GuardName k = key;
                _ = Libbpf.MapDelete(ExecNamesFd, &k);
            }
        }
    }

    /// <summary>The launcher-tree job the kernel keeps process <paramref name="tgid"/> in, when its start is <paramref name="startTicks"/>; null otherwise.</summary>
    public GuardConfineJob? TreeJobOf(int tgid, long startTicks)
    {
        uint key = (uint)tgid;
        GuardConfineJob job;
        return Libbpf.MapLookup(TgidsFd, &key, &job) == 0 && job.StartTicks == (ulong)startTicks ? job : null;
    }

    /// <summary>The map key of a name: its first <see cref="ExecNameBytes"/> UTF-8 bytes, NUL-padded.</summary>
    private static GuardName NameKey(string name)
    {
        var key = new GuardName();
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        bytes.AsSpan(0, Math.Min(bytes.Length, ExecNameBytes)).CopyTo(MemoryMarshal.CreateSpan(ref key.Name[0], ExecNameBytes));
        return key;
    }
}
