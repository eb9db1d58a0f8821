using System.Buffers.Binary;
using System.Numerics;

namespace Guard.Sensor.Detection;

/// <summary>
/// Keccak-256 as Monero and Ethereum use it: the Keccak submission's sponge
/// (Keccak-f[1600], rate 136 bytes) with its original padding 0x01 ... 0x80.
/// </summary>
/// <remarks>
/// Written here because .NET has none: its SHA3_256 is FIPS 202 SHA3-256,
/// whose padding (0x06) gives other digests, and it calls OpenSSL, which the
/// native guard binary does not require a host to have (see <see cref="Sha256"/>).
/// A general cryptography library would add megabytes to a 4 MB binary for
/// checking address checksums. Tested against published Keccak-256 digests
/// and, with the FIPS 202 padding, against .NET's SHA3-256.
/// </remarks>
public static class Keccak256
{
    /// <summary>Bytes absorbed per permutation: 1600 bits less twice the 256-bit digest.</summary>
    private const int Rate = 136;

    /// <summary>Round constants of Keccak-f[1600]'s iota step (The Keccak reference, 3.0, section 1.2).</summary>
    private static readonly ulong[] RoundConstants =
    [
        0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
        0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
        0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
        0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
        0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
        0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
    ];

    /// <summary>The rho rotations, in the order the pi step visits the lanes.</summary>
    private static readonly int[] Rotations = [1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44];

    /// <summary>The lane the pi step moves each rotated lane to.</summary>
    private static readonly int[] PiLanes = [10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1];

    /// <summary>Writes the 32-byte digest of <paramref name="data"/> into <paramref name="digest"/> (at least 32 bytes).</summary>
    public static void Hash(ReadOnlySpan<byte> data, Span<byte> digest) => Sponge(data, digest, 0x01);

    /// <summary>The sponge with a chosen first padding byte: 0x01 is Keccak, 0x06 FIPS 202 SHA3 (for tests).</summary>
    internal static void Sponge(ReadOnlySpan<byte> data, Span<byte> digest, byte padding)
    {
        Span<ulong> state = stackalloc ulong[25];
        state.Clear();
        while (data.Length >= Rate)
        {
            Absorb(state, data[..Rate]);
            data = data[Rate..];
        }
        Span<byte> last = stackalloc byte[Rate];
        last.Clear();
        data.CopyTo(last);
        last[data.Length] ^= padding;
        last[Rate - 1] ^= 0x80;
        Absorb(state, last);
        for (int i = 0; i < 4; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(digest[(i * 8)..], state[i]);
    }

    private static void Absorb(Span<ulong> state, ReadOnlySpan<byte> block)
    {
        for (int i = 0; i < Rate / 8; i++)
            state[i] ^= BinaryPrimitives.ReadUInt64LittleEndian(block[(i * 8)..]);
        Permute(state);
    }

    /// <summary>Keccak-f[1600]: 24 rounds of theta, rho and pi, chi, iota on 25 little-endian lanes.</summary>
    private static void Permute(Span<ulong> a)
    {
        Span<ulong> c = stackalloc ulong[5];
        for (int round = 0; round < 24; round++)
        {
            for (int x = 0; x < 5; x++)
                c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
            for (int x = 0; x < 5; x++)
            {
                ulong d = c[(x + 4) % 5] ^ BitOperations.RotateLeft(c[(x + 1) % 5], 1);
                for (int y = 0; y < 25; y += 5)
                    a[y + x] ^= d;
            }
            ulong moving = a[1];
            for (int i = 0; i < 24; i++)
            {
                int lane = PiLanes[i];
                ulong next = a[lane];
                a[lane] = BitOperations.RotateLeft(moving, Rotations[i]);
                moving = next;
            }
            for (int y = 0; y < 25; y += 5)
            {
                for (int x = 0; x < 5; x++)
                    c[x] = a[y + x];
                for (int x = 0; x < 5; x++)
                    a[y + x] ^= ~c[(x + 1) % 5] & c[(x + 2) % 5];
            }
            a[0] ^= RoundConstants[round];
        }
    }
}
