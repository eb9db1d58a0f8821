using System.Text;
using Guard.Sensor.Abi;

namespace Guard.Tests.Support;

/// <summary>Kernel records made up for the user-space pipeline; a process's start time follows from its pid, so identities are stable.</summary>
public static class SyntheticRecords
{
    /// <summary>Start time in boot nanoseconds: whole seconds, 1 to 100.</summary>
    public static ulong StartOf(int pid) => 1_000_000_000UL * (ulong)(pid % 100 + 1);

    public static RecordHeader Header(RecordKind kind, int pid, ulong timeNs) =>
        new() { Kind = kind, Version = RecordHeader.AbiVersion, Pid = (uint)pid, TimeNs = timeNs, StartTimeNs = StartOf(pid) };

    /// <summary>A fork of <paramref name="pid"/> by <paramref name="parent"/> (0: none known).</summary>
    public static ForkRecord Fork(int pid, int parent) =>
        new() { Header = Header(RecordKind.Fork, pid, 1), ParentPid = (uint)parent, ParentStartTimeNs = parent == 0 ? 0 : StartOf(parent) };

    /// <summary>An exec of <paramref name="args"/> (split at spaces), inside the job of <paramref name="jobRoot"/> when not 0.</summary>
    public static ExecRecord Exec(int pid, int parent, string args, int jobRoot = 0)
    {
        var e = new ExecRecord
        {
            Header = Header(RecordKind.Exec, pid, 10),
            Ppid = (uint)parent,
            ParentStartTimeNs = parent == 0 ? 0 : StartOf(parent),
            JobRootPid = (uint)jobRoot,
            Flags = jobRoot == 0 ? 0 : ExecRecord.InJob,
        };
        byte[] bytes = Encoding.ASCII.GetBytes(args.Replace(' ', '\0'));
        bytes.CopyTo(e.Args);
        e.ArgsLength = (ushort)bytes.Length;
        return e;
    }
}
