using System.Globalization;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// Guard's files opened to a group (guard.toml's <c>[access] group</c>): a
/// directory Guard writes in is shared when root owns it, it is set-group-ID
/// and its group may list and enter it (root:GROUP, mode 2750, as
/// <c>guard watch</c> makes its run directory and its event file's directory).
/// A file Guard writes there is mode 0640 with the directory's group; anywhere
/// else 0600, root's alone. The directory carries the choice, so every guard
/// process (a `guard kill` appending to the action log too) writes alike
/// without reading the service's configuration.
/// </summary>
public static unsafe partial class SharedDirectory
{
    /// <summary>rw------- : a file in a directory that is not shared.</summary>
    public const int PrivateFileMode = 0x180;

    /// <summary>rw-r----- : a file in a shared directory, readable by its group.</summary>
    public const int SharedFileMode = 0x1A0;

    /// <summary>rwxr-s--- (02750): a shared directory.</summary>
    public const int SharedMode = 0x5E8;

    private const int SetGroupId = 0x400;
    private const int GroupReadExecute = 0x28;
    private const int AtFdCwd = -100;
    private const uint StatxMode = 0x2;
    private const uint StatxUid = 0x8;
    private const uint StatxGid = 0x10;

    /// <summary>The group <paramref name="directory"/> is shared with; null when it is not shared or cannot be read.</summary>
    public static uint? GroupOf(string directory)
    {
        // struct statx: stx_uid at 20, stx_gid at 24, stx_mode (16 bits) at 28.
        byte* buffer = stackalloc byte[256];
        if (Libc.Statx(AtFdCwd, directory, 0, StatxMode | StatxUid | StatxGid, buffer) != 0)
            return null;
        uint uid = *(uint*)(buffer + 20);
        uint gid = *(uint*)(buffer + 24);
        int mode = *(ushort*)(buffer + 28);
        return uid == 0 && gid != 0 && (mode & SetGroupId) != 0 && (mode & GroupReadExecute) == GroupReadExecute ? gid : null;
    }

    /// <summary>The mode a file Guard writes in <paramref name="directory"/> gets: 0640 there when it is shared, else 0600.</summary>
    public static int FileModeIn(string directory) => GroupOf(directory) is null ? PrivateFileMode : SharedFileMode;

    /// <summary>
    /// Gives the open file <paramref name="fd"/> the mode (and group) a file
    /// in <paramref name="directory"/> should have: 0640 and the directory's
    /// group when it is shared, else 0600 (its group left as it is).
    /// </summary>
    /// <exception cref="IOException">fchown or fchmod failed (CAP_CHOWN missing, a read-only file system): the errno's text.</exception>
    public static void Fit(int fd, string directory, string path)
    {
        uint? group = GroupOf(directory);
        // -1 keeps the owner: only the group changes, to the directory's (a file made there before it was shared).
        if (group is uint gid && FChown(fd, uint.MaxValue, gid) != 0)
            throw new IOException($"cannot give {path} the group {gid} of {directory}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        int mode = group is null ? PrivateFileMode : SharedFileMode;
        if (FChmod(fd, mode) != 0)
            throw new IOException($"cannot make {path} mode {Convert.ToString(mode, 8)}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>Makes <paramref name="directory"/> root:<paramref name="gid"/>, mode 2750.</summary>
    /// <exception cref="IOException">chown or chmod failed: the errno's text.</exception>
    public static void Share(string directory, uint gid) => Set(directory, gid, SharedMode);

    /// <summary>Makes <paramref name="directory"/> root:root with <paramref name="mode"/> again when it was shared; nothing otherwise.</summary>
    /// <exception cref="IOException">chown or chmod failed: the errno's text.</exception>
    public static void Unshare(string directory, int mode)
    {
        if (GroupOf(directory) is not null)
            Set(directory, 0, mode);
    }

    private static void Set(string directory, uint gid, int mode)
    {
        if (Chown(directory, 0, gid) != 0)
            throw new IOException($"cannot make {directory} root:{gid}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
        if (Chmod(directory, mode) != 0)
            throw new IOException($"cannot make {directory} mode {Convert.ToString(mode, 8)}: {Libc.ErrorText(Marshal.GetLastPInvokeError())}");
    }

    /// <summary>
    /// The group named <paramref name="nameOrNumber"/> (a name in
    /// <paramref name="groupFile"/>, or a number), or null when there is none;
    /// root's group (0) is never taken: root reads everything already.
    /// </summary>
    public static uint? GroupId(string nameOrNumber, string groupFile = "/etc/group")
    {
        if (uint.TryParse(nameOrNumber, NumberStyles.None, CultureInfo.InvariantCulture, out uint number))
            return number == 0 ? null : number;
        if (!File.Exists(groupFile))
            return null;
        foreach (string line in File.ReadLines(groupFile))
        {
            // name:password:GID:members
            string[] fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == nameOrNumber && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
                return gid == 0 ? null : gid;
        }
        return null;
    }

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int FChown(int fd, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "fchmod", SetLastError = true)]
    private static partial int FChmod(int fd, int mode);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chmod(string path, int mode);
}
