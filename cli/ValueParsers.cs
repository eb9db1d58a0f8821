using System.Globalization;
using Guard.Sensor.Gpu;
using Guard.Sensor.Response;

namespace Guard.Cli;

/// <summary>Parses the human forms of durations and sizes that options take.</summary>
public static class ValueParsers
{
    private static readonly System.Buffers.SearchValues<char> NumberChars = System.Buffers.SearchValues.Create("0123456789.");

    /// <summary>"90" (seconds), "90s", "5m", "2h", "250ms", "1.5h", and sums of them: "1h30m", "2m30s".</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        if (double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double bare))
            return bare > 0 && Seconds(bare, out duration);
        double total = 0;
        ReadOnlySpan<char> rest = text;
        while (!rest.IsEmpty)
        {
            int digits = rest.IndexOfAnyExcept(NumberChars);
            if (digits <= 0 || !double.TryParse(rest[..digits], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value))
                return false;
            rest = rest[digits..];
            int unitLength = rest.IndexOfAny(NumberChars) is int next and >= 0 ? next : rest.Length;
            double? scale = rest[..unitLength] switch
            {
                "ms" => 0.001,
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => null,
            };
            if (scale is null)
                return false;
            total += value * scale.Value;
            rest = rest[unitLength..];
        }
        return total > 0 && Seconds(total, out duration);
    }

    private static bool Seconds(double seconds, out TimeSpan duration)
    {
        // Past a hundred years a duration is a typo, and TimeSpan would overflow soon after.
        duration = seconds <= 100 * 365 * 86400.0 ? TimeSpan.FromSeconds(seconds) : default;
        return duration > TimeSpan.Zero;
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

    /// <summary>A size in bytes with an optional K, M or G (powers of 1024): "4096", "64K", "100M", "1G".</summary>
    public static bool TryParseByteCount(string text, out long bytes)
    {
        bytes = 0;
        int shift = text.Length == 0 ? 0 : char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        string number = shift == 0 ? text : text[..^1];
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value <= 0 || value > (long.MaxValue >> shift))
            return false;
        bytes = value << shift;
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
            if (!GpuDevice.TryParse(text, out GpuDevice? device, out string error))
                throw new UsageException($"--gpu-device: {error}");
            devices.Add(device!);
        }
        return devices.Count > 0 ? devices : GpuDevice.Discover();
    }
}
