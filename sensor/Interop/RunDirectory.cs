namespace Guard.Sensor.Interop;

/// <summary>
/// Guard's directory on the host's tmpfs, /run/guard (GUARD_RUN_DIR moves it;
/// the tests keep their own): what lasts no longer than a boot, like the pins.
/// The running sensors register there, and guard processes take their locks there.
/// </summary>
public static class RunDirectory
{
    public const string DefaultPath = "/run/guard";

    /// <summary>GUARD_RUN_DIR when set, else /run/guard.</summary>
    public static string Path => Environment.GetEnvironmentVariable("GUARD_RUN_DIR") is { Length: > 0 } dir ? dir : DefaultPath;

    /// <summary>
    /// Creates the directory (mode 0755: only root writes what the others trust),
    /// with <paramref name="subdirectory"/> when given, and returns its path.
    /// Throws <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when it cannot.
    /// </summary>
    public static string Ensure(string? subdirectory = null)
    {
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        string dir = subdirectory is null ? Path : System.IO.Path.Join(Path, subdirectory);
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Guard runs on Linux");
        Directory.CreateDirectory(dir, mode);
        return dir;
    }

    /// <summary>
    /// An exclusive lock named <paramref name="name"/> among guard processes on this
    /// host (flock on PATH/NAME.lock), waited for; dispose to release. Throws
    /// <see cref="SensorException"/> when the lock file cannot be made or locked.
    /// </summary>
    public static FileDescriptor Lock(string name)
    {
        try
        {
            return FileDescriptor.LockFile(System.IO.Path.Join(Ensure(), name + ".lock"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SensorException($"cannot make {Path}: {e.Message}");
        }
    }
}
