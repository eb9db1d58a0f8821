using System.Text;

namespace Guard.Tests.Support;

/// <summary>
/// Streams for fuzzing the Stratum scan: JSON-RPC messages built from parts
/// that matter to it (the method key and value, escaped or not, near misses,
/// batches, nesting, blank and byte order marks before, proxy handshakes of
/// every kind first), ordinary traffic, random bytes, and mutations of all of
/// these (bytes inserted, deleted, replaced, escapes and slices spliced in).
/// The same seed makes the same streams.
/// </summary>
public static class StratumFuzz
{
    private static readonly string[] MethodNames =
    [
        "login", "mining.subscribe", "mining.authorize", "mining.submit", "mining.configure", "mining.extranonce.subscribe",
        "mining.hello", "getjob", "submit", "keepalived", "eth_submitLogin", "eth_getWork", "eth_submitWork",
        // near misses
        "logi", "logins", "Login", "mining.subscrib", "mining_subscribe", "eth_getwork", "submit ", " login", "initialize",
        "textDocument/didOpen", "server.version", "", "x", new string('m', 31), "mining.extranonce.subscribe.more.than.31",
        // spellings pools accept: another case, a suffix after a character no method has, a NUL
        "MINING.SUBSCRIBE", "Mining.Authorize", "mining.subscribe/cgminer", "login\0", "submit x", "LOGIN\0\0", "eth_SUBMITWORK", "keepalived\u00e9",
        "mining.subscribex", "login.x", "getjob_",
    ];

    private static readonly string[] KeyNames = ["method", "method", "method", "methods", "Method", "METHOD", "mEtHod", "metho", "id", "params", "jsonrpc", ""];

    private const string JsonAlphabet = "{}[]\":,\\ \t\r\nu0123456789abcdefABCDEFmethodlginsubcr.-_/tnfrMETHODLOGINCT:p";

    public static byte[] Stream(Random r)
    {
        byte[] stream = r.Next(12) switch
        {
            0 => RandomBytes(r, r.Next(1, 300), JsonAlphabet),
            1 => RandomBytes(r, r.Next(1, 200), null),
            2 or 3 or 4 or 5 => Encoding.UTF8.GetBytes(Messages(r)),
            6 or 7 => [.. Proxy(r), .. Encoding.UTF8.GetBytes(Messages(r))],
            8 => Benign(r),
            9 => Encoding.UTF8.GetBytes(Long(r)),
            _ => Encoding.UTF8.GetBytes(Messages(r)),
        };
        int mutations = r.Next(4) == 0 ? r.Next(1, 6) : 0;
        for (int i = 0; i < mutations; i++)
            stream = Mutate(stream, r);
        return stream.Length > 0 ? stream : [(byte)'{'];
    }

