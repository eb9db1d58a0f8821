using Guard.Sensor.Detection;
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
    [InlineData("pool.supportxmr.com", "supportxmr.com")]
    [InlineData("supportxmr.com", "supportxmr.com")]
    [InlineData("SupportXMR.com.", "supportxmr.com")]
    [InlineData("notsupportxmr.com", null)]
    [InlineData("supportxmr.com.evil.org", null)]
    public void PoolDomainsMatchAsSuffixes(string host, string? expected) =>
        Assert.Equal(expected, new PoolDomains(PolicyLoader.BuiltIn.Indicators.PoolDomains).Match(host));
}
