using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Gpu;

/// <summary>A device file that counts as a GPU: a major, and a minor or every minor.</summary>
public sealed record GpuDevice(uint Major, int? Minor, GpuRole Role)
{
    public const uint NvidiaMajor = 195;

    public override string ToString() =>
        $"{Major}:{(Minor is int m ? m.ToString(CultureInfo.InvariantCulture) : "*")}{(Role == GpuRole.UnifiedMemory ? "/uvm" : "")}";

    /// <summary>The largest major a dev_t holds: 12 bits (MINORBITS 20 of 32, include/linux/kdev_t.h).</summary>
    public const uint MaxMajor = (1u << 12) - 1;

    /// <summary>The largest minor a dev_t holds: 20 bits (MINORBITS, include/linux/kdev_t.h).</summary>
    public const int MaxMinor = (1 << 20) - 1;

    /// <summary>What --gpu-device takes, for messages.</summary>
    public const string Forms = "MAJOR:MINOR, MAJOR:* (every minor) or a /dev path, each but the path with an optional /uvm";

    /// <summary>Parses a --gpu-device value (<see cref="Forms"/>); false when it is not one.</summary>
    public static bool TryParse(string text, out GpuDevice? device) => TryParse(text, out device, out _);

    /// <summary>
    /// Parses a --gpu-device value: MAJOR:MINOR or MAJOR:* (major 1 to 4095, minor
    /// 0 to 1048575), optionally with /uvm (the unified-memory device), or the path of a
    /// character device, whose role is unified memory when it is named nvidia-uvm*.
    /// False, with why in <paramref name="error"/>, when it is none of these.
    /// </summary>
    public static bool TryParse(string text, out GpuDevice? device, out string error)
    {
        device = null;
        if (text.StartsWith('/'))
        {
            if (Libc.CharacterDeviceOf(text) is not { } numbers)
            {
                error = $"{text} is not a character device";
                return false;
            }
            GpuRole pathRole = Path.GetFileName(text).StartsWith("nvidia-uvm", StringComparison.Ordinal) ? GpuRole.UnifiedMemory : GpuRole.ResourceManager;
            device = new GpuDevice(numbers.Major, (int)numbers.Minor, pathRole);
            error = "";
            return true;
        }
        GpuRole role = GpuRole.ResourceManager;
        string numbersText = text;
        if (numbersText.EndsWith("/uvm", StringComparison.Ordinal))
        {
            role = GpuRole.UnifiedMemory;
            numbersText = numbersText[..^4];
        }
        error = $"'{text}' is not {Forms}";
        string[] parts = numbersText.Split(':');
        if (parts.Length != 2 || !uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint major))
            return false;
        if (major is 0 or > MaxMajor)
        {
            error = $"'{text}': major {major} is out of range (1 to {MaxMajor})";
            return false;
        }
        int? minor = null;
        if (parts[1] != "*")
        {
            if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int m) || m > MaxMinor)
            {
                if (parts[1].Length > 0 && parts[1].All(char.IsAsciiDigit))
                    error = $"'{text}': minor {parts[1]} is out of range (0 to {MaxMinor})";
                return false;
            }
            minor = m;
        }
        device = new GpuDevice(major, minor, role);
        error = "";
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
