using System.Buffers.Text;
using System.Text;

namespace Guard.Sensor.Output;

/// <summary>
/// Writes one JSON object a line into a reused buffer, with no allocation per
/// value. Strings from a process (names, arguments, payloads) are raw bytes:
/// valid UTF-8 passes through, and each byte that is not part of valid UTF-8
/// is written as the lone surrogate U+DC80+byte ("\udcXX"), the PEP 383
/// "surrogateescape" scheme. The line is always valid JSON, and the original
/// bytes come back with Python's s.encode("utf-8", "surrogateescape").
/// </summary>
public sealed class JsonLineWriter
{
    /// <summary>Nesting the writer keeps track of: objects and arrays open at once.</summary>
    private const int MaxDepth = 32;
    private static readonly byte[] Hex = "0123456789abcdef"u8.ToArray();

    /// <summary>Bytes copied as they are: printable ASCII but the quote and the backslash.</summary>
    private static readonly System.Buffers.SearchValues<byte> Plain = System.Buffers.SearchValues.Create(
        [.. Enumerable.Range(0x20, 0x7F - 0x20).Where(c => c != '"' && c != '\\').Select(c => (byte)c)]);
    private readonly bool[] hasItem = new bool[MaxDepth];
    /// <summary>The line: 8 KiB to start, doubled when a line needs more, never shrunk.</summary>
    private byte[] buffer = new byte[8192];
    private int length;
    private int depth;

    /// <summary>What is written so far; valid until the next write.</summary>
    public ReadOnlySpan<byte> Written => buffer.AsSpan(0, length);

    /// <summary>Starts again from an empty line, keeping the buffer.</summary>
    public void Clear()
    {
        length = 0;
        depth = 0;
    }

    /// <summary>Opens an object: the line's own, or an array element.</summary>
    public void StartObject() => Open((byte)'{');

    /// <summary>Opens an object member; <paramref name="name"/> is written as it is (JSON-safe ASCII).</summary>
    public void StartObject(ReadOnlySpan<byte> name)
    {
        Name(name);
        Open((byte)'{', afterName: true);
    }

    /// <summary>Closes the innermost object.</summary>
    public void EndObject() => Close((byte)'}');

    /// <summary>Opens an array member; <paramref name="name"/> is written as it is (JSON-safe ASCII).</summary>
    public void StartArray(ReadOnlySpan<byte> name)
    {
        Name(name);
        Open((byte)'[', afterName: true);
    }

    /// <summary>Closes the innermost array.</summary>
    public void EndArray() => Close((byte)']');

    /// <summary>Ends the top-level object with a newline.</summary>
    public void EndLine()
    {
        EndObject();
        Append((byte)'\n');
    }

    /// <summary>A string member from raw bytes, escaped as the class says (invalid UTF-8 as \udcXX).</summary>
    public void Text(ReadOnlySpan<byte> name, ReadOnlySpan<byte> rawBytes)
    {
        Name(name);
        RawString(rawBytes);
    }

    /// <summary>A string member from a .NET string, through UTF-8 (on the stack up to 512 bytes).</summary>
    public void Text(ReadOnlySpan<byte> name, string value)
    {
        Name(name);
        Utf16String(value);
    }

    /// <summary>A string array element from raw bytes, escaped as <see cref="Text(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> is.</summary>
    public void TextItem(ReadOnlySpan<byte> rawBytes)
    {
        Separator();
        RawString(rawBytes);
    }

    /// <summary>A string array element from a .NET string.</summary>
    public void TextItem(string value)
    {
        Separator();
        Utf16String(value);
    }

    /// <summary>An integer member.</summary>
    public void Number(ReadOnlySpan<byte> name, long value)
    {
        Name(name);
        Ensure(24);
        Utf8Formatter.TryFormat(value, buffer.AsSpan(length), out int written);
        length += written;
    }

    /// <summary>An integer array element.</summary>
    public void NumberItem(long value)
    {
        Separator();
        Ensure(24);
        Utf8Formatter.TryFormat(value, buffer.AsSpan(length), out int written);
        length += written;
    }

    /// <summary>An unsigned integer member, to 2^64-1.</summary>
    public void Number(ReadOnlySpan<byte> name, ulong value)
    {
        Name(name);
        Ensure(24);
        Utf8Formatter.TryFormat(value, buffer.AsSpan(length), out int written);
        length += written;
    }

    /// <summary>A floating-point member, shortest round-trip form ("G"); the value must be finite.</summary>
    public void Number(ReadOnlySpan<byte> name, double value)
    {
        Name(name);
        Ensure(32);
        Utf8Formatter.TryFormat(value, buffer.AsSpan(length), out int written, new System.Buffers.StandardFormat('G'));
        length += written;
    }

    /// <summary>A true or false member.</summary>
    public void Bool(ReadOnlySpan<byte> name, bool value)
    {
        Name(name);
        Raw(value ? "true"u8 : "false"u8);
    }

