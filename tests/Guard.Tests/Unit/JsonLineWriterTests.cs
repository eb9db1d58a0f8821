using System.Text;
using System.Text.Json;
using Guard.Sensor.Output;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class JsonLineWriterTests
{
    private static string Write(byte[] value)
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.Text("v"u8, value);
        w.EndLine();
        return Encoding.UTF8.GetString(w.Written);
    }

    /// <summary>The README's recovery rule, in C#: U+DC80..U+DCFF are the escaped bytes, all else is UTF-8.</summary>
    private static byte[] Recover(string json)
    {
        // Read the JSON string escapes by hand: System.Text.Json refuses lone surrogates.
        using JsonDocument doc = JsonDocument.Parse(json);
        string raw = doc.RootElement.GetProperty("v").GetRawText()[1..^1];
        var bytes = new List<byte>();
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && raw[i + 1] == 'u')
            {
                int code = Convert.ToInt32(raw.Substring(i + 2, 4), 16);
                i += 5;
                if (code is >= 0xDC80 and <= 0xDCFF)
                    bytes.Add((byte)(code - 0xDC00));
                else
                    bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(code)));
            }
            else if (raw[i] == '\\')
            {
                char c = raw[++i];
                bytes.Add((byte)(c switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => c }));
            }
            else
            {
                int width = char.IsSurrogate(raw[i]) ? 2 : 1;
                bytes.AddRange(Encoding.UTF8.GetBytes(raw.Substring(i, width)));
                i += width - 1;
            }
        }
        return [.. bytes];
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("quote\" backslash\\ newline\n tab\t nul\0 esc\u001b del\u007f")]
    [InlineData("utf-8: é € 😀")]
    public void ValidTextRoundTrips(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        string json = Write(bytes);
        Assert.EndsWith("\n", json, StringComparison.Ordinal);
        Assert.Equal(text, JsonDocument.Parse(json).RootElement.GetProperty("v").GetString());
        Assert.Equal(bytes, Recover(json));
    }

    [Theory]
    [InlineData(new byte[] { 0xff })]
    [InlineData(new byte[] { 0xc3, 0x28 })]
    [InlineData(new byte[] { 0xed, 0xa0, 0x80 })] // an encoded surrogate is invalid UTF-8
    [InlineData(new byte[] { 0xf0, 0x9f, 0x98 })] // truncated four-byte sequence
    [InlineData(new byte[] { (byte)'a', 0x80, (byte)'b', 0xfe, 0xe2, 0x82, 0xac })]
    public void InvalidUtf8IsSurrogateEscapedAndRecoverable(byte[] bytes)
    {
        string json = Write(bytes);
        Assert.Contains("\\udc", json, StringComparison.Ordinal);
        Assert.Equal(bytes, Recover(json));
    }

    [Fact]
    public void NestedObjectsAndArraysAreWellFormed()
    {
        var w = new JsonLineWriter();
        w.StartObject();
        w.Number("n"u8, -5L);
        w.StartObject("o"u8);
        w.StartArray("a"u8);
        w.TextItem("x"u8);
        w.TextItem("y");
        w.EndArray();
        w.Bool("b"u8, true);
        w.EndObject();
        w.Number("d"u8, 1.5);
        w.EndLine();
        using JsonDocument doc = JsonDocument.Parse(w.Written.ToArray());
        Assert.Equal(-5, doc.RootElement.GetProperty("n").GetInt32());
        Assert.Equal("y", doc.RootElement.GetProperty("o").GetProperty("a")[1].GetString());
        Assert.True(doc.RootElement.GetProperty("o").GetProperty("b").GetBoolean());
        Assert.Equal(1.5, doc.RootElement.GetProperty("d").GetDouble());
    }
}