    private static byte[] RandomBytes(Random r, int n, string? alphabet)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++)
            b[i] = alphabet is null ? (byte)r.Next(256) : (byte)alphabet[r.Next(alphabet.Length)];
        return b;
    }

    private static string Pick(Random r, string[] from) => from[r.Next(from.Length)];

    /// <summary>A method the default policy names two times in three, else a near miss.</summary>
    private static string Method(Random r) => MethodNames[r.Next(3) == 0 ? r.Next(MethodNames.Length) : r.Next(13)];

    /// <summary>A JSON string literal of <paramref name="text"/>, some characters escaped (\uXXXX, upper or lower hex, or a short escape).</summary>
    private static string Literal(Random r, string text)
    {
        var s = new StringBuilder("\"");
        bool escapeSome = r.Next(3) == 0;
        foreach (char c in text)
        {
            if (escapeSome && r.Next(3) == 0)
                s.Append(r.Next(2) == 0 ? $"\\u{(int)c:x4}" : $"\\u{(int)c:X4}");
            else if (c == '/' && r.Next(2) == 0)
                s.Append("\\/");
            else
                s.Append(c);
        }
        return s.Append('"').ToString();
    }

    private static string Blank(Random r) => r.Next(3) switch
    {
        0 => "",
        1 => new string([.. Enumerable.Range(0, r.Next(1, 5)).Select(_ => " \t\r\n"[r.Next(4)])]),
        _ => r.Next(2) == 0 ? "\uFEFF" : "\n\uFEFF ",
    };

    private static string Value(Random r, int depth) => r.Next(depth > 2 ? 3 : 7) switch
    {
        0 => r.Next(1000).ToString(System.Globalization.CultureInfo.InvariantCulture),
        1 => Literal(r, Pick(r, MethodNames)),
        2 => r.Next(2) == 0 ? "null" : "true",
        3 or 4 => "{" + string.Join(",", Enumerable.Range(0, r.Next(3)).Select(_ => $"{Literal(r, Pick(r, KeyNames))}:{Value(r, depth + 1)}")) + "}",
        _ => "[" + string.Join(",", Enumerable.Range(0, r.Next(3)).Select(_ => Value(r, depth + 1))) + "]",
    };

    private static string Message(Random r)
    {
        var members = new List<string> { $"\"id\":{r.Next(10)}" };
        if (r.Next(2) == 0)
            members.Add("\"jsonrpc\":\"2.0\"");
        if (r.Next(3) == 0)
            members.Add($"\"params\":{Value(r, 1)}");
        if (r.Next(5) != 0)
        {
            string value = r.Next(6) == 0 ? Value(r, 2) : Literal(r, Method(r));
            members.Insert(r.Next(members.Count + 1), $"{Literal(r, r.Next(2) == 0 ? "method" : Pick(r, KeyNames))}{Blank(r)}:{Blank(r)}{value}");
        }
        if (r.Next(3) == 0)
            members.Add($"\"params\":{Value(r, 1)}");
        string message = "{" + string.Join("," + (r.Next(4) == 0 ? " " : ""), members) + "}";
        return r.Next(6) == 0 ? "[" + message + (r.Next(2) == 0 ? "," + Message(r) : "") + "]" : message;
    }

    private static string Messages(Random r) =>
        Blank(r) + string.Join("", Enumerable.Range(0, r.Next(1, 4)).Select(_ => Message(r) + (r.Next(4) == 0 ? "" : "\n") + (r.Next(4) == 0 ? Blank(r) : "")));

    /// <summary>A method far from the start: a long params first, or many short messages.</summary>
    private static string Long(Random r)
    {
        int size = r.Next(50) == 0 ? 70_000 : r.Next(200, 6000);
        return r.Next(2) == 0
            ? "{\"id\":1,\"params\":{\"agent\":\"" + new string('a', size) + "\"}," + $"\"method\":{Literal(r, Method(r))}" + "}\n"
            : string.Concat(Enumerable.Repeat("{\"id\":1,\"method\":\"ping\"}\n", size / 25)) + Message(r) + "\n";
    }

    private static byte[] Proxy(Random r)
    {
        byte[] name = Encoding.ASCII.GetBytes(r.Next(2) == 0 ? "pool.example.org" : new string('p', r.Next(1, 90)));
        byte[] handshake = r.Next(5) switch
        {
            0 => [5, 1, 0, 5, 1, 0, 3, (byte)name.Length, .. name, 0x0D, 0x05],
            1 => [5, 2, 0, 2, 1, 4, .. "user"u8, 4, .. "pass"u8, 5, 1, 0, 1, 10, 0, 0, 7, 0x0D, 0x05],
            2 => [5, 1, 0, 5, 1, 0, 4, .. new byte[15], 1, 0x0D, 0x05],
            3 => r.Next(2) == 0 ? [4, 1, 0x0D, 0x05, 10, 0, 0, 7, .. "id"u8, 0] : [4, 1, 0x0D, 0x05, 0, 0, 0, 1, 0, .. name, 0],
            _ => Encoding.ASCII.GetBytes(Http(r) + $"CONNECT {Encoding.ASCII.GetString(name)}:3333 HTTP/1.1\r\nHost: x\r\n{(r.Next(2) == 0 ? "\r\n" : "\n")}"),
        };
        return r.Next(5) == 0 ? [.. handshake, .. Proxy(r)] : handshake;
    }

    /// <summary>What may come before a CONNECT: nothing, empty lines, or other requests (origin- or absolute-form) each after its empty lines.</summary>
    private static string Http(Random r) => string.Concat(Enumerable.Range(0, r.Next(3) == 0 ? r.Next(1, 4) : 0).Select(_ => (r.Next(2) == 0 ? "" : r.Next(2) == 0 ? "\r\n" : "\n\n") + r.Next(4) switch
    {
        0 => "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        1 => $"GET http://{(r.Next(2) == 0 ? "pool.example.org:3333" : new string('h', r.Next(1, 90)))}/x HTTP/1.1\r\n\r\n",
        2 => "HEAD HTTP://127.0.0.2?q HTTP/1.0\n\n",
        3 => Body(r),
        _ => "OPTIONS * HTTP/1.1\r\nX-Y: z\r\n\r\n",
    })) + (r.Next(4) == 0 ? "\r\n" : "");

    /// <summary>A request with a body: its Content-Length right, or off by a little, or chunked (not followed).</summary>
    private static string Body(Random r)
    {
        string body = r.Next(2) == 0 ? "CONNECT x:1 HTTP/1.1\r\n\r\n" : new string('b', r.Next(0, 300));
        return r.Next(6) switch
        {
            0 => $"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body.Length:x}\r\n{body}\r\n0\r\n\r\n",
            1 => $"PUT http://pool.example.org:3333/ HTTP/1.1\r\nContent-Length: {body.Length + r.Next(-2, 3)}\r\n\r\n{body}",
            _ => $"POST /u HTTP/1.1\r\n{(r.Next(2) == 0 ? "Content-Length" : "content-LENGTH")}:{new string(' ', r.Next(3))}{body.Length}\r\nX: y\r\n\r\n{body}",
        };
    }

    private static byte[] Benign(Random r) => r.Next(5) switch
    {
        4 => Encoding.UTF8.GetBytes(Http(r) + "GET http://deb.debian.org/debian/ HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n" + (r.Next(2) == 0 ? Message(r) : "")),
        0 => Encoding.UTF8.GetBytes("POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + Message(r)),
        1 => Encoding.UTF8.GetBytes("Content-Length: 40\r\n\r\n" + Message(r)),
        2 => Records.TlsClientHello("pool.example.org"),
        _ => Encoding.UTF8.GetBytes("SSH-2.0-OpenSSH_9.6\r\n"),
    };

    private static byte[] Mutate(byte[] s, Random r)
    {
        var b = new List<byte>(s);
        int at = r.Next(b.Count + 1);
        switch (r.Next(6))
        {
            case 0:
                b.Insert(at, (byte)JsonAlphabet[r.Next(JsonAlphabet.Length)]);
                break;
            case 1 when b.Count > 1 && at < b.Count:
                b.RemoveAt(at);
                break;
            case 2 when at < b.Count:
                b[at] = (byte)r.Next(256);
                break;
            case 3:
                b.InsertRange(at, Encoding.ASCII.GetBytes(r.Next(2) == 0 ? $"\\u00{r.Next(256):x2}" : "\\"));
                break;
            case 4 when b.Count > 2:
                int from = r.Next(b.Count - 1);
                b.InsertRange(at, b.GetRange(from, Math.Min(r.Next(1, 12), b.Count - from)));
                break;
            default:
                if (at < b.Count)
                    b.RemoveRange(at, b.Count - at); // cut short
                break;
        }
        return [.. b];
    }
}
