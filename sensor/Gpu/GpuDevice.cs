using System.Globalization;
using Guard.Sensor.Abi;

namespace Guard.Sensor.Gpu;

/// <summary>A device file that counts as a GPU: a major, and a minor or every minor.</summary>
public sealed record GpuDevice(uint Major, int? Minor, GpuRole Role)
{
    public const uint NvidiaMajor = 195;

    public override string ToString() =>
        $"{Major}:{(Minor is int m ? m.ToString(CultureInfo.InvariantCulture) : "*")}{(Role == GpuRole.UnifiedMemory ? "/uvm" : "")}";

    /// <summary>Parses MAJOR[:MINOR][/uvm], as given to --gpu-device.</summary>
    public static bool TryParse(string text, out GpuDevice? device)
    {
        device = null;
        GpuRole role = GpuRole.ResourceManager;
        if (text.EndsWith("/uvm", StringComparison.Ordinal))
        {
            role = GpuRole.UnifiedMemory;
            text = text[..^4];
        }
        string[] parts = text.Split(':');
        if (parts.Length is < 1 or > 2 || !uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint major))
            return false;
        int? minor = null;
        if (parts.Length == 2)
        {
            if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int m))
                return false;
            minor = m;
        }
        device = new GpuDevice(major, minor, role);
        return true;
    }

    /// <summary>
    /// NVIDIA devices this host has: major 195 when the driver registered it,
    /// and nvidia-uvm's dynamic major, both read from /proc/devices.
    /// </summary>
    public static IReadOnlyList<GpuDevice> Discover(string procDevices = "/proc/devices")
    {
        var found = new List<GpuDevice>();
        bool inCharacter = false;
        foreach (string line in File.ReadLines(procDevices))
        {
            if (line.StartsWith("Character devices", StringComparison.Ordinal))
            {
                inCharacter = true;
                continue;
            }
            if (line.StartsWith("Block devices", StringComparison.Ordinal))
                break;
            string[] fields = line.Trim().Split(' ', 2);
            if (!inCharacter || fields.Length != 2 || !uint.TryParse(fields[0], CultureInfo.InvariantCulture, out uint major))
                continue;
            string name = fields[1];
            if (name == "nvidia-uvm")
                found.Add(new GpuDevice(major, null, GpuRole.UnifiedMemory));
            else if (major == NvidiaMajor && name.StartsWith("nvidia", StringComparison.Ordinal) && found.All(d => d.Major != major))
                found.Add(new GpuDevice(major, null, GpuRole.ResourceManager));
        }
        return found;
    }
}
