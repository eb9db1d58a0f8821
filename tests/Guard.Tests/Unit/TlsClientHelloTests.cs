using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class TlsClientHelloTests
{
    [Fact]
    public void TruncatedOrHostileHellosNeverThrow()
    {
        var random = new Random(11);
        for (int i = 0; i < 5000; i++)
        {
            var bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            if (bytes.Length > 6)
            {
                bytes[0] = 22;
                bytes[1] = 3;
                bytes[5] = 1;
            }
            TlsClientHello.TryReadServerName(bytes, out _);
        }
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 1)] // a record per byte
    [InlineData(0, 16)]
    [InlineData(2000, 0)] // the name past a post-quantum key share's worth of bytes
    [InlineData(2000, 100)]
    [InlineData(6000, 1400)]
    public void TheNameIsReadFromTheWholeClientHelloAcrossItsRecords(int padding, int recordSize)
    {
        byte[] hello = Records.TlsClientHello("gulf.moneroocean.stream", padding, recordSize);
        Assert.True(hello.Length <= Guard.Sensor.Abi.PayloadRecord.TlsHeadCapacity, $"{hello.Length} bytes: more than the kernel reports");
        Assert.True(TlsClientHello.TryReadServerName(hello, out string name));
        Assert.Equal("gulf.moneroocean.stream", name);
        Assert.True(TlsClientHello.IsWhole(hello));
        Assert.False(TlsClientHello.IsWhole(hello.AsSpan(0, hello.Length - 1)));
        // Cut before its name: no name, and no exception.
        Assert.False(TlsClientHello.TryReadServerName(hello.AsSpan(0, hello.Length - 10), out _));
    }

    [Fact]
    public void SplitHostileHellosNeverThrow()
    {
        var random = new Random(12);
        byte[] hello = Records.TlsClientHello("pool.supportxmr.com", 300, 7);
        for (int i = 0; i < 5000; i++)
        {
            byte[] bytes = [.. hello.AsSpan(0, random.Next(hello.Length))];
            if (bytes.Length > 0)
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            TlsClientHello.TryReadServerName(bytes, out _);
            TlsClientHello.IsWhole(bytes);
        }
    }

    [Theory]
    [InlineData("pool.supportxmr.com", "supportxmr.com")]
    [InlineData("supportxmr.com", "supportxmr.com")]
    [InlineData("SupportXMR.com.", "supportxmr.com")]
    [InlineData("notsupportxmr.com", null)]
    [InlineData("supportxmr.com.evil.org", null)]
    public void PoolDomainsMatchAsSuffixes(string host, string? expected) =>
        Assert.Equal(expected, new PoolDomains(PolicyLoader.BuiltIn.Indicators.PoolDomains).Match(host));
}
