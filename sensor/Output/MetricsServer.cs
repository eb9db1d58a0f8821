using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Output;

/// <summary>
/// The metrics endpoint: <c>GET /metrics</c> (Prometheus text, 0.0.4) and
/// <c>GET /healthz</c> (200 "ok", or 503 with a one-line reason), over HTTP/1.1,
/// one request a connection.
/// <para>
/// A small server of its own rather than ASP.NET Kestrel or HttpListener:
/// Kestrel brings ASP.NET into a privileged sensor and megabytes into its
/// native AOT binary; HttpListener is a managed reimplementation with no
/// limits to set on slow or hostile clients. Two endpoints with fixed answers
/// need neither. It runs on thread-pool threads, never on the thread that
/// drains the ring: what it shows is read from counters the sensor's threads
/// write (interlocked or thread-owned values), and it waits for nobody.
/// </para>
/// <para>
/// A scraper cannot hurt the sensor: at most <see cref="MaxConnections"/>
/// connections are served at once (more are closed at once, counted); a
/// request head over <see cref="RequestLimitBytes"/> is answered 431 and
/// closed; a connection is closed after <see cref="ConnectionTimeout"/>,
/// whether it has sent its request or read its answer or not.
/// </para>
/// </summary>
public sealed class MetricsServer : IDisposable
{
    /// <summary>The port a bare address is served on: 9464, the one OpenTelemetry's Prometheus exporter uses by default.</summary>
    public const int DefaultPort = 9464;

    /// <summary>Connections served at once; a Prometheus server scrapes with one.</summary>
    public const int MaxConnections = 16;

    /// <summary>Bytes of request line and headers read at most: a scraper sends a few hundred.</summary>
    public const int RequestLimitBytes = 8192;

    /// <summary>How long a connection may take, request and answer together.</summary>
    public static readonly TimeSpan ConnectionTimeout = TimeSpan.FromSeconds(5);

    private readonly Socket listener;
    private readonly Func<string> metrics;
    private readonly Func<string?> unhealthy;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task acceptLoop;
    private int open;
    private long served;
    private long rejected;
    private long refused;
    private long timedOut;

