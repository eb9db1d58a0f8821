using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Guard.Sensor.Abi;
using Guard.Sensor.Gpu;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// bpf/guard.h and sensor/Abi/ describe the same bytes. clang compiles
/// the header for BPF with every type anchored, bpftool prints its BTF, and
/// each C# struct must match size and every field offset, each enum every value.
/// </summary>
public sealed partial class RecordLayoutTests
{
    private static readonly (string C, Type CSharp)[] Structs =
    [
        ("guard_header", typeof(RecordHeader)),
        ("guard_exec", typeof(ExecRecord)),
        ("guard_fork", typeof(ForkRecord)),
        ("guard_exit", typeof(ExitRecord)),
        ("guard_connect", typeof(ConnectRecord)),
        ("guard_payload", typeof(PayloadRecord)),
        ("guard_dns", typeof(DnsRecord)),
        ("guard_stream", typeof(StreamRecord)),
        ("guard_exec_args", typeof(ExecArgsRecord)),
        ("guard_gpu_open", typeof(GpuOpenRecord)),
        ("guard_gpu_ioctl", typeof(GpuIoctlRecord)),
        ("guard_gpu_count_key", typeof(GpuCountKey)),
        ("guard_gpu_device", typeof(GuardGpuDevice)),
        ("guard_config", typeof(GuardConfig)),
        ("guard_name", typeof(GuardName)),
        ("guard_name_key", typeof(GuardNameKey)),
        ("guard_job_member", typeof(GuardJobMember)),
        ("guard_cgroup_name", typeof(GuardCgroupName)),
        ("guard_method", typeof(GuardMethod)),
        ("guard_quarantine", typeof(GuardQuarantine)),
        ("guard_device_key", typeof(GuardDeviceKey)),
        ("guard_destination_key", typeof(GuardDestinationKey)),
        ("guard_file_key", typeof(GuardFileKey)),
        ("guard_rounding", typeof(GuardRounding)),
        ("guard_member", typeof(GuardMember)),
        ("guard_process_id", typeof(GuardProcessId)),
        ("guard_lineage", typeof(GuardLineage)),
        ("guard_sock_owner", typeof(GuardSockOwner)),
        ("guard_unix_head", typeof(GuardUnixHead)),
        ("guard_unix_dgram_heads", typeof(GuardUnixDgramHeads)),
        ("guard_continue_key", typeof(GuardContinueKey)),
        ("guard_continue", typeof(GuardContinue)),
        ("guard_confine_job", typeof(GuardConfineJob)),
        ("guard_confine_key", typeof(GuardConfineKey)),
        ("guard_port_range", typeof(GuardPortRange)),
        ("guard_confine_ports", typeof(GuardConfinePorts)),
        ("guard_confine_denial_key", typeof(GuardConfineDenialKey)),
        ("guard_confine_denial", typeof(GuardConfineDenial)),
        ("guard_confine_exec_rules", typeof(GuardConfineExecRules)),
        ("guard_confine_file_key", typeof(GuardConfineFileKey)),
        ("guard_confine_gpu", typeof(GuardConfineGpu)),
        ("guard_confine_act", typeof(GuardConfineAct)),
    ];

    private static readonly (string C, Type CSharp)[] Enums =
    [
        ("guard_record_kind", typeof(RecordKind)),
        ("guard_connect_result", typeof(ConnectResult)),
        ("guard_proxy", typeof(StreamProxy)),
        ("guard_proxy_address", typeof(ProxyAddress)),
        ("guard_gpu_role", typeof(GpuRole)),
        ("guard_ioctl_kind", typeof(IoctlKind)),
        ("guard_quarantine_mode", typeof(QuarantineMode)),
        ("guard_quarantine_expiry", typeof(QuarantineExpiry)),
        ("guard_continue_via", typeof(ContinueVia)),
        ("guard_confine_mode", typeof(ConfineKernelMode)),
        ("guard_confine_what", typeof(ConfineWhat)),
        ("guard_exec_class", typeof(ExecClassBits)),
        ("guard_confine_act_kind", typeof(ConfineActKind)),
    ];

    private static readonly Lazy<string> Btf = new(DumpHeaderBtf);

