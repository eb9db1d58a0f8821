using System.Text;
using Guard.Sensor.Detection;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Unit;

/// <summary>
/// A miner's markers in an executable's bytes: two kinds make a miner, one
/// kind or a packer's mark is weak, markers split across reads are found,
/// and none of this host's own programs and libraries reads as a miner.
/// </summary>
public sealed class MinerContentTests(ITestOutputHelper output)
{
    private static byte[] Elf(params string[] strings)
    {
        var bytes = new List<byte>(File.ReadAllBytes("/bin/true"));
        foreach (string s in strings)
            bytes.AddRange([0, .. Encoding.Latin1.GetBytes(s), 0]);
        return [.. bytes];
    }

    [Fact]
    public void TwoKindsOfMarkerAreAMinerAndOneKindIsWeak()
    {
        ContentVerdict miner = MinerContent.Of(Elf("RandomX\u0003", "mining.subscribe"));
        Assert.True(miner.IsMiner);
        Assert.Equal(MinerMarkerKinds.Algorithm | MinerMarkerKinds.Stratum, miner.Kinds);
        Assert.Equal(["RandomX\\x03", "mining.subscribe"], miner.Markers);

        ContentVerdict options = MinerContent.Of(Elf("donate-level", "cryptonight"));
        Assert.True(options.IsMiner);

        ContentVerdict one = MinerContent.Of(Elf("mining.subscribe", "mining.notify", "stratum+tcp://"));
        Assert.False(one.IsMiner);
        Assert.True(one.IsWeak);

        ContentVerdict clean = MinerContent.Of(File.ReadAllBytes("/bin/true"));
        Assert.Same(ContentVerdict.Clean, clean);
        Assert.False(clean.IsWeak);
    }

    [Fact]
    public void APackersMarkIsWeakEvidenceOfItsOwn()
    {
        ContentVerdict packed = MinerContent.Of(Elf("UPX!"));
        Assert.Equal("UPX", packed.Packer);
        Assert.True(packed.IsWeak);
        Assert.False(packed.IsMiner);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void MarkersSplitAcrossReadsAreFound(int readSize)
    {
        byte[] file = Elf(new string('a', 5000), "randomx-1gb-pages", "eth_submitLogin");
        var content = new MinerContent(readSize);
        for (int at = 0; at < file.Length; at += readSize)
            content.Add(file.AsSpan(at, Math.Min(readSize, file.Length - at)));
        ContentVerdict verdict = content.Verdict();
        Assert.Equal(MinerMarkerKinds.Options | MinerMarkerKinds.Stratum, verdict.Kinds);
    }

    [Fact]
    public void NoProgramOrLibraryOfThisHostReadsAsAMiner()
    {
        // The benign corpus at hand: every ELF file in the system's program and library directories.
        string[] dirs = ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu", "/usr/libexec", "/usr/share/dotnet/shared"];
        int scanned = 0;
        var weak = new List<string>();
        foreach (string dir in dirs.Where(Directory.Exists))
        {
            foreach (string path in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var info = new FileInfo(path);
                if (info.LinkTarget is not null || info.Length is < 64 or > (64 << 20) || !IsElf(path))
                    continue;
                var content = new MinerContent();
                using (FileStream stream = File.OpenRead(path))
                {
                    byte[] buffer = new byte[64 * 1024];
                    int n;
                    while ((n = stream.Read(buffer)) > 0)
                        content.Add(buffer.AsSpan(0, n));
                }
                ContentVerdict verdict = content.Verdict();
                Assert.False(verdict.IsMiner, $"{path} reads as a miner: {string.Join(", ", verdict.Markers)}");
                if (verdict.IsWeak)
                    weak.Add($"{path}: {ContentFindings.Kinds(verdict.Kinds)} {string.Join(", ", verdict.Markers)} {verdict.Packer}");
                scanned++;
            }
        }
        Assert.True(scanned > 200, $"only {scanned} ELF files found to scan");
        output.WriteLine($"{scanned} ELF files scanned; weak: {weak.Count}\n{string.Join("\n", weak)}");
    }

    private static bool IsElf(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return stream.Read(magic) == 4 && magic.SequenceEqual("\u007fELF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
