using System.Globalization;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Processes;

/// <summary>What <see cref="ExecutedFile.Check"/> found a handle to be.</summary>
public enum FileCheck
{
    /// <summary>The file the kernel named: a regular file on a file system no user serves.</summary>
    Same,

    /// <summary>Another file, or not a regular file.</summary>
    Other,

    /// <summary>On a FUSE file system, or one this namespace cannot place: never asked anything.</summary>
    NotLocal,

    /// <summary>Its status could not be read.</summary>
    Unreadable,
}

/// <summary>
/// Finds again the file a process was exec'd from, as the kernel named it
/// (superblock device, inode), without ever asking a FUSE daemon anything: a
/// request it reads and never answers holds the asking thread, and its
/// process's exit, for good (<see cref="Mount.ServedByAUser"/>). What the
/// kernel holds already (statx with AT_STATX_DONT_SYNC) and /proc/PID/mountinfo
/// say which file system a handle is on before anything else is done with it.
/// </summary>
public static class ExecutedFile
{
    private const int MaxSymlinks = 40;

    /// <summary>
    /// Whether <paramref name="file"/> is the file the kernel named <paramref name="expected"/>
    /// (any regular file when null); when <see cref="FileCheck.Same"/>, its
    /// <paramref name="status"/> as its file system says now (size, times).
    /// </summary>
    /// <param name="mounts">The sensor's mounts; the process's own are read when the file's mount is not among them.</param>
    /// <param name="pid">The process the file is thought to be the image of.</param>
    public static FileCheck Check(FileDescriptor file, FileId? expected, MountTable mounts, int pid, out FileStatus status)
    {
        status = default;
        if (file.Status(out _, cachedOnly: true) is not { } held)
            return FileCheck.Unreadable;
        Mount? mount = mounts.Find(held.MountId) ?? MountTable.Read(pid.ToString(CultureInfo.InvariantCulture)).Find(held.MountId);
        // A memfd lives on the kernel's own shmem (or hugetlbfs) mount, in no mount table: memory, no daemon to wait on.
        bool inMemory = mount is null && file.FileSystemMagic() is FileDescriptor.TmpfsMagic or FileDescriptor.HugetlbfsMagic;
        if (!inMemory && mount is not { ServedByAUser: false })
            return FileCheck.NotLocal;
        // stat's device is the subvolume's on btrfs and the layer's on overlayfs; the kernel names the superblock's.
        if (!held.IsRegular || (expected is { } e && !(held.Inode == e.Inode && (held.Device == e.Device || (mount is { } m && m.Device == e.Device)))))
            return FileCheck.Other;
        if (file.Status(out _) is not { } now)
            return FileCheck.Unreadable;
        status = now;
        return FileCheck.Same;
    }

    /// <summary>
    /// A handle (O_PATH) on what the absolute <paramref name="path"/> names in
    /// the sensor's mount namespace, walked one component at a time: no lookup
    /// in a FUSE directory (<paramref name="throughFuse"/> then), symlinks
    /// followed by hand (40 at most; a magic link's text is just a path).
    /// Null when it names nothing, or could not be walked.
    /// </summary>
    public static FileDescriptor? OpenPath(string path, MountTable mounts, out bool throughFuse)
    {
        throughFuse = false;
        if (!path.StartsWith('/') || FileDescriptor.OpenPathOnly("/", out _) is not { } current)
            return null;
        var pending = new Stack<string>();
        PushComponents(pending, path);
        int links = 0;
        while (pending.TryPop(out string? name))
        {
            // The directory searched next must be one whose lookups never wait on a user's daemon.
            if (current.Status(out _, cachedOnly: true) is not { } here || mounts.Find(here.MountId) is not { ServedByAUser: false })
            {
                throughFuse = true;
                current.Dispose();
                return null;
            }
            FileDescriptor? next = current.OpenPathOnlyIn(name, out _);
            if (next?.Status(out _, cachedOnly: true) is { IsSymlink: true })
            {
                next.Dispose();
                next = null;
                if (++links > MaxSymlinks || current.ReadLinkIn(name) is not { } target)
                {
                    current.Dispose();
                    return null;
                }
                if (target.StartsWith('/'))
                {
                    current.Dispose();
                    if (FileDescriptor.OpenPathOnly("/", out _) is not { } root)
                        return null;
                    current = root;
                }
                PushComponents(pending, target);
                continue;
            }
            current.Dispose();
            if (next is null)
                return null;
            current = next;
        }
        return current;
    }

    /// <summary>
    /// What <paramref name="path"/> names now in the sensor's mount namespace,
    /// as the kernel would name it (superblock device, inode), following links
    /// as exec does; null when it names nothing, or only through FUSE (a user
    /// may mount one over a directory of an allowed path). Nothing is read.
    /// </summary>
    public static FileId? KernelIdOf(string path)
    {
        MountTable mounts = MountTable.Read("self");
        using FileDescriptor? file = OpenPath(path, mounts, out _);
        if (file?.Status(out _, cachedOnly: true) is not { } status || mounts.Find(status.MountId) is not { ServedByAUser: false } mount)
            return null;
        return new FileId(mount.Device, status.Inode);
    }

    private static void PushComponents(Stack<string> pending, string path)
    {
        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = parts.Length - 1; i >= 0; i--)
        {
            if (parts[i] != ".")
                pending.Push(parts[i]);
        }
    }
}
