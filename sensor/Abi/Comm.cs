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
}
