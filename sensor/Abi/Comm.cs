namespace Guard.Sensor.Abi;

/// <summary>The kernel's comm: what it keeps of a program's name (15 bytes).</summary>
public static class Comm
{
    public const int MaxBytes = 15;

    public static string Of(string name)
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(name);
        return bytes.Length <= MaxBytes ? name : System.Text.Encoding.UTF8.GetString(bytes, 0, MaxBytes);
    }

    /// <summary>A comm as the kernel wrote it (NUL-padded 16 bytes), as text; bytes that are not UTF-8 become U+FFFD.</summary>
    public static string Text(in Bytes16 comm)
    {
        ReadOnlySpan<byte> name = comm;
        int end = name.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
    }
}
