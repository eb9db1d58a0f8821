using System.Runtime.InteropServices;
using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// Collects libbpf's own messages so a load or attach failure can be told in
/// one line (which program, and the verifier's last word) instead of a dump.
/// </summary>
internal static unsafe class LibbpfLog
{
    private const int Kept = 64;
    private static readonly Queue<string> Lines = new();
    private static int installed;

    public static void Install()
    {
        if (Interlocked.Exchange(ref installed, 1) == 1)
            return;
        Libbpf.EnsureResolver();
        Libbpf.SetPrint(&Print);
    }

    public static void Clear()
    {
        lock (Lines)
            Lines.Clear();
    }

    public static string[] Snapshot()
    {
        lock (Lines)
            return [.. Lines];
    }

    /// <summary>The last line that mentions <paramref name="needle"/>, or the last line at all.</summary>
    public static string? Last(string? needle = null)
    {
        lock (Lines)
        {
            foreach (string line in Lines.Reverse())
            {
                if (needle is null || line.Contains(needle, StringComparison.Ordinal))
                    return line;
            }
        }
        return null;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static int Print(int level, byte* format, nint args)
    {
        const int size = 1024;
        byte* buffer = stackalloc byte[size];
        int n = Libc.VsnPrintf(buffer, size, format, args);
        if (n <= 0)
            return 0;
        string text = Encoding.UTF8.GetString(buffer, Math.Min(n, size - 1)).TrimEnd();
        lock (Lines)
        {
            foreach (string line in text.Split('\n'))
            {
                if (line.Length == 0)
                    continue;
                Lines.Enqueue(line);
                if (Lines.Count > Kept)
                    Lines.Dequeue();
            }
        }
        return 0;
    }
}
