using Guard.Sensor.Detection;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class Sha256Tests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(55)]
    [InlineData(56)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(1000)]
    [InlineData(200_000)]
    public void MatchesTheFrameworkDigestAtEveryPaddingBoundary(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data)), Sha256.HexOf(data));
    }

    [Fact]
    public void KnownVector() =>
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Sha256.HexOf("abc"u8));
}
