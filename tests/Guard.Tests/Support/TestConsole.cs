using Guard.Cli;

namespace Guard.Tests.Support;

/// <summary>A console whose output the test reads back.</summary>
public sealed class TestConsole : IConsole
{
    private readonly MemoryStream stdout = new();

    public TextWriter Out { get; } = new StringWriter();

    public TextWriter Error { get; } = new StringWriter();

    public bool IsOutputRedirected => true;

    public Stream OpenStandardOutput() => new NonClosingStream(stdout);

    public string[] JsonLines() =>
        System.Text.Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public string ErrorText => Error.ToString()!;

    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            lock (inner)
                inner.Write(buffer, offset, count);
        }
    }
}
