namespace Guard.Tests.Support;

/// <summary>Finds the repository from the test assembly, for tests that read bpf/ sources.</summary>
public static class RepoPaths
{
    public static string Root
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "Sensor.sln")))
                    return d.FullName;
            }
            throw new InvalidOperationException("Sensor.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Bpf => Path.Combine(Root, "bpf");

    /// <summary>vmlinux.h as the sensor build generated it.</summary>
    public static string GeneratedBpfDir => Path.Combine(Root, "sensor", "obj", "bpf");
}
