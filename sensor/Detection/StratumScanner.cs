using System.Text;
using Guard.Sensor.Abi;

namespace Guard.Sensor.Detection;

/// <summary>What a Stratum scan decided (GUARD_STRATUM_* in bpf/guard.h).</summary>
public enum StratumVerdict : byte
{
    /// <summary>Nothing (yet).</summary>
    None = 0,

    /// <summary>A method the policy names, reported only.</summary>
    Alert = 1,

    /// <summary>A method the policy names and stops: the kernel drops the segment and all after it.</summary>
    Drop = 2,

    /// <summary>The budget (<see cref="StratumScanner.ScanLimit"/>) ended inside a message or a handshake: held undecided.</summary>
    Hold = 3,
}

/// <summary>
/// A TCP stream read for Stratum byte for byte as the kernel reads it
/// (bpf/stream.h, scan_step and the budget in stream_advance): the same
/// phases, the same decoding, the same verdict at the same byte. Feed it the
/// stream's bytes in order, in pieces of any size. The kernel's segment
/// handling (sequence numbers, holds) is not here: it decides which bytes
/// are read, not what they mean.
/// <para>
/// Read: an optional chain of proxy handshakes (SOCKS4, SOCKS4a, SOCKS5 with
/// or without username/password, HTTP/1.x requests up to a CONNECT's empty
/// line), each starting where the last one's tunnel starts; then blank (JSON
/// whitespace, UTF-8 byte order marks) and JSON-RPC messages, objects or
/// batches (arrays of objects), one after the other. HTTP requests are
/// followed head after head, empty lines before each skipped; an
/// absolute-form target's authority is kept as a CONNECT's is; a head other
/// than a CONNECT's is followed by its Content-Length body, if any, then the
/// next request (a chunked body is not followed). In each
/// message's object (or each object of a batch) every "method" key, in any
/// ASCII case, is read with its string value, escapes undone in both; the
/// value's leading run of method characters (letters, digits, '.', '_'),
/// folded to lower case, decides when the policy names it. Anything else
/// where a message or handshake should start ends the scan: no Stratum. The
/// first <see cref="ScanLimit"/> bytes at most are read; a stream still
/// inside a message or handshake there is held, one between messages or
/// among HTTP requests other than a CONNECT is let be.
/// </para>
/// </summary>
public sealed class StratumScanner
{
    /// <summary>GUARD_SCAN_LIMIT: bytes of a stream read at most.</summary>
    public const int ScanLimit = StreamRecord.ScanLimit;

    private const int MethodCapacity = GuardMethod.Capacity;
    private const int ProxyHostCapacity = StreamRecord.ProxyHostCapacity;

    private const byte InString = 1;
    private const byte Target = 2;
    private const byte ExpectKey = 4;
    private const byte KeyIsMethod = 8;
    private const byte MethodNext = 16;

    private const byte RoleNone = 0;
    private const byte RoleKey = 1;
    private const byte RoleMethod = 2;

    private const int MethodKeyLength = 6;
    private const int KeyMismatch = 7;

    private static ReadOnlySpan<byte> MethodKey => "method"u8;

    private const int ConnectLength = 7;
    private const int HttpOtherMethod = 8;
    private const int HeaderOther = 16;

    private static ReadOnlySpan<byte> ConnectVerb => "CONNECT"u8;

    private static ReadOnlySpan<byte> HttpScheme => "http://"u8;

    private static ReadOnlySpan<byte> ContentLengthName => "content-length:"u8;

    private readonly IReadOnlyDictionary<string, StratumVerdict> methods;
    private readonly byte[] method = new byte[MethodCapacity];
    private readonly byte[] proxyHost = new byte[ProxyHostCapacity];

    private Phase phase;
    private uint depth;
    private uint unicode;
    private int count;
    private byte top;
    private byte flags;
    private byte escape;
    private byte role;
    private int keyLength;
    private int methodLength;
    private int bom;
    private uint body;
    private int header;

