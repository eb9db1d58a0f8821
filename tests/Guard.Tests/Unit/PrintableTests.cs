using System.Text;
using Guard.Sensor.Abi;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>What a monitored process names itself is shown to a person without driving the terminal or forging a line.</summary>
public sealed class PrintableTests
{
    [Theory]
    [InlineData("xmrig", "xmrig")]
    [InlineData("python3.11", "python3.11")]
    [InlineData("trainer-ünïcode-名前", "trainer-ünïcode-名前")]
    [InlineData("a\u001b[2Jb", "a\\x1b[2Jb")]
    [InlineData("fake\nguard: released", "fake\\x0aguard: released")]
    [InlineData("tab\tcr\r", "tab\\x09cr\\x0d")]
    [InlineData("del\u007f c1\u009b", "del\\x7f c1\\xc2\\x9b")]
    [InlineData("gpu\u202Egnp.sh", "gpu\\xe2\\x80\\xaegnp.sh")]
    [InlineData("iso\u2066x\u2069", "iso\\xe2\\x81\\xa6x\\xe2\\x81\\xa9")]
    public void ControlAndBidiCharactersAreEscapedAndTheRestKept(string raw, string shown)
    {
        Assert.Equal(shown, Printable.Of(raw));
        Assert.Equal(shown, Printable.Of(Encoding.UTF8.GetBytes(raw)));
    }

    [Fact]
    public void BytesThatAreNotUtf8AreEscapedOneByOne()
    {
        Assert.Equal("ab\\xff\\xc3c", Printable.Of([(byte)'a', (byte)'b', 0xFF, 0xC3, (byte)'c']));
    }

    [Fact]
    public void EscapingTwiceChangesNothing()
    {
        string once = Printable.Of("x\u001b]0;owned\u0007y");
        Assert.Equal(once, Printable.Of(once));
        Assert.DoesNotContain('\u001b', once);
    }
}
