using System.Globalization;
using System.Net;

namespace Guard.Sensor.Response;

/// <summary>
/// The TCP connections a process holds, read from /proc before it is killed:
/// its socket fds' inodes, found in its own network namespace's tcp tables.
/// </summary>
public static class OpenConnections
{
    private static readonly string[] States = ["", "established", "syn-sent", "syn-recv", "fin-wait1", "fin-wait2", "time-wait", "close", "close-wait", "last-ack", "listen", "closing"];

    public static IReadOnlyList<string> Of(int pid)
    {
        string proc = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}";
        var inodes = new HashSet<string>();
        try
        {
            foreach (string fd in Directory.EnumerateFileSystemEntries($"{proc}/fd"))
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                    inodes.Add(target[8..^1]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        var found = new List<string>();
        foreach ((string table, bool v6) in new[] { ("tcp", false), ("tcp6", true) })
        {
            try
            {
                foreach (string line in File.ReadLines($"{proc}/net/{table}").Skip(1))
                {
                    string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    if (f.Length < 10 || !inodes.Contains(f[9]))
                        continue;
                    int state = int.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    found.Add($"{Endpoint(f[2], v6)} ({(state < States.Length ? States[state] : "?")})");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
            }
        }
        return found;
    }

    /// <summary>The kernel's hex "ADDRESS:PORT", address words in host (little-endian) order.</summary>
    private static string Endpoint(string hex, bool v6)
    {
        string[] parts = hex.Split(':');
        byte[] address = Convert.FromHexString(parts[0]);
        for (int i = 0; i < address.Length; i += 4)
            Array.Reverse(address, i, 4);
        int port = int.Parse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var ip = new IPAddress(address);
        return v6 ? $"[{ip}]:{port}" : $"{ip}:{port}";
    }
}
