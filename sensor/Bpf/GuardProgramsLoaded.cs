using System.Globalization;
using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>A Guard program loaded in the kernel, and the processes whose fds keep it there.</summary>
public sealed record LoadedProgram(uint Id, string Name, IReadOnlyList<int> HolderPids);

/// <summary>Finds every Guard program in the kernel, whoever loaded it, and who holds it.</summary>
public static unsafe class GuardProgramsLoaded
{
    private const int NameOffset = 64; // struct bpf_prog_info: name[16] follows map_ids
    private const int InfoSize = 256;

    public static IReadOnlyList<LoadedProgram> List()
    {
        Libbpf.EnsureResolver();
        var names = new Dictionary<uint, string>();
        byte* info = stackalloc byte[InfoSize];
        uint id = 0;
        while (Libbpf.ProgramNextId(id, out uint next) == 0)
        {
            id = next;
            int fd = Libbpf.ProgramFdById(id);
            if (fd < 0)
                continue;
            using var owned = new FileDescriptor(fd);
            new Span<byte>(info, InfoSize).Clear();
            uint length = InfoSize;
            if (Libbpf.ObjectInfo(fd, info, ref length) != 0)
                continue;
            var name = new ReadOnlySpan<byte>(info + NameOffset, 16);
            int end = name.IndexOf((byte)0);
            string text = Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
            if (text.StartsWith(BpfProgramNames.Prefix, StringComparison.Ordinal))
                names[id] = text;
        }
        Dictionary<uint, List<int>> holders = Holders(names.Keys);
        return [.. names.Select(kv => new LoadedProgram(kv.Key, kv.Value, holders.GetValueOrDefault(kv.Key) ?? []))];
    }

    /// <summary>The id of the program behind descriptor <paramref name="fd"/> (struct bpf_prog_info.id); 0 when it cannot be read.</summary>
    public static uint IdOf(int fd)
    {
        byte* info = stackalloc byte[InfoSize];
        new Span<byte>(info, InfoSize).Clear();
        uint length = InfoSize;
        return Libbpf.ObjectInfo(fd, info, ref length) == 0 ? *(uint*)(info + 4) : 0;
    }

    /// <summary>Reads /proc/PID/fdinfo: a program fd or a link fd names its prog_id there.</summary>
    private static Dictionary<uint, List<int>> Holders(IEnumerable<uint> ids)
    {
        var wanted = new HashSet<uint>(ids);
        var holders = new Dictionary<uint, List<int>>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            try
            {
                foreach (string fdinfo in Directory.EnumerateFiles($"{dir}/fdinfo"))
                {
                    foreach (string line in File.ReadLines(fdinfo))
                    {
                        if (!line.StartsWith("prog_id:", StringComparison.Ordinal)
                            || !uint.TryParse(line.AsSpan(8).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out uint progId)
                            || !wanted.Contains(progId))
                            continue;
                        List<int> list = holders.TryGetValue(progId, out List<int>? l) ? l : holders[progId] = [];
                        if (!list.Contains(pid))
                            list.Add(pid);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A process that left while we read.
            }
        }
        return holders;
    }
}
