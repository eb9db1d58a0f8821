using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// A write-only stream over a descriptor it does not own, written with
/// write(2): at the open file's own offset, so writers that share it (stdout
/// and stderr both sent to one file with `&gt; file 2&gt;&amp;1`) append after
/// each other, where a FileStream writes a regular file at a position of its
/// own (pwrite) and overwrites what the other wrote. A failed write throws an
/// IOException whose HResult is the errno (EPIPE: the reader of a pipe left);
/// EINTR is retried and a short write continued.
/// </summary>
public sealed class DescriptorWriteStream(int fd) : Stream
{
    private const int Eintr = 4;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Writes all of <paramref name="buffer"/>, however many write(2) calls it takes.</summary>
    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            nint n;
            fixed (byte* p = buffer)
                n = Libc.Write(fd, p, (nuint)buffer.Length);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eintr)
                    continue;
                throw new IOException($"cannot write to descriptor {fd}: {Libc.ErrorText(errno)}", errno);
            }
            buffer = buffer[(int)n..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