    /// <param name="methods">
    /// The policy's methods and what each decides, as the kernel's
    /// stratum_methods map holds them (see <see cref="ForPolicy"/>); keys are
    /// the methods' UTF-8 bytes as Latin-1 strings, one char per byte.
    /// </param>
    public StratumScanner(IReadOnlyDictionary<string, StratumVerdict> methods) => this.methods = methods;

    private enum Phase : byte
    {
        Head,
        Lead,
        Between,
        Json,
        Socks4Cmd,
        Socks4Port,
        Socks4Ip,
        Socks4User,
        Socks4Host,
        Socks5NMethods,
        Socks5Methods,
        Socks5Next,
        Socks5ULen,
        Socks5UName,
        Socks5PLen,
        Socks5Passwd,
        Socks5Ver,
        Socks5Cmd,
        Socks5Rsv,
        Socks5Atyp,
        Socks5DLen,
        Socks5Addr,
        Socks5Port,
        HttpMethod,
        HttpTarget,
        HttpAuthority,
        HttpHeaders,
        HttpBody,
        HttpNext,
        ConnectAuthority,
        ConnectHeaders,
        Done,
    }

    /// <summary>The verdict, once reached (then nothing more is read).</summary>
    public StratumVerdict Verdict { get; private set; }

    /// <summary>Stream offset of the byte that decided <see cref="Verdict"/> (for a hold, the limit).</summary>
    public long DecidedAt { get; private set; }

    /// <summary>Bytes of the stream read so far (fed, up to where reading stopped).</summary>
    public long Offset { get; private set; }

    /// <summary>The scan is over: a verdict, or no Stratum, or the budget spent between messages.</summary>
    public bool Finished => Verdict != StratumVerdict.None || phase == Phase.Done;

    /// <summary>The method that decided, as compared: its method characters, folded to lower case; empty when none did.</summary>
    public string Method => Verdict is StratumVerdict.Alert or StratumVerdict.Drop ? Encoding.ASCII.GetString(method, 0, methodLength) : "";

    /// <summary>Proxy handshakes completed and absolute-form HTTP requests read.</summary>
    public int Proxies { get; private set; }

    /// <summary>The latest handshake.</summary>
    public StreamProxy Proxy { get; private set; }

    /// <summary>How its destination is written in <see cref="ProxyHost"/>.</summary>
    public ProxyAddress ProxyAddress { get; private set; }

    /// <summary>Host order; 0 for HTTP CONNECT.</summary>
    public int ProxyPort { get; private set; }

    private int proxyHostLength;

    /// <summary>The destination asked of the latest proxy, as the kernel records it (up to 64 bytes).</summary>
    public ReadOnlySpan<byte> ProxyHost => proxyHost.AsSpan(0, proxyHostLength);

    /// <summary>Back to a stream whose first byte is still to come, as the kernel's state is at each new connect: no allocation.</summary>
    public void Reset()
    {
        phase = Phase.Head;
        depth = unicode = 0;
        count = keyLength = methodLength = bom = proxyHostLength = header = 0;
        body = 0;
        top = flags = escape = role = 0;
        Verdict = StratumVerdict.None;
        DecidedAt = Offset = 0;
        Proxies = ProxyPort = 0;
        Proxy = StreamProxy.None;
        ProxyAddress = ProxyAddress.None;
    }

