using System.Globalization;
using Guard.Sensor.Gpu;
using Guard.Sensor.Response;

namespace Guard.Cli;

/// <summary>Parses the human forms of durations and sizes that options take.</summary>
public static class ValueParsers
{
    /// <summary>"90", "90s", "5m", "2h", "250ms".</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        (string number, double scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1.0),
            _ when text.EndsWith('m') => (text[..^1], 60.0),
            _ when text.EndsWith('h') => (text[..^1], 3600.0),
            _ => (text, 1.0),
        };
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0)
            return false;
        duration = TimeSpan.FromSeconds(value * scale);
        return true;
    }

    /// <summary>"4096", "64K", "16M".</summary>
    public static bool TryParseSize(string text, out int bytes)
    {
        bytes = 0;
        long scale = 1;
        if (text.EndsWith('K') || text.EndsWith('k'))
            scale = 1 << 10;
        else if (text.EndsWith('M') || text.EndsWith('m'))
            scale = 1 << 20;
        string number = scale == 1 ? text : text[..^1];
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value * scale > int.MaxValue || value <= 0)
            return false;
        bytes = (int)(value * scale);
        return true;
    }

    /// <summary>A pid or an entity id as a person gives it; a usage error otherwise.</summary>
    public static ProcessTarget ParseTarget(string text) =>
        ProcessTarget.TryParse(text, out ProcessTarget target)
            ? target
            : throw new UsageException($"'{text}' is not a pid or an entity id (BOOT-STARTTICKS-PID)");

    /// <summary>--gpu-device values; with none, the NVIDIA devices this host has.</summary>
    public static IReadOnlyList<GpuDevice> ParseGpuDevices(string[]? texts)
    {
        var devices = new List<GpuDevice>();
        foreach (string text in texts ?? [])
        {
            if (!GpuDevice.TryParse(text, out GpuDevice? device))
                throw new UsageException($"--gpu-device: '{text}' is not MAJOR[:MINOR][/uvm]");
            devices.Add(device!);
        }
        return devices.Count > 0 ? devices : GpuDevice.Discover();
    }
}
