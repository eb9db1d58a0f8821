using System.Globalization;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>
/// Whether a file the sensor holds is one the kernel named by device and
/// inode. The kernel names a file's superblock device (inode->i_sb->s_dev);
/// statx shows the same except on btrfs subvolumes and overlayfs layers, where
/// the device of the file's mount (in /proc/PID/mountinfo) says what the
/// kernel saw.
/// </summary>
public static class FileIdentity
{
    /// <summary>
    /// Whether <paramref name="status"/> is the file the kernel named
    /// <paramref name="kernelId"/>; the mount is looked up in the sensor's mount
    /// namespace, then in that of <paramref name="pid"/> (the file may be one
    /// the sensor's namespace cannot name).
    /// </summary>
    public static bool Is(FileStatus status, FileId kernelId, int pid) =>
        status.Inode == kernelId.Inode
        && (status.Device == kernelId.Device
            || ProcfsReader.ReadMountDevice("self", status.MountId) == kernelId.Device
            || ProcfsReader.ReadMountDevice(pid.ToString(CultureInfo.InvariantCulture), status.MountId) == kernelId.Device);

    /// <summary>
    /// What <paramref name="path"/> names now in the sensor's mount namespace,
    /// as the kernel would name it (superblock device, inode), following links
    /// as exec does; null when it names nothing. Opened O_PATH: nothing is read.
    /// </summary>
    public static FileId? KernelIdOf(string path)
    {
        using FileDescriptor? file = FileDescriptor.OpenPathOnly(path, out _);
        if (file?.Status(out _) is not { } status)
            return null;
        return new FileId(ProcfsReader.ReadMountDevice("self", status.MountId) ?? status.Device, status.Inode);
    }

    /// <summary>
    /// The device and inode of what a process runs (/proc/PID/exe), as statx
    /// shows them, from what the kernel holds: never waiting on the file's
    /// server (a FUSE daemon that does not answer). Null when it has none.
    /// </summary>
    public static FileId? OfRunning(int pid)
    {
        using FileDescriptor? exe = FileDescriptor.OpenPathOnly($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/exe", out _);
        return exe?.Status(out _, cachedOnly: true)?.Id;
    }
}