    /// <summary>
    /// The policy's methods as the kernel map holds them (ASCII folded to
    /// lower case, as the scan compares): each decides Drop when the rule
    /// acts, else Alert.
    /// </summary>
    public static IReadOnlyDictionary<string, StratumVerdict> ForPolicy(IEnumerable<string> policyMethods, bool drop)
    {
        var map = new Dictionary<string, StratumVerdict>(StringComparer.Ordinal);
        foreach (string m in policyMethods)
            map[Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(Fold(m)))] = drop ? StratumVerdict.Drop : StratumVerdict.Alert;
        return map;
    }

    /// <summary>A method as the scan compares it: ASCII letters folded to lower case, every other character kept.</summary>
    public static string Fold(string method) => string.Create(method.Length, method, static (span, m) =>
    {
        for (int i = 0; i < m.Length; i++)
            span[i] = m[i] is >= 'A' and <= 'Z' ? (char)(m[i] + ('a' - 'A')) : m[i];
    });

    /// <summary>A method character (after folding): the run of these at a method value's start is what is compared.</summary>
    public static bool IsMethodCharacter(byte c) => c is >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'.' or (byte)'_';

    /// <summary>Reads the stream's next bytes; returns <see cref="Verdict"/>. Bytes after the scan finished are ignored.</summary>
    public StratumVerdict Read(ReadOnlySpan<byte> bytes)
    {
        foreach (byte c in bytes)
        {
            if (Finished || Offset >= ScanLimit)
                break;
            StratumVerdict v = Step(c);
            Offset++;
            if (v != StratumVerdict.None)
            {
                Verdict = v;
                DecidedAt = Offset - 1;
                break;
            }
            if (Offset == ScanLimit && phase != Phase.Done)
            {
                // As stream_advance: after whole messages (or among HTTP requests) the stream is let be; inside one, or a handshake, held.
                if (MayStop)
                {
                    phase = Phase.Done;
                }
                else
                {
                    Verdict = StratumVerdict.Hold;
                    DecidedAt = ScanLimit;
                }
            }
        }
        return Verdict;
    }

    private StratumVerdict Step(byte c)
    {
        if (phase == Phase.Json)
            return JsonByte(c);
        if (phase is Phase.Head or Phase.HttpNext)
        {
            if (c is (byte)'\r' or (byte)'\n')
                return StratumVerdict.None; // empty lines before a request line (or blank before a message)
            if (c is >= (byte)'A' and <= (byte)'Z')
            {
                phase = Phase.HttpMethod;
                count = c == 'C' ? 1 : HttpOtherMethod;
                body = 0;
            }
            else if (phase == Phase.HttpNext)
            {
                phase = Phase.Done;
            }
            else if (c == 4)
            {
                ProxyBegin(StreamProxy.Socks4, Phase.Socks4Cmd);
            }
            else if (c == 5)
            {
                ProxyBegin(StreamProxy.Socks5, Phase.Socks5NMethods);
            }
            else
            {
                phase = Phase.Lead;
                BlankByte(c);
            }
            return StratumVerdict.None;
        }
        if (phase is Phase.Lead or Phase.Between)
            BlankByte(c);
        else if (phase < Phase.Done)
            ProxyByte(c);
        return StratumVerdict.None;
    }

    /// <summary>As scan_may_stop: between messages, or among HTTP requests other than a CONNECT.</summary>
    private bool MayStop => phase switch
    {
        Phase.Between or Phase.HttpTarget or Phase.HttpAuthority or Phase.HttpHeaders or Phase.HttpBody or Phase.HttpNext => true,
        Phase.HttpMethod => count == HttpOtherMethod,
        _ => false,
    };

    private void BlankByte(byte c)
    {
        if (bom != 0)
        {
            if (c != (bom == 1 ? 0xBB : 0xBF))
                phase = Phase.Done;
            bom = bom == 1 ? 2 : 0;
            return;
        }
        if (c == 0xEF)
        {
            bom = 1;
            return;
        }
        if (c is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            return;
        if (c is (byte)'{' or (byte)'[')
        {
            phase = Phase.Json;
            top = c;
            depth = 1;
            flags = c == '{' ? (byte)(Target | ExpectKey) : (byte)0;
            return;
        }
        phase = Phase.Done;
    }

    private bool AtMethodDepth => depth == (top == '[' ? 2u : 1u) && (flags & Target) != 0;

    private StratumVerdict JsonByte(byte c)
    {
        if ((flags & InString) != 0)
        {
            if (escape == 0)
            {
                if (c == '\\')
                {
                    escape = 1;
                    return StratumVerdict.None;
                }
                return c == '"' ? StringEnd() : StringByte(c);
            }
            if (escape == 1)
            {
                if (c == 'u')
                {
                    escape = 2;
                    unicode = 0;
                    return StratumVerdict.None;
                }
                escape = 0;
                return StringByte(c switch
                {
                    (byte)'b' => 8,
                    (byte)'f' => 12,
                    (byte)'n' => 10,
                    (byte)'r' => 13,
                    (byte)'t' => 9,
                    _ => c,
                });
            }
            unicode = (unicode << 4) | HexValue(c);
            if (++escape < 6)
                return StratumVerdict.None;
            escape = 0;
            return StringByte(unicode < 0x80 ? (byte)unicode : (byte)0xFF);
        }
        switch (c)
        {
            case (byte)'"':
                flags |= InString;
                escape = 0;
                role = RoleNone;
                if (AtMethodDepth)
                {
                    if ((flags & ExpectKey) != 0)
                    {
                        role = RoleKey;
                        keyLength = 0;
                    }
                    else if ((flags & MethodNext) != 0)
                    {
                        role = RoleMethod;
                        methodLength = 0;
                        Array.Clear(method);
                    }
                    flags &= unchecked((byte)~(ExpectKey | MethodNext | KeyIsMethod));
                }
                break;
            case (byte)'{' or (byte)'[':
                if (AtMethodDepth)
                    flags &= unchecked((byte)~(ExpectKey | MethodNext));
                depth++;
                if (depth == (top == '[' ? 2u : 1u))
                    flags = c == '{' ? (byte)(Target | ExpectKey) : (byte)0;
                break;
            case (byte)'}' or (byte)']':
                if (--depth == 0)
                {
                    phase = Phase.Between;
                    flags = 0;
                }
                break;
            case (byte)',':
                if (AtMethodDepth)
                {
                    flags |= ExpectKey;
                    flags &= unchecked((byte)~(MethodNext | KeyIsMethod));
                }
                break;
            case (byte)':':
                if (AtMethodDepth)
                {
                    flags &= unchecked((byte)~ExpectKey);
                    if ((flags & KeyIsMethod) != 0)
                        flags |= MethodNext;
                    flags &= unchecked((byte)~KeyIsMethod);
                }
                break;
        }
        return StratumVerdict.None;
    }

    private static uint HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => (uint)(c - '0'),
        >= (byte)'a' and <= (byte)'f' => (uint)(c - 'a' + 10),
        >= (byte)'A' and <= (byte)'F' => (uint)(c - 'A' + 10),
        _ => 0x100,
    };

    private static byte AsciiLower(byte c) => c is >= (byte)'A' and <= (byte)'Z' ? (byte)(c + ('a' - 'A')) : c;

    private StratumVerdict MethodEnd()
    {
        role = RoleNone;
        if (methodLength > 0 && methodLength < MethodCapacity
            && methods.TryGetValue(Encoding.Latin1.GetString(method, 0, methodLength), out StratumVerdict verdict))
            return verdict;
        return StratumVerdict.None;
    }

    private StratumVerdict StringByte(byte c)
    {
        c = AsciiLower(c);
        if (role == RoleKey)
        {
            keyLength = keyLength < MethodKeyLength && c == MethodKey[keyLength] ? keyLength + 1 : KeyMismatch;
        }
        else if (role == RoleMethod)
        {
            if (!IsMethodCharacter(c))
                return MethodEnd();
            if (methodLength < MethodCapacity - 1)
                method[methodLength++] = c;
            else
                methodLength = MethodCapacity;
        }
        return StratumVerdict.None;
    }

    private StratumVerdict StringEnd()
    {
        byte ended = role;
        flags &= unchecked((byte)~InString);
        role = RoleNone;
        if (ended == RoleKey && keyLength == MethodKeyLength)
            flags |= KeyIsMethod;
        return ended == RoleMethod ? MethodEnd() : StratumVerdict.None;
    }

    private void ProxyBegin(StreamProxy kind, Phase next)
    {
        Proxy = kind;
        ProxyAddress = ProxyAddress.None;
        proxyHostLength = 0;
        ProxyPort = 0;
        phase = next;
    }

    private void ProxyDone()
    {
        Proxies++;
        phase = Phase.Head;
        count = 0;
    }

    private void ProxyHostByte(byte c)
    {
        if (proxyHostLength < ProxyHostCapacity)
            proxyHost[proxyHostLength++] = c;
    }

    private void ProxyByte(byte c)
    {
        switch (phase)
        {
            case Phase.Socks4Cmd:
                phase = Phase.Socks4Port;
                count = 2;
                return;
            case Phase.Socks4Port or Phase.Socks5Port:
                ProxyPort = ((ProxyPort << 8) | c) & 0xFFFF;
                if (--count > 0)
                    return;
                if (phase == Phase.Socks5Port)
                {
                    ProxyDone();
                    return;
                }
                phase = Phase.Socks4Ip;
                count = 4;
                ProxyAddress = ProxyAddress.IPv4;
                return;
            case Phase.Socks4Ip:
                ProxyHostByte(c);
                if (--count == 0)
                    phase = Phase.Socks4User;
                return;
            case Phase.Socks4User:
                if (c != 0)
                    return;
                // 0.0.0.x, x not 0: SOCKS4a, a name follows the user id.
                if (proxyHost[0] == 0 && proxyHost[1] == 0 && proxyHost[2] == 0 && proxyHost[3] != 0)
                {
                    Proxy = StreamProxy.Socks4a;
                    ProxyAddress = ProxyAddress.Name;
                    proxyHostLength = 0;
                    phase = Phase.Socks4Host;
                    return;
                }
                ProxyDone();
                return;
            case Phase.Socks4Host:
                if (c == 0)
                    ProxyDone();
                else
                    ProxyHostByte(c);
                return;
            case Phase.Socks5NMethods:
                count = c;
                phase = c != 0 ? Phase.Socks5Methods : Phase.Socks5Next;
                return;
            case Phase.Socks5Methods or Phase.Socks5UName or Phase.Socks5Passwd:
                if (--count > 0)
                    return;
                phase = phase == Phase.Socks5Methods ? Phase.Socks5Next : phase == Phase.Socks5UName ? Phase.Socks5PLen : Phase.Socks5Ver;
                return;
            case Phase.Socks5Next:
                phase = c == 1 ? Phase.Socks5ULen : c == 5 ? Phase.Socks5Cmd : Phase.Done;
                return;
            case Phase.Socks5ULen:
                count = c;
                phase = c != 0 ? Phase.Socks5UName : Phase.Socks5PLen;
                return;
            case Phase.Socks5PLen:
                count = c;
                phase = c != 0 ? Phase.Socks5Passwd : Phase.Socks5Ver;
                return;
            case Phase.Socks5Ver:
                phase = c == 5 ? Phase.Socks5Cmd : Phase.Done;
                return;
            case Phase.Socks5Cmd:
                phase = Phase.Socks5Rsv;
                return;
            case Phase.Socks5Rsv:
                phase = Phase.Socks5Atyp;
                return;
            case Phase.Socks5Atyp:
                proxyHostLength = 0;
                if (c is 1 or 4)
                {
                    ProxyAddress = c == 1 ? ProxyAddress.IPv4 : ProxyAddress.IPv6;
                    count = c == 1 ? 4 : 16;
                    phase = Phase.Socks5Addr;
                }
                else if (c == 3)
                {
                    ProxyAddress = ProxyAddress.Name;
                    phase = Phase.Socks5DLen;
                }
                else
                {
                    phase = Phase.Done;
                }
                return;
            case Phase.Socks5DLen:
                count = c != 0 ? c : 2;
                phase = c != 0 ? Phase.Socks5Addr : Phase.Socks5Port;
                return;
            case Phase.Socks5Addr:
                ProxyHostByte(c);
                if (--count == 0)
                {
                    phase = Phase.Socks5Port;
                    count = 2;
                }
                return;
            case Phase.HttpMethod:
                if (c == ' ')
                {
                    if (count == ConnectLength)
                    {
                        ProxyBegin(StreamProxy.HttpConnect, Phase.ConnectAuthority);
                        ProxyAddress = ProxyAddress.Authority;
                    }
                    else
                    {
                        phase = Phase.HttpTarget;
                        count = 0;
                    }
                }
                else if (c is >= (byte)'A' and <= (byte)'Z' or (byte)'-' or (byte)'_')
                {
                    count = count < ConnectLength && c == ConnectVerb[count] ? count + 1 : HttpOtherMethod;
                }
                else
                {
                    phase = Phase.Done;
                }
                return;
            case Phase.HttpTarget:
                if (count < HttpScheme.Length && AsciiLower(c) == HttpScheme[count])
                {
                    if (++count == HttpScheme.Length)
                    {
                        ProxyBegin(StreamProxy.HttpForward, Phase.HttpAuthority);
                        ProxyAddress = ProxyAddress.Authority;
                    }
                    return;
                }
                phase = Phase.HttpHeaders;
                count = c == '\n' ? 1 : 0;
                header = c == '\n' ? 0 : HeaderOther;
                return;
            case Phase.HttpAuthority:
                if (c is (byte)'/' or (byte)'?' or (byte)'#' or (byte)' ' or (byte)'\r' or (byte)'\n')
                {
                    Proxies++; // the destination asked for: evidence, recorded as a handshake's
                    phase = Phase.HttpHeaders;
                    count = c == '\n' ? 1 : 0;
                    header = c == '\n' ? 0 : HeaderOther;
                }
                else
                {
                    ProxyHostByte(c);
                }
                return;
            case Phase.ConnectAuthority:
                if (c is (byte)' ' or (byte)'\r' or (byte)'\n')
                {
                    phase = Phase.ConnectHeaders;
                    count = c == '\n' ? 1 : 0;
                }
                else
                {
                    ProxyHostByte(c);
                }
                return;
            case Phase.HttpHeaders:
                // Another request's head ends so too; its Content-Length says how much body to skip to the next
                // request (a chunked body is not followed: read as a request line, it ends the scan).
                if (c == '\n')
                {
                    header = 0;
                    if (++count == 2)
                        phase = body != 0 ? Phase.HttpBody : Phase.HttpNext;
                    return;
                }
                if (c == '\r')
                    return;
                count = 0;
                if (header < ContentLengthName.Length)
                {
                    header = AsciiLower(c) == ContentLengthName[header] ? header + 1 : HeaderOther;
                }
                else if (header == ContentLengthName.Length)
                {
                    if (c is >= (byte)'0' and <= (byte)'9')
                    {
                        if (body < ScanLimit) // past the budget, the exact length matters not
                            body = body * 10 + (uint)(c - '0');
                    }
                    else if (c is not ((byte)' ' or (byte)'\t'))
                    {
                        header = HeaderOther;
                    }
                }
                return;
            case Phase.HttpBody:
                if (--body == 0)
                    phase = Phase.HttpNext;
                return;
            case Phase.ConnectHeaders:
                // The request ends at an empty line: "\r\n\r\n", or "\n\n"; the tunnel opens.
                if (c == '\n')
                {
                    if (++count == 2)
                        ProxyDone();
                }
                else if (c != '\r')
                {
                    count = 0;
                }
                return;
        }
    }
}
