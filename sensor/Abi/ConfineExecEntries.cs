using System.Runtime.InteropServices;

namespace Guard.Sensor.Abi;

/// <summary>enum guard_exec_class in bpf/guard.h: what a program is, as the kernel sees it at exec; bits.</summary>
[Flags]
public enum ExecClassBits : uint
{
    /// <summary>No class.</summary>
    None = 0,

    /// <summary>GUARD_CLASS_SHELLS.</summary>
    Shells = 1 << 0,

    /// <summary>GUARD_CLASS_PACKAGE_MANAGERS.</summary>
    PackageManagers = 1 << 1,

    /// <summary>GUARD_CLASS_COMPILERS.</summary>
    Compilers = 1 << 2,

    /// <summary>GUARD_CLASS_DOWNLOADERS.</summary>
    Downloaders = 1 << 3,

    /// <summary>GUARD_CLASS_WORLD_WRITABLE: a directory above the file, up to its file system's root, is writable by anyone.</summary>
    WorldWritable = 1 << 4,

    /// <summary>GUARD_CLASS_MEMFD: a memfd (fileless).</summary>
    Memfd = 1 << 5,

    /// <summary>GUARD_CLASS_FILE: the section names this very file (a path, or a hash the sensor matched).</summary>
    File = 1 << 6,

    /// <summary>GUARD_CLASS_INTERPRETERS.</summary>
    Interpreters = 1 << 7,
}

/// <summary>enum guard_confine_act_kind in bpf/guard.h.</summary>
public enum ConfineActKind : uint
{
    /// <summary>GUARD_CONFINE_ACT_EXEC: an exec the section denies.</summary>
    Exec = 1,

    /// <summary>GUARD_CONFINE_ACT_GPU: an open of a GPU the section does not allow.</summary>
    Gpu = 2,
}

/// <summary>Value of confine_exec_rules (struct guard_confine_exec_rules in bpf/guard.h), by a section's rule set.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineExecRules
{
    /// <summary>GUARD_CONFINE_FILE_DENY: a section's file value, the file is denied.</summary>
    public const uint FileDeny = 1;

    /// <summary>GUARD_CONFINE_FILE_ALLOW: a section's file value, the file is allowed whatever its classes.</summary>
    public const uint FileAllow = 2;

    /// <summary><see cref="ExecClassBits"/> denied; 0: the section has no exec rules.</summary>
    public uint Deny;

    /// <summary><see cref="ExecClassBits"/> excepted from <see cref="Deny"/>.</summary>
    public uint Allow;
}

/// <summary>Key of confine_exec_files (struct guard_confine_file_key in bpf/guard.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineFileKey
{
    public ulong Inode;

    /// <summary>The superblock's s_dev (major &lt;&lt; 20 | minor).</summary>
    public uint Device;

    /// <summary>0: the class programs; a section's rule set: its own files.</summary>
    public uint Set;
}

/// <summary>Value of confine_gpu (struct guard_confine_gpu in bpf/guard.h): the /dev/nvidiaN minors a section allows.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineGpu
{
    /// <summary>GUARD_NVIDIA_MAJOR: /dev/nvidia* character devices (the NVIDIA driver's fixed major).</summary>
    public const uint NvidiaMajor = 195;

    /// <summary>Bit N: minor N allowed; 256 bits.</summary>
    public Bytes32 Minors;

    /// <summary>1: the section limits GPUs.</summary>
    public uint Limited;
    public uint Pad;
}

/// <summary>A confine_acts ring record (struct guard_confine_act in bpf/guard.h): one denied exec or GPU open.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct GuardConfineAct
{
    /// <summary>GUARD_CONFINE_PATH_LEN.</summary>
    public const int PathCapacity = 256;

    /// <summary>CLOCK_BOOTTIME ns.</summary>
    public ulong TimeNs;

    /// <summary>The process's start (its group leader's start_boottime, ns).</summary>
    public ulong StartTimeNs;
    public ulong Inode;
    public uint Device;
    public uint Tgid;
    public uint Section;
    public uint Job;

    /// <summary><see cref="ConfineKernelMode"/>.</summary>
    public uint Mode;

    /// <summary><see cref="ConfineActKind"/>.</summary>
    public uint Kind;

    /// <summary><see cref="ExecClassBits"/> the program is.</summary>
    public uint Classes;

    /// <summary><see cref="ExecClassBits"/> the section denies of those.</summary>
    public uint Denied;
    public uint Major;
    public uint Minor;

    /// <summary>1: SIGKILL was sent at exec.</summary>
    public uint Killed;
    public uint PathLength;
    public Bytes16 Comm;
    public Bytes256 Path;
}