    private static string DumpHeaderBtf()
    {
        string dir = Path.Combine(Path.GetTempPath(), "guard-layout-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string source = Path.Combine(dir, "anchors.c");
            var anchors = string.Join("\n", Structs.Select(s => $"struct {s.C} anchor_{s.C};").Concat(Enums.Select(e => $"enum {e.C} anchor_{e.C};")));
            File.WriteAllText(source, $"#include \"vmlinux.h\"\n#include \"guard.h\"\n{anchors}\n");
            string obj = Path.Combine(dir, "anchors.o");
            Run.Complete("clang", "-g", "-O2", "-target", "bpf", "-I", RepoPaths.GeneratedBpfDir, "-I", RepoPaths.Bpf, "-c", source, "-o", obj);
            return Run.Complete("bpftool", "btf", "dump", "file", obj);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [GeneratedRegex(@"^\[\d+\] STRUCT '(?<name>\w+)' size=(?<size>\d+) vlen=(?<vlen>\d+)$")]
    private static partial Regex StructLine();

    [GeneratedRegex(@"^\s+'(?<field>\w+)' type_id=\d+ bits_offset=(?<bits>\d+)")]
    private static partial Regex MemberLine();

    [GeneratedRegex(@"^\[\d+\] ENUM '(?<name>\w+)' .*vlen=(?<vlen>\d+)$")]
    private static partial Regex EnumLine();

    [GeneratedRegex(@"^\s+'(?<name>\w+)' val=(?<value>-?\d+)")]
    private static partial Regex EnumValueLine();

    private static (int Size, List<(string Field, int Offset)> Members) CStruct(string name)
    {
        string[] lines = Btf.Value.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            Match m = StructLine().Match(lines[i]);
            if (!m.Success || m.Groups["name"].Value != name)
                continue;
            int vlen = int.Parse(m.Groups["vlen"].Value, System.Globalization.CultureInfo.InvariantCulture);
            var members = lines.Skip(i + 1).Take(vlen).Select(l => MemberLine().Match(l))
                .Select(mm => (mm.Groups["field"].Value, int.Parse(mm.Groups["bits"].Value, System.Globalization.CultureInfo.InvariantCulture) / 8)).ToList();
            return (int.Parse(m.Groups["size"].Value, System.Globalization.CultureInfo.InvariantCulture), members);
        }
        throw new Xunit.Sdk.XunitException($"struct {name} is not in guard.h's BTF");
    }

    public static TheoryData<string> StructNames => [.. Structs.Select(s => s.C)];

    public static TheoryData<string> EnumNames => [.. Enums.Select(e => e.C)];

    [Theory]
    [MemberData(nameof(StructNames))]
    public void CSharpRecordMatchesTheHeaderFieldForField(string cName)
    {
        Type type = Structs.Single(s => s.C == cName).CSharp;
        (int size, List<(string Field, int Offset)> members) = CStruct(cName);
        FieldInfo[] fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        Assert.Equal(size, Marshal.SizeOf(type));
        Assert.Equal(members.Count, fields.Length);
        for (int i = 0; i < members.Count; i++)
            Assert.True(members[i].Offset == (int)Marshal.OffsetOf(type, fields[i].Name), $"{cName}.{members[i].Field} is at {members[i].Offset}; {type.Name}.{fields[i].Name} at {Marshal.OffsetOf(type, fields[i].Name)}");
    }

    [Theory]
    [MemberData(nameof(EnumNames))]
    public void CSharpEnumMatchesTheHeaderValueForValue(string cName)
    {
        Type type = Enums.Single(e => e.C == cName).CSharp;
        string[] lines = Btf.Value.Split('\n');
        int at = Array.FindIndex(lines, l => EnumLine().Match(l) is { Success: true } m && m.Groups["name"].Value == cName);
        Assert.True(at >= 0, $"enum {cName} is not in guard.h's BTF");
        int vlen = int.Parse(EnumLine().Match(lines[at]).Groups["vlen"].Value, System.Globalization.CultureInfo.InvariantCulture);
        var values = Enum.GetValues(type).Cast<object>().ToDictionary(v => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture));
        foreach (string line in lines.Skip(at + 1).Take(vlen))
        {
            Match m = EnumValueLine().Match(line);
            long value = long.Parse(m.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(values.ContainsKey(value), $"{m.Groups["name"].Value} = {value} has no {type.Name} member");
        }
    }

    [Fact]
    public void AbiVersionMatchesTheHeader()
    {
        string header = File.ReadAllText(Path.Combine(RepoPaths.Bpf, "guard.h"));
        Match m = Regex.Match(header, @"#define GUARD_ABI_VERSION (\d+)");
        Assert.Equal(RecordHeader.AbiVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Groups[1].Value);
    }

    /// <summary>The kernel compares starts in the clock ticks /proc shows: its tick length is the host's.</summary>
    [Fact]
    public void ClockTickMatchesTheHeaderAndThisHost()
    {
        string header = File.ReadAllText(Path.Combine(RepoPaths.Bpf, "guard.h"));
        Match m = Regex.Match(header, @"#define GUARD_NS_PER_TICK (\d+)ULL");
        Assert.Equal(GuardProcessId.NsPerTick.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Groups[1].Value);
        Assert.Equal(GuardProcessId.NsPerTick, 1_000_000_000UL / (ulong)Guard.Sensor.Processes.ClockTicks.PerSecond);
    }

    [Fact]
    public void CgroupJobLevelsMatchTheHeader()
    {
        // The kernel and CgroupJobs read the same levels of a cgroup path for a job's name.
        string header = File.ReadAllText(Path.Combine(RepoPaths.Bpf, "guard.h"));
        Match m = Regex.Match(header, @"#define GUARD_CGROUP_JOB_LEVELS (\d+)");
        Assert.Equal(GuardCgroupName.JobLevels.ToString(System.Globalization.CultureInfo.InvariantCulture), m.Groups[1].Value);
    }
}
