using System.Security.Cryptography;
using System.Text;
using Guard.Sensor.Detection;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class Keccak256Tests
{
    private static string Hex(byte[] data)
    {
        byte[] digest = new byte[32];
        Keccak256.Hash(data, digest);
        return Convert.ToHexStringLower(digest);
    }

    [Theory]
    // Published Keccak-256 digests (the Keccak team's, as Ethereum uses them): not SHA3-256's.
    [InlineData("", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")]
    [InlineData("abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")]
    [InlineData("The quick brown fox jumps over the lazy dog", "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15")]
    public void PublishedDigests(string input, string digest)
    {
        Assert.Equal(digest, Hex(Encoding.ASCII.GetBytes(input)));
    }

    [Fact]
    public void WithFips202PaddingItIsDotnetsSha3AtEveryLengthAroundTheRate()
    {
        // The same permutation and sponge, padded 0x06 as FIPS 202 does: one block, exactly full, and several.
        Assert.True(SHA3_256.IsSupported, "this host's OpenSSL has no SHA3-256 to compare with");
        var random = new Random(55);
        byte[] digest = new byte[32];
        foreach (int length in Enumerable.Range(0, 300).Concat([407, 408, 409, 1000]))
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            Keccak256.Sponge(data, digest, 0x06);
            Assert.Equal(SHA3_256.HashData(data), digest);
        }
    }
}