    /// <summary>A value already formatted as JSON-safe ASCII (a timestamp, an address).</summary>
    public void AsciiString(ReadOnlySpan<byte> name, ReadOnlySpan<byte> ascii)
    {
        Name(name);
        Ensure(ascii.Length + 2);
        buffer[length++] = (byte)'"';
        ascii.CopyTo(buffer.AsSpan(length));
        length += ascii.Length;
        buffer[length++] = (byte)'"';
    }

    /// <summary>Members already rendered as JSON ("a":1,"b":{...}), written as they are.</summary>
    public void RawMembers(ReadOnlySpan<byte> members)
    {
        Separator();
        Raw(members);
    }

    /// <summary>Reserves space for a caller that formats in place; call <see cref="Commit"/> after.</summary>
    public Span<byte> Reserve(int size)
    {
        Ensure(size);
        return buffer.AsSpan(length);
    }

    /// <summary>Counts <paramref name="written"/> bytes formatted into <see cref="Reserve"/>'s span as written.</summary>
    public void Commit(int written) => length += written;

    private void Name(ReadOnlySpan<byte> name)
    {
        Separator();
        Ensure(name.Length + 3);
        buffer[length++] = (byte)'"';
        name.CopyTo(buffer.AsSpan(length));
        length += name.Length;
        buffer[length++] = (byte)'"';
        buffer[length++] = (byte)':';
    }

    private void Separator()
    {
        if (depth > 0 && hasItem[depth - 1])
            Append((byte)',');
        if (depth > 0)
            hasItem[depth - 1] = true;
    }

    private void Open(byte bracket, bool afterName = false)
    {
        if (!afterName)
            Separator();
        Append(bracket);
        hasItem[depth++] = false;
    }

    private void Close(byte bracket)
    {
        depth--;
        Append(bracket);
    }

    private void Raw(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
    }

    private void RawString(ReadOnlySpan<byte> s)
    {
        // Worst case: every byte becomes a six-byte escape.
        Ensure((s.Length * 6) + 2);
        Span<byte> b = buffer;
        b[length++] = (byte)'"';
        int i = 0;
        while (i < s.Length)
        {
            // Runs of plain ASCII, the common case, go in one vectorised copy.
            int run = s[i..].IndexOfAnyExcept(Plain);
            if (run < 0)
                run = s.Length - i;
            if (run > 0)
            {
                s.Slice(i, run).CopyTo(b[length..]);
                length += run;
                i += run;
                continue;
            }
            byte c = s[i];
            if (c < 0x80)
            {
                EscapeAscii(b, c);
                i++;
                continue;
            }
            if (System.Text.Rune.DecodeFromUtf8(s[i..], out _, out int consumed) == System.Buffers.OperationStatus.Done)
            {
                s.Slice(i, consumed).CopyTo(b[length..]);
                length += consumed;
                i += consumed;
                continue;
            }
            // Not valid UTF-8: escape each byte of the invalid sequence on its own.
            for (int k = 0; k < Math.Max(consumed, 1); k++)
                SurrogateEscape(b, s[i + k]);
            i += Math.Max(consumed, 1);
        }
        b[length++] = (byte)'"';
    }

    private void Utf16String(string value)
    {
        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max > 512)
        {
            RawString(Encoding.UTF8.GetBytes(value));
            return;
        }
        Span<byte> utf8 = stackalloc byte[max];
        int n = Encoding.UTF8.GetBytes(value, utf8);
        RawString(utf8[..n]);
    }

    private void EscapeAscii(Span<byte> b, byte c)
    {
        switch (c)
        {
            case (byte)'"':
                b[length++] = (byte)'\\';
                b[length++] = (byte)'"';
                return;
            case (byte)'\\':
                b[length++] = (byte)'\\';
                b[length++] = (byte)'\\';
                return;
            case (byte)'\n':
                b[length++] = (byte)'\\';
                b[length++] = (byte)'n';
                return;
            case (byte)'\t':
                b[length++] = (byte)'\\';
                b[length++] = (byte)'t';
                return;
            case (byte)'\r':
                b[length++] = (byte)'\\';
                b[length++] = (byte)'r';
                return;
        }
        if (c < 0x20 || c == 0x7F)
        {
            b[length++] = (byte)'\\';
            b[length++] = (byte)'u';
            b[length++] = (byte)'0';
            b[length++] = (byte)'0';
            b[length++] = Hex[c >> 4];
            b[length++] = Hex[c & 0xF];
            return;
        }
        b[length++] = c;
    }

    private void SurrogateEscape(Span<byte> b, byte c)
    {
        b[length++] = (byte)'\\';
        b[length++] = (byte)'u';
        b[length++] = (byte)'d';
        b[length++] = (byte)'c';
        b[length++] = Hex[c >> 4];
        b[length++] = Hex[c & 0xF];
    }

    private void Append(byte c)
    {
        Ensure(1);
        buffer[length++] = c;
    }

    private void Ensure(int extra)
    {
        if (length + extra <= buffer.Length)
            return;
        Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + extra));
    }
}