    /// <summary>
    /// Listens on <paramref name="endpoint"/> and serves until disposed.
    /// <paramref name="metrics"/> renders the /metrics body;
    /// <paramref name="unhealthy"/> says why the sensor is unhealthy (one line),
    /// or null when it is healthy. Both are called on a server thread.
    /// </summary>
    /// <exception cref="SensorException">The address cannot be listened on (in use, not this host's).</exception>
    public MetricsServer(IPEndPoint endpoint, Func<string> metrics, Func<string?> unhealthy)
    {
        this.metrics = metrics;
        this.unhealthy = unhealthy;
        listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endpoint);
            listener.Listen(64);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new SensorException($"cannot serve metrics on {endpoint}: {e.Message}");
        }
        Endpoint = (IPEndPoint)listener.LocalEndPoint!;
        acceptLoop = Task.Run(AcceptLoop);
    }

    /// <summary>Where it listens (the port chosen, when 0 was asked for).</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>Requests answered.</summary>
    public long Served => Interlocked.Read(ref served);

    /// <summary>Connections closed unserved because <see cref="MaxConnections"/> were open.</summary>
    public long Rejected => Interlocked.Read(ref rejected);

    /// <summary>Requests refused: too long, not HTTP, not GET or HEAD.</summary>
    public long Refused => Interlocked.Read(ref refused);

    /// <summary>Connections closed at <see cref="ConnectionTimeout"/>.</summary>
    public long TimedOut => Interlocked.Read(ref timedOut);

    /// <summary>
    /// Reads an address to serve on: "PORT" (on 127.0.0.1), "HOST:PORT" or
    /// "[V6]:PORT"; HOST is an IP address ("0.0.0.0" to serve every interface).
    /// </summary>
    public static bool TryParseAddress(string text, out IPEndPoint endpoint)
    {
        endpoint = new IPEndPoint(IPAddress.Loopback, DefaultPort);
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            if (port is < 1 or > 65535)
                return false;
            endpoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }
        return IPEndPoint.TryParse(text, out IPEndPoint? parsed) && parsed.Port is > 0 and <= 65535
            && text.LastIndexOf(':') > text.LastIndexOf(']') && (endpoint = parsed) is not null;
    }

    private async Task AcceptLoop()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // EMFILE, a connection reset before it was accepted: the next accept may do.
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }
            if (Interlocked.Increment(ref open) > MaxConnections)
            {
                Interlocked.Decrement(ref open);
                Interlocked.Increment(ref rejected);
                Abort(client);
                continue;
            }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
        deadline.CancelAfter(ConnectionTimeout);
        bool answered = false;
        try
        {
            byte[] request = new byte[RequestLimitBytes];
            int length = 0, headEnd = -1;
            while (headEnd < 0)
            {
                if (length == request.Length)
                {
                    Interlocked.Increment(ref refused);
                    await Answer(client, 431, "Request Header Fields Too Large", "request head over 8192 bytes\n", head: false, deadline.Token).ConfigureAwait(false);
                    return;
                }
                int n = await client.ReceiveAsync(request.AsMemory(length), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0)
                    return;
                int from = Math.Max(0, length - 3);
                length += n;
                headEnd = request.AsSpan(from, length - from).IndexOf("\r\n\r\n"u8);
            }
            await Respond(client, request.AsSpan(0, length), deadline.Token).ConfigureAwait(false);
            // Read to the client's close: closing with its bytes unread would reset the connection and could cost it the answer.
            while (await client.ReceiveAsync(request, SocketFlags.None, deadline.Token).ConfigureAwait(false) > 0)
            {
            }
            answered = true;
        }
        catch (OperationCanceledException)
        {
            if (!stopping.IsCancellationRequested)
                Interlocked.Increment(ref timedOut);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            // The client went away: nothing to answer.
        }
        finally
        {
            if (answered)
                client.Dispose();
            else
                Abort(client);
            Interlocked.Decrement(ref open);
        }
    }

    private Task Respond(Socket client, ReadOnlySpan<byte> head, CancellationToken token)
    {
        int lineEnd = head.IndexOf("\r\n"u8);
        ReadOnlySpan<byte> line = head[..lineEnd];
        int space1 = line.IndexOf((byte)' ');
        int space2 = space1 < 0 ? -1 : line[(space1 + 1)..].IndexOf((byte)' ');
        if (space1 <= 0 || space2 <= 0 || !line[(space1 + 1 + space2 + 1)..].StartsWith("HTTP/1."u8))
        {
            Interlocked.Increment(ref refused);
            return Answer(client, 400, "Bad Request", "not an HTTP/1.x request line\n", head: false, token);
        }
        ReadOnlySpan<byte> method = line[..space1];
        ReadOnlySpan<byte> target = line.Slice(space1 + 1, space2);
        int query = target.IndexOf((byte)'?');
        if (query >= 0)
            target = target[..query];
        bool isHead = method.SequenceEqual("HEAD"u8);
        if (!isHead && !method.SequenceEqual("GET"u8))
        {
            Interlocked.Increment(ref refused);
            return Answer(client, 405, "Method Not Allowed", "only GET and HEAD\n", head: false, token, "Allow: GET, HEAD\r\n");
        }
        Interlocked.Increment(ref served);
        if (target.SequenceEqual("/metrics"u8))
            return Answer(client, 200, "OK", metrics(), isHead, token, contentType: PrometheusText.ContentType);
        if (target.SequenceEqual("/healthz"u8))
        {
            return unhealthy() is { } reason
                ? Answer(client, 503, "Service Unavailable", reason.ReplaceLineEndings(" ") + "\n", isHead, token)
                : Answer(client, 200, "OK", "ok\n", isHead, token);
        }
        return Answer(client, 404, "Not Found", "Guard serves /metrics and /healthz\n", isHead, token);
    }

    private static async Task Answer(
        Socket client, int status, string reason, string body, bool head, CancellationToken token,
        string extraHeaders = "", string contentType = "text/plain; charset=utf-8")
    {
        byte[] content = Encoding.UTF8.GetBytes(body);
        string header = string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 {status} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {content.Length}\r\nConnection: close\r\nCache-Control: no-store\r\n{extraHeaders}\r\n");
        byte[] answer = new byte[Encoding.ASCII.GetByteCount(header) + (head ? 0 : content.Length)];
        int at = Encoding.ASCII.GetBytes(header, answer);
        if (!head)
            content.CopyTo(answer, at);
        for (int sent = 0; sent < answer.Length;)
            sent += await client.SendAsync(answer.AsMemory(sent), SocketFlags.None, token).ConfigureAwait(false);
        client.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Closes a connection at once, unsent data dropped (no FIN_WAIT linger for a client that never reads).</summary>
    private static void Abort(Socket client)
    {
        try
        {
            client.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset by the other side.
        }
        client.Dispose();
    }

    /// <summary>Stops listening and closes every connection; waits up to a second for the accept loop.</summary>
    public void Dispose()
    {
        stopping.Cancel();
        listener.Dispose();
        // Not disposed: connections still closing read its token.
        _ = acceptLoop.Wait(TimeSpan.FromSeconds(1));
    }
}
