using System.Text;
using Guard.Sensor.Detection;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Wallets are recognised by format and checksum: Monero's base58 with its
/// Keccak-256 checksum, bech32/bech32m (BIP-173, BIP-350) and EIP-55. Test
/// vectors, hashes and random identifiers of the right shape are none.
/// </summary>
public sealed class WalletAddressTests
{
    private const string MoneroAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    /// <summary>The Monero General Fund's published donation address.</summary>
    private const string MoneroGeneralFund = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";

    /// <summary>Monero's base58, written independently of the sensor's decoder: 8-byte blocks as 11 characters, the last block in as few as it needs.</summary>
    private static string MoneroBase58(byte[] data)
    {
        int[] encodedSizes = [0, 2, 3, 5, 6, 7, 9, 10, 11];
        var text = new StringBuilder();
        for (int start = 0; start < data.Length; start += 8)
        {
            int size = Math.Min(8, data.Length - start);
            ulong value = 0;
            for (int i = 0; i < size; i++)
                value = (value << 8) | data[start + i];
            char[] block = new char[encodedSizes[size]];
            for (int i = block.Length - 1; i >= 0; i--)
            {
                block[i] = MoneroAlphabet[(int)(value % 58)];
                value /= 58;
            }
            text.Append(block);
        }
        return text.ToString();
    }

    /// <summary>A Monero address of random keys: tag, keys (and payment id), Keccak-256 checksum.</summary>
    private static string RandomMoneroAddress(byte tag, int keyBytes, int seed)
    {
        byte[] body = new byte[1 + keyBytes];
        new Random(seed).NextBytes(body);
        body[0] = tag;
        byte[] hash = new byte[32];
        Keccak256.Hash(body, hash);
        return MoneroBase58([.. body, .. hash[..4]]);
    }

    private static string? Describe(string text) => WalletAddresses.Classify(Encoding.ASCII.GetBytes(text)) is { Verified: true } m ? m.Format : null;

