using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>How syslog messages travel: the local socket, UDP, or TCP.</summary>
public enum SyslogTransport
{
    /// <summary>A local datagram socket (/dev/log), one message a datagram.</summary>
    Unix,

    /// <summary>UDP, one message a datagram (RFC 5426).</summary>
    Udp,

    /// <summary>TCP, each message framed with its length (octet counting, RFC 6587 section 3.4.1).</summary>
    Tcp,
}

/// <summary>Where syslog messages go: <c>unix:/dev/log</c>, <c>udp:HOST:PORT</c> or <c>tcp:HOST:PORT</c>.</summary>
/// <param name="Transport">The socket kind.</param>
/// <param name="Path">The socket path, for <see cref="SyslogTransport.Unix"/>.</param>
/// <param name="Host">The host name or address, for UDP and TCP.</param>
/// <param name="Port">The port, for UDP and TCP.</param>
public sealed record SyslogAddress(SyslogTransport Transport, string Path, string Host, int Port)
{
    /// <summary>The forms <see cref="TryParse"/> takes, for error messages.</summary>
    public const string Forms = "unix:PATH, udp:HOST:PORT or tcp:HOST:PORT (an IPv6 address in brackets)";

    /// <summary>Reads <c>unix:/dev/log</c>, <c>udp:127.0.0.1:514</c>, <c>tcp:[::1]:6514</c>, <c>tcp:logs.example:514</c>.</summary>
    public static bool TryParse(string text, out SyslogAddress address)
    {
        address = new SyslogAddress(SyslogTransport.Unix, "", "", 0);
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
            return false;
        string scheme = text[..colon];
        string rest = text[(colon + 1)..];
        if (scheme == "unix")
        {
            if (!rest.StartsWith('/'))
                return false;
            address = address with { Path = rest };
            return true;
        }
        if (scheme is not ("udp" or "tcp"))
            return false;
        int portAt = rest.LastIndexOf(':');
        if (portAt <= 0 || !int.TryParse(rest[(portAt + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            return false;
        string host = rest[..portAt];
        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        if (host.Length == 0 || host.Contains(':', StringComparison.Ordinal) && !IPAddress.TryParse(host, out _))
            return false;
        address = new SyslogAddress(scheme == "udp" ? SyslogTransport.Udp : SyslogTransport.Tcp, "", host, port);
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => Transport switch
    {
        SyslogTransport.Unix => $"unix:{Path}",
        _ => $"{(Transport == SyslogTransport.Udp ? "udp" : "tcp")}:{(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host)}:{Port}",
    };
}

/// <summary>
/// The RFC 5424 header put before each event's ECS JSON line:
/// <c>&lt;PRI&gt;1 TIMESTAMP HOSTNAME guard PROCID MSGID - </c>, with the
/// event's own time to the microsecond, its type as MSGID, and a severity by
/// what it is (an alert by its severity, an action notice, the rest info).
/// The JSON is the MSG, without a BOM so that a JSON parser downstream takes it as it is.
/// </summary>
public sealed class SyslogHeader
{
    /// <summary>The facility names RFC 5424 numbers (table 1), as syslog.conf spells them.</summary>
    public static readonly IReadOnlyList<string> Facilities =
    [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ];

    /// <summary>MSGID by event type: its name (exec, connect, alert, ...), 1-32 printable characters.</summary>
    private static readonly byte[][] MessageIds = [.. Enum.GetValues<EventType>().Select(t => Encoding.ASCII.GetBytes(EventNames.Of(t)))];

    private readonly RunInfo run;
    private readonly int facility;
    private readonly byte[] hostAndApp;

    /// <summary>Headers for this run's host, from the facility named <paramref name="facilityName"/> (one of <see cref="Facilities"/>).</summary>
    /// <exception cref="ArgumentException">The facility is not one of <see cref="Facilities"/>.</exception>
    public SyslogHeader(RunInfo run, string facilityName)
    {
        this.run = run;
        facility = Facilities.ToList().IndexOf(facilityName);
        if (facility < 0)
            throw new ArgumentException($"'{facilityName}' is not a syslog facility ({string.Join(", ", Facilities)})", nameof(facilityName));
        // HOSTNAME is 1-255 printable US-ASCII; APP-NAME and PROCID follow it.
        string host = new([.. run.HostName.Take(255).Select(c => c is > ' ' and < (char)127 ? c : '_')]);
        hostAndApp = Encoding.ASCII.GetBytes($" {(host.Length > 0 ? host : "-")} guard {Environment.ProcessId.ToString(CultureInfo.InvariantCulture)} ");
    }

    /// <summary>syslog severity (RFC 5424 table 2) of an event: 2 critical, 3 error, 4 warning, 5 notice, 6 informational.</summary>
    public static int SeverityOf(SensorEvent e) => e switch
    {
        AlertEvent alert => AlertSeverityScale.Of(alert) switch
        {
            AlertSeverity.Critical => 2,
            AlertSeverity.High => 3,
            AlertSeverity.Medium => 4,
            _ => 5,
        },
        ActionEvent => 5,
        _ => 6,
    };

    /// <summary>Writes the header for <paramref name="e"/> into <paramref name="into"/> (128 bytes are enough past the host name); returns its length.</summary>
    public int Write(SensorEvent e, Span<byte> into)
    {
        int n = 0;
        into[n++] = (byte)'<';
        (facility * 8 + SeverityOf(e)).TryFormat(into[n..], out int w, default, CultureInfo.InvariantCulture);
        n += w;
        ">1 "u8.CopyTo(into[n..]);
        n += 3;
        run.WallClock(e.TimeNs).TryFormat(into[n..], out w, "yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);
        n += w;
        hostAndApp.CopyTo(into[n..]);
        n += hostAndApp.Length;
        byte[] msgId = MessageIds[(int)e.Type];
        msgId.CopyTo(into[n..]);
        n += msgId.Length;
        " - "u8.CopyTo(into[n..]);
        return n + 3;
    }
}

/// <summary>
/// Syslog messages (one a line in the queue, header and JSON, see
/// <see cref="SyslogHeader"/>) to the local socket, UDP or TCP. A connection
/// that fails is made again, backing off up to 5 s, and the messages it was
/// sending are sent again (so a message may arrive twice across a broken TCP
/// connection, never half); meanwhile the queue fills and drops. A send
/// blocked by a peer that does not read is given up after 10 s and the
/// connection made again; <see cref="Abort"/> gives it up at once.
///
/// Why this is ours: the syslog libraries for .NET (Serilog.Sinks.Syslog,
/// NLog's syslog targets) need their logging frameworks' event pipelines
/// and reflection-based configuration; the framing itself is a header and a
/// length prefix.
/// </summary>
public sealed class SyslogTarget : IOutputTarget
{
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    /// <summary>The largest UDP payload over IPv4 (65,535 less the IP and UDP headers); a longer message is lost, and counted.</summary>
    private const int MaxDatagram = 65_507;

    private readonly SyslogAddress address;
    private readonly byte[] frames = new byte[1 << 20];
    private readonly List<(int Start, int Length)> messages = [];
    private readonly ManualResetEventSlim aborted = new(false);
    private Socket? socket;
    private EndPoint? endPoint;
    private TimeSpan backoff = TimeSpan.FromMilliseconds(100);

    /// <summary>Messages to <paramref name="address"/>; the socket is made at the first write.</summary>
    public SyslogTarget(SyslogAddress address) => this.address = address;

    /// <inheritdoc/>
    public string? LastError { get; private set; }

    /// <inheritdoc/>
    public int Write(ReadOnlySpan<byte> lines)
    {
        messages.Clear();
        int at = 0;
        while (at < lines.Length)
        {
            int end = lines[at..].IndexOf((byte)'\n');
            int length = end < 0 ? lines.Length - at : end;
            messages.Add((at, length));
            at += length + 1;
        }
        int next = 0;
        int lost = 0;
        while (next < messages.Count)
        {
            if (aborted.IsSet)
                return lost + messages.Count - next;
            if (socket is null && !Connect())
                continue;
            try
            {
                if (address.Transport == SyslogTransport.Tcp)
                {
                    next = SendFramed(lines, next);
                }
                else
                {
                    (int start, int length) = messages[next];
                    if (length > MaxDatagram)
                    {
                        LastError = $"a message of {length} bytes is longer than a datagram takes";
                        lost++;
                    }
                    else
                    {
                        if (address.Transport == SyslogTransport.Unix)
                            socket!.Send(lines.Slice(start, length));
                        else
                            socket!.SendTo(lines.Slice(start, length), SocketFlags.None, endPoint!);
                    }
                    next++;
                }
                LastError = null;
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                LastError = $"syslog {address}: {e.Message}";
                CloseSocket();
            }
        }
        return lost;
    }

    /// <summary>Frames as many messages from <paramref name="first"/> as the buffer holds, sends them; returns the next one to send.</summary>
    private int SendFramed(ReadOnlySpan<byte> lines, int first)
    {
        int n = 0;
        int next = first;
        while (next < messages.Count)
        {
            (int start, int length) = messages[next];
            if (n + length + 12 > frames.Length && next > first)
                break;
            if (length + 12 > frames.Length)
            {
                // Longer than the buffer: sent on its own.
                Send(Encoding.ASCII.GetBytes(length.ToString(CultureInfo.InvariantCulture) + " "));
                Send(lines.Slice(start, length));
                return next + 1;
            }
            length.TryFormat(frames.AsSpan(n), out int w, default, CultureInfo.InvariantCulture);
            n += w;
            frames[n++] = (byte)' ';
            lines.Slice(start, length).CopyTo(frames.AsSpan(n));
            n += length;
            next++;
        }
        Send(frames.AsSpan(0, n));
        return next;
    }

    private void Send(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
            bytes = bytes[socket!.Send(bytes)..];
    }

    /// <summary>Makes the socket; on failure waits the backoff (or until aborted) and returns false.</summary>
    private bool Connect()
    {
        try
        {
            if (address.Transport == SyslogTransport.Unix)
            {
                endPoint = new UnixDomainSocketEndPoint(address.Path);
                socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                socket.Connect(endPoint);
            }
            else
            {
                IPAddress ip = IPAddress.TryParse(address.Host, out IPAddress? parsed) ? parsed : Dns.GetHostAddresses(address.Host)[0];
                endPoint = new IPEndPoint(ip, address.Port);
                socket = address.Transport == SyslogTransport.Udp
                    ? new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp)
                    : new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                if (address.Transport == SyslogTransport.Tcp)
                {
                    IAsyncResult connecting = socket.BeginConnect(endPoint, null, null);
                    if (WaitHandle.WaitAny([connecting.AsyncWaitHandle, aborted.WaitHandle], TimeSpan.FromSeconds(5)) != 0)
                        throw new SocketException((int)SocketError.TimedOut);
                    socket.EndConnect(connecting);
                }
            }
            socket.SendTimeout = (int)SendTimeout.TotalMilliseconds;
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or ArgumentException or IndexOutOfRangeException)
        {
            LastError = $"syslog {address}: {e.Message}";
            CloseSocket();
            aborted.Wait(backoff);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            return false;
        }
    }

    private void CloseSocket()
    {
        Socket? s = Interlocked.Exchange(ref socket, null);
        s?.Dispose();
    }

    /// <inheritdoc/>
    public void Reopen()
    {
    }

    /// <inheritdoc/>
    public void Tick(DateTime utcNow)
    {
    }

    /// <summary>Closes the socket from another thread: a blocked send or connect fails, and no other is tried.</summary>
    public void Abort()
    {
        aborted.Set();
        socket?.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        CloseSocket();
        aborted.Dispose();
    }
}