    [Theory]
    [InlineData(18, 64, "Monero standard address")]
    [InlineData(19, 72, "Monero integrated address")]
    [InlineData(42, 64, "Monero subaddress")]
    [InlineData(53, 64, "Monero testnet standard address")]
    [InlineData(36, 64, "Monero stagenet subaddress")]
    public void MoneroAddressesOfRandomKeysAreWallets(byte tag, int keyBytes, string format)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            string address = RandomMoneroAddress(tag, keyBytes, seed);
            Assert.Equal(keyBytes == 72 ? 106 : 95, address.Length);
            Assert.Equal(format, Describe(address));
        }
    }

    [Fact]
    public void APublishedMoneroAddressIsAWalletAndOneCharacterLessIsNot()
    {
        Assert.Equal("Monero standard address", Describe(MoneroGeneralFund));
        // Any character changed: the checksum fails.
        for (int i = 0; i < MoneroGeneralFund.Length; i += 7)
        {
            char other = MoneroGeneralFund[i] == 'A' ? 'B' : 'A';
            Assert.Null(Describe(MoneroGeneralFund[..i] + other + MoneroGeneralFund[(i + 1)..]));
        }
    }

    [Fact]
    public void RandomBase58OfMoneroLengthIsNoWallet()
    {
        var random = new Random(7);
        for (int n = 0; n < 2000; n++)
        {
            // Starts like a mainnet address, so only the checksum can tell.
            string text = "4" + new string([.. Enumerable.Range(0, 94).Select(_ => MoneroAlphabet[random.Next(58)])]);
            Assert.Null(WalletAddresses.Classify(Encoding.ASCII.GetBytes(text)));
        }
        // A right checksum under a tag Monero does not use.
        Assert.Null(Describe(RandomMoneroAddress(17, 64, 1)));
    }

    [Theory]
    // BIP-173 and BIP-350 valid segwit addresses.
    [InlineData("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc segwit v0 address")]
    [InlineData("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "tb segwit v0 address")]
    [InlineData("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "bc segwit v1 address")]
    [InlineData("BC1SW50QGDZ25J", "bc segwit v16 address")]
    [InlineData("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "bc segwit v2 address")]
    [InlineData("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "tb segwit v0 address")]
    [InlineData("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "tb segwit v1 address")]
    [InlineData("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc segwit v1 address")]
    public void SegwitSpecVectorsAreWallets(string address, string format)
    {
        Assert.Equal(format, Describe(address));
    }

    [Theory]
    // BIP-350's invalid addresses, each for its stated reason.
    [InlineData("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut")] // invalid human-readable part
    [InlineData("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd")] // bech32 instead of bech32m
    [InlineData("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf")] // bech32 instead of bech32m
    [InlineData("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL")] // bech32 instead of bech32m
    [InlineData("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh")] // bech32m instead of bech32
    [InlineData("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47")] // bech32m instead of bech32
    [InlineData("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4")] // invalid character in checksum
    [InlineData("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R")] // invalid witness version
    [InlineData("bc1pw5dgrnzv")] // program of 1 byte
    [InlineData("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav")] // program of 41 bytes
    [InlineData("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P")] // v0 program of 16 bytes
    [InlineData("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq")] // mixed case
    [InlineData("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf")] // zero padding of more than 4 bits
    [InlineData("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j")] // non-zero padding
    [InlineData("bc1gmk9yu")] // empty data
    // Valid bech32 strings that are no wallet of a mined coin (BIP-173's examples, an age recipient's shape).
    [InlineData("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")]
    [InlineData("split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w")]
    public void InvalidSegwitAddressesAreNoWallets(string text)
    {
        Assert.Null(Describe(text));
    }

    [Theory]
    // EIP-55's examples in mixed case.
    [InlineData("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")]
    [InlineData("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")]
    [InlineData("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")]
    [InlineData("0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb")]
    public void Eip55MixedCaseAddressesAreWallets(string address)
    {
        Assert.Equal(EthereumChecksum.Verified, EthereumAddress.Check(Encoding.ASCII.GetBytes(address)));
        Assert.Equal("Ethereum address (EIP-55 checksum)", Describe(address));
    }

    [Theory]
    // EIP-55's all-caps and all-lower examples carry no checksum; a wrong case is a broken one.
    [InlineData("0x52908400098527886E0F7030069857D2E4169EE7")]
    [InlineData("0x8617E340B3D01FA5F11F306F4090FD50E238070D")]
    [InlineData("0xde709f2102306220921060314715629080e2fb77")]
    [InlineData("0x27b1fdb04752bbc536007a920d24acb045561c26")]
    [InlineData("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")]
    public void EthereumHexWithoutItsChecksumOnlyLooksLikeAWallet(string text)
    {
        Assert.Equal(EthereumChecksum.Unchecked, EthereumAddress.Check(Encoding.ASCII.GetBytes(text)));
        WalletMatch match = Assert.IsType<WalletMatch>(WalletAddresses.Classify(Encoding.ASCII.GetBytes(text)));
        Assert.False(match.Verified);
    }

    [Theory]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")] // SHA-256 of nothing
    [InlineData("0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")] // the same as 0x hex
    [InlineData("c5008e6d3f0f2b8d1ea5b0f3a4c2d1e0f9a8b7c6")] // a git commit hash
    [InlineData("4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15")] // a Keccak-256 test vector
    [InlineData("550e8400-e29b-41d4-a716-446655440000")] // a UUID
    public void HashesAndIdentifiersAreNoWallets(string text)
    {
        Assert.Null(WalletAddresses.Find(Encoding.ASCII.GetBytes($"--run-id {text} --seed 1")));
    }

    [Fact]
    public void AWalletIsFoundWhereMinersPutIt()
    {
        foreach (string where in new[] { "-u\0{0}", "--user={0}.rig1", "BTC:{0}", "{0}+50000", "stratum+tcp://{0}:x@pool.example:3333" })
        {
            WalletMatch? found = WalletAddresses.Find(Encoding.ASCII.GetBytes(string.Format(System.Globalization.CultureInfo.InvariantCulture, where, MoneroGeneralFund)));
            Assert.Equal(MoneroGeneralFund, found?.Address);
        }
    }
}
