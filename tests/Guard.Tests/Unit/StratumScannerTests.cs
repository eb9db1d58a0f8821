using System.Text;
using System.Text.RegularExpressions;
using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The Stratum scan as user space mirrors it (StratumScanner, the rules of
/// bpf/stream.h): Stratum in every form a pool still parses is decided, at
/// the byte that closes the method, however the bytes are split; ordinary
/// JSON-RPC, HTTP and TLS are not. StratumMirrorTests holds the kernel to
/// the same verdicts.
/// </summary>
public sealed class StratumScannerTests
{
    private static readonly IReadOnlyDictionary<string, StratumVerdict> Methods = StratumScanner.ForPolicy(PolicyLoader.BuiltIn.Indicators.StratumMethods, drop: true);

    private const string Login = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"x\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0\"}}\n";

    private static StratumScanner Scan(ReadOnlySpan<byte> stream, int pieces = 1)
    {
        var scanner = new StratumScanner(Methods);
        int size = Math.Max(1, (stream.Length + pieces - 1) / pieces);
        for (int at = 0; at < stream.Length; at += size)
            scanner.Read(stream[at..Math.Min(stream.Length, at + size)]);
        return scanner;
    }

    private static StratumScanner Scan(string stream) => Scan(Encoding.UTF8.GetBytes(stream));

    private static byte[] Bytes(params object[] parts) =>
        [.. parts.SelectMany(p => p switch { string s => Encoding.UTF8.GetBytes(s), byte[] b => b, int i => [(byte)i], _ => throw new ArgumentException("part") })];

    public static TheoryData<string> CorpusLines()
    {
        var data = new TheoryData<string>();
        foreach (string line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "stratum-first-lines.txt")).Where(l => l.StartsWith('{')))
            data.Add(line);
        return data;
    }

    [Theory]
    [MemberData(nameof(CorpusLines))]
    public void EveryDialectsFirstLineIsDecidedAtItsMethodsClosingQuote(string line)
    {
        string method = System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("method").GetString()!;
        foreach (int pieces in new[] { 1, 3, line.Length })
        {
            StratumScanner scanner = Scan(Encoding.UTF8.GetBytes(line + "\n"), pieces);
            Assert.Equal(StratumVerdict.Drop, scanner.Verdict);
            Assert.Equal(StratumScanner.Fold(method), scanner.Method);
            int close = line.IndexOf("\"" + method + "\"", StringComparison.Ordinal) + method.Length + 1;
            Assert.Equal(close, scanner.DecidedAt);
        }
    }

    [Theory]
    [InlineData("\n" + Login)]
    [InlineData(" \t\r\n\n  " + Login)]
    [InlineData("\uFEFF" + Login)] // a UTF-8 byte order mark
    [InlineData("\n\uFEFF \uFEFF" + Login)]
    [InlineData("{\"id\":1,\"method\":\"log\\u0069n\",\"params\":{}}\n")]
    [InlineData("{\"id\":1,\"method\":\"\\u006C\\u006f\\u0067\\u0069\\u006e\"}\n")]
    [InlineData("{\"id\":1,\"m\\u0065thod\":\"login\"}\n")]
    [InlineData("{\"id\":1,\"\\u006dethod\" : \"login\"}\n")]
    [InlineData("{\"id\":1,\"method\":\"mining\\/subscribe\"}{\"id\":2,\"method\":\"mining.subscribe\"}\n")]
    [InlineData("{ \"id\" : 1 ,\n \"method\"\n:\n\"login\" }\n")]
    [InlineData("[{\"id\":1,\"method\":\"login\",\"params\":{}}]\n")]
    [InlineData("[ {\"id\":1,\"method\":\"x\"} , {\"id\":2,\"method\":\"mining.subscribe\"} ]\n")]
    [InlineData("{\"id\":0,\"method\":\"hello\"}\n{\"id\":1,\"method\":\"login\"}\n")] // a harmless message first
    [InlineData("{}\n[]\n{\"method\":\"mining.authorize\"}\n")]
    [InlineData("{\"params\":{\"method\":\"x\",\"a\":[1,{\"b\":\"}]\\\"\"}]},\"method\":\"eth_submitLogin\"}\n")]
    [InlineData("{\"method\":1,\"x\":\"y\",\"method\":\"getjob\"}\n")] // a second "method" key: parsers keep the last
    public void StratumAPoolStillParsesIsDecided(string stream) => Assert.Equal(StratumVerdict.Drop, Scan(stream).Verdict);

    /// <summary>
    /// Spellings real pool servers read as the method: a key in another case
    /// (Go's encoding/json, Json.NET), a method in another case or with a
    /// suffix (ckpool's cmdmatch, a case-insensitive prefix match), a NUL or
    /// other terminator after it (strcmp in a C server). Each is decided at
    /// the byte that ends the method's run of method characters, naming the
    /// method as compared.
    /// </summary>
    [Theory]
    [InlineData("{\"id\":1,\"jsonrpc\":\"2.0\",\"Method\":\"login\",\"params\":{}}\n", "\"login\"", "login")]
    [InlineData("{\"id\":1,\"METHOD\":\"login\"}\n", "\"login\"", "login")]
    [InlineData("{\"id\":1,\"mEtHoD\":\"submit\"}\n", "\"submit\"", "submit")]
    [InlineData("{\"id\":1,\"\\u004Dethod\":\"getjob\"}\n", "\"getjob\"", "getjob")]
    [InlineData("{\"id\":1,\"method\":\"MINING.SUBSCRIBE\",\"params\":[\"cgminer/4.10\"]}\n", "\"MINING.SUBSCRIBE\"", "mining.subscribe")]
    [InlineData("{\"id\":1,\"method\":\"Mining.Authorize\"}\n", "\"Mining.Authorize\"", "mining.authorize")]
    [InlineData("{\"id\":1,\"method\":\"eth_SUBMITLOGIN\"}\n", "\"eth_SUBMITLOGIN\"", "eth_submitlogin")]
    [InlineData("{\"id\":1,\"method\":\"mining.subscribe/cgminer\",\"params\":[]}\n", "\"mining.subscribe/", "mining.subscribe")]
    [InlineData("{\"id\":1,\"method\":\"mining.submit x\"}\n", "\"mining.submit ", "mining.submit")]
    [InlineData("{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\\u0000\",\"params\":{}}\n", "\"login\\u0000", "login")]
    [InlineData("{\"id\":1,\"method\":\"login\\u0000anything\"}\n", "\"login\\u0000", "login")]
    [InlineData("{\"id\":1,\"method\":\"submit\\n\"}\n", "\"submit\\n", "submit")]
    [InlineData("{\"id\":1,\"method\":\"LOG\\u0049N\\/x\"}\n", "\"LOG\\u0049N\\/", "login")]
    [InlineData("{\"id\":1,\"method\":\"keepalived\u00e9\"}\n", "\"keepalived\u00e9", "keepalived")] // a raw UTF-8 byte ends it
    public void MethodSpellingsPoolsAcceptAreDecidedWhereTheMethodEnds(string stream, string through, string method)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(stream);
        int end = Encoding.UTF8.GetByteCount(stream[..(stream.IndexOf(through, StringComparison.Ordinal) + through.Length - 1)]); // the last character's first byte
        foreach (int pieces in new[] { 1, 4, bytes.Length })
        {
            StratumScanner scanner = Scan(bytes, pieces);
            Assert.Equal(StratumVerdict.Drop, scanner.Verdict);
            Assert.Equal(method, scanner.Method);
            Assert.Equal(end, scanner.DecidedAt);
        }
    }

    /// <summary>
    /// JSON-RPC that is no mining: language servers, Ethereum and Bitcoin
    /// nodes' ordinary calls, Electrum, the Model Context Protocol, and
    /// methods that only start like a policy's with more method characters.
    /// Folding case and cutting at the first other byte makes none of them one.
    /// </summary>
    [Theory]
    [InlineData("initialize")]
    [InlineData("textDocument/didOpen")]
    [InlineData("$/cancelRequest")]
    [InlineData("window/logMessage")]
    [InlineData("tools/call")]
    [InlineData("notifications/initialized")]
    [InlineData("eth_blockNumber")]
    [InlineData("eth_getBalance")]
    [InlineData("eth_sendRawTransaction")]
    [InlineData("eth_subscribe")]
    [InlineData("net_version")]
    [InlineData("getblockchaininfo")]
    [InlineData("submitblock")]
    [InlineData("submitpackage")]
    [InlineData("server.version")]
    [InlineData("blockchain.scripthash.subscribe")]
    [InlineData("Auth.Login")]
    [InlineData("loginUser")]
    [InlineData("mining.subscribed")]
    [InlineData("getjobs")]
    [InlineData("mining_submit")]
    public void BenignJsonRpcMethodsInAnyCaseAreNoStratum(string method)
    {
        foreach (string spelling in new[] { method, method.ToUpperInvariant(), method + "\\u0000", method + "/x" })
            Assert.Equal(StratumVerdict.None, Scan("{\"jsonrpc\":\"2.0\",\"id\":1,\"Method\":\"" + spelling + "\",\"params\":[]}\n").Verdict);
    }

    [Fact]
    public void TheMethodAfterALongParamsObjectPastByte256IsDecided()
    {
        string line = "{\"id\":1,\"params\":{\"agent\":\"" + new string('a', 4000) + "\"},\"method\":\"login\"}\n";
        StratumScanner scanner = Scan(Encoding.UTF8.GetBytes(line), pieces: 5);
        Assert.Equal(StratumVerdict.Drop, scanner.Verdict);
        Assert.True(scanner.DecidedAt > 4000);
    }

    public static TheoryData<string, byte[], string> Proxied()
    {
        byte[] login = Encoding.UTF8.GetBytes(Login);
        return new TheoryData<string, byte[], string>
        {
            { "socks5 name", Bytes(5, 1, 0, 5, 1, 0, 3, 16, "pool.example.org", 0x0D, 0x05, login), "socks5 pool.example.org:3333" },
            { "socks5 password", Bytes(5, 2, 0, 2, 1, 4, "user", 4, "pass", 5, 1, 0, 1, 10, 0, 0, 7, 0x0D, 0x05, login), "socks5 10.0.0.7:3333" },
            { "socks5 ipv6", Bytes(5, 1, 0, 5, 1, 0, 4, new byte[15], 1, 0x0D, 0x05, login), "socks5 [::1]:3333" },
            { "socks4", Bytes(4, 1, 0x0D, 0x05, 10, 0, 0, 7, "user", 0, login), "socks4 10.0.0.7:3333" },
            { "socks4a", Bytes(4, 1, 0x0D, 0x05, 0, 0, 0, 1, 0, "pool.example.org", 0, login), "socks4a pool.example.org:3333" },
            { "http connect", Bytes("CONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\nProxy-Authorization: Basic eDp4\r\n\r\n", login), "http-connect pool.example.org:3333" },
            { "http connect, bare newlines", Bytes("CONNECT 10.0.0.7:3333 HTTP/1.0\n\n", login), "http-connect 10.0.0.7:3333" },
            { "socks5 through http connect", Bytes("CONNECT proxy2:1080 HTTP/1.1\r\n\r\n", 5, 1, 0, 5, 1, 0, 3, 16, "pool.example.org", 0x0D, 0x05, "\n", login), "socks5 pool.example.org:3333" },
            { "crlf before connect", Bytes("\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n", login), "http-connect pool.example.org:3333" },
            { "empty lines before connect", Bytes("\n\r\n\n\r\nCONNECT 10.0.0.7:3333 HTTP/1.1\n\n", login), "http-connect 10.0.0.7:3333" },
            { "get, then connect", Bytes("GET http://127.0.0.2/ HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n", login), "http-connect pool.example.org:3333" },
            { "origin-form requests, then connect", Bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\nHEAD /x?y HTTP/1.0\n\nOPTIONS * HTTP/1.1\r\n\r\nCONNECT [::1]:3333 HTTP/1.1\r\n\r\n", login), "http-connect [::1]:3333" },
            { "a request with a body, then connect", Bytes("POST http://a.example/ HTTP/1.1\r\nX-Content-Length: 99\r\ncontent-LENGTH:  12\r\n\r\nCONNECT x:1 GET / HTTP/1.1\r\n\r\nCONNECT pool.example.org:3333 HTTP/1.1\r\n\r\n", login), "http-connect pool.example.org:3333" },
            { "connect, then a request in the tunnel, then connect", Bytes("CONNECT proxy2:8080 HTTP/1.1\r\n\r\nGET http://x/ HTTP/1.1\r\n\r\nCONNECT pool.example.org:443 HTTP/1.1\r\n\r\n", login), "http-connect pool.example.org:443" },
        };
    }

    [Theory]
    [MemberData(nameof(Proxied))]
    public void StratumAfterAProxyHandshakeIsDecidedAndTheDestinationKept(string what, byte[] stream, string destination)
    {
        foreach (int pieces in new[] { 1, 7, stream.Length })
        {
            StratumScanner scanner = Scan(stream, pieces);
            Assert.True(scanner.Verdict == StratumVerdict.Drop, $"{what}, in {pieces} pieces: {scanner.Verdict}");
            var record = new StreamRecord { Proxy = scanner.Proxy, ProxyAddress = scanner.ProxyAddress, ProxyPort = (ushort)scanner.ProxyPort, ProxyHostLength = (byte)scanner.ProxyHost.Length };
            scanner.ProxyHost.CopyTo(record.ProxyHost);
            Assert.Equal(destination, StratumFindings.ProxyText(record));
        }
    }

    [Theory]
    [InlineData("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n{\"method\":\"GET\",\"id\":1}")]
    [InlineData("POST /rpc HTTP/1.1\r\nContent-Length: 30\r\n\r\n{\"id\":1,\"method\":\"login\"}\n")] // JSON in HTTP: a web API's login
    [InlineData("Content-Length: 52\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}")] // LSP
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"textDocument/didOpen\",\"params\":{\"method\":\"login\"}}\n")]
    [InlineData("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}\n")]
    [InlineData("{\"header\":{\"msg_type\":\"execute_request\"},\"content\":{\"code\":\"login\"},\"method\":{\"name\":\"login\"}}\n")] // Jupyter-like
    [InlineData("{\"id\":1,\"method\":\"logins\"}\n")]
    [InlineData("{\"id\":1,\"method\":\"log\\u0000in\"}\n")]
    [InlineData("{\"id\":1,\"method\":\"l\\u00f6gin\"}\n")]
    [InlineData("{\"id\":1,\"methods\":\"login\"}\n")]
    [InlineData("{\"id\":1,\"login\":\"method\"}\n")]
    [InlineData("[[{\"method\":\"login\"}]]\n")] // no batch of batches is JSON-RPC
    [InlineData("\"method\":\"login\"\n")]
    [InlineData("x{\"method\":\"login\"}\n")]
    [InlineData("{\"id\":1}\nGET / HTTP/1.1\r\n\r\n{\"method\":\"login\"}\n")]
    [InlineData("SSH-2.0-OpenSSH_9.6\r\n")]
    [InlineData("CONNECTING {\"method\":\"login\"}")]
    [InlineData("\uFEFF\uFEFFx")]
    public void OrdinaryTrafficIsNoStratum(string stream) => Assert.Equal(StratumVerdict.None, Scan(stream).Verdict);

    [Theory]
    [InlineData("GET http://pool.example.org:3333/ HTTP/1.1\r\nHost: pool.example.org:3333\r\n\r\n", "http-forward pool.example.org:3333")]
    [InlineData("\r\nPOST HTTP://10.0.0.7:8080?x HTTP/1.1\r\n\r\n", "http-forward 10.0.0.7:8080")]
    [InlineData("GET / HTTP/1.1\r\n\r\nGET http://[::1]:3333#f HTTP/1.1\n\n", "http-forward [::1]:3333")]
    [InlineData("GET http://pool.example.org HTTP/1.0\r\n\r\n", "http-forward pool.example.org")]
    public void AnAbsoluteFormTargetIsKeptAsTheDestinationAskedFor(string stream, string destination)
    {
        StratumScanner scanner = Scan(stream);
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.Equal(1, scanner.Proxies);
        Assert.Equal(StreamProxy.HttpForward, scanner.Proxy);
        var record = new StreamRecord { Proxy = scanner.Proxy, ProxyAddress = scanner.ProxyAddress, ProxyHostLength = (byte)scanner.ProxyHost.Length };
        scanner.ProxyHost.CopyTo(record.ProxyHost);
        Assert.Equal(destination, StratumFindings.ProxyText(record));
        Assert.False(scanner.Finished); // the next request is still read
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n\r\n{\"id\":1,\"method\":\"login\"}\n")] // a body (or anything else) after a head is no request
    [InlineData("GET http://a/ HTTP/1.1\r\nContent-Length: 25\r\n\r\n{\"id\":1,\"method\":\"login\"}{}")] // a body skipped is not read; what follows is no request
    [InlineData("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nCONNECT p:1 HTTP/1.1\r\n\r\n")] // a chunked body is not followed
    [InlineData("get / HTTP/1.1\r\n\r\n")]
    [InlineData("GET\t/ HTTP/1.1\r\n\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    public void AnHttpStreamWithoutAConnectEndsWithoutAVerdict(string stream)
    {
        StratumScanner scanner = Scan(stream);
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.Equal(0, scanner.Proxies - (stream.Contains("http://", StringComparison.Ordinal) ? 1 : 0));
        Assert.True(scanner.Finished);
    }

    [Fact]
    public void ABodyRunningPastTheLimitLetsTheRestBe()
    {
        StratumScanner scanner = Scan(Bytes("POST /upload HTTP/1.1\r\nContent-Length: 123456789012\r\n\r\n", new string('{', StratumScanner.ScanLimit)));
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.True(scanner.Finished);
    }

    [Fact]
    public void KeepAliveRequestsUpToTheLimitLetTheRestBe()
    {
        string request = "GET /index.html HTTP/1.1\r\nHost: a.example\r\nUser-Agent: x\r\n\r\n";
        string stream = string.Concat(Enumerable.Repeat(request, StratumScanner.ScanLimit / request.Length + 1)) + "CONNECT pool:3333 HTTP/1.1\r\n\r\n" + Login;
        StratumScanner scanner = Scan(Encoding.UTF8.GetBytes(stream), pieces: 7);
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.True(scanner.Finished);
        Assert.Equal(StratumScanner.ScanLimit, scanner.Offset);
    }

    [Fact]
    public void ATlsClientHelloEndsTheScanAtItsFirstByte()
    {
        StratumScanner scanner = Scan(Records.TlsClientHello("pool.example.org"));
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.True(scanner.Finished);
        Assert.Equal(1, scanner.Offset);
    }

    [Fact]
    public void AMethodTooLongForThePolicyIsNone()
    {
        Assert.Equal(StratumVerdict.None, Scan("{\"method\":\"" + new string('m', 40) + "\"}\n").Verdict);
        Assert.Equal(StratumVerdict.None, Scan("{\"method\":\"\"}\n").Verdict);
    }

    [Fact]
    public void AMessageStillOpenAtTheLimitIsHeld()
    {
        byte[] stream = Encoding.UTF8.GetBytes("{\"id\":1,\"params\":\"" + new string('a', StratumScanner.ScanLimit) + "\",\"method\":\"login\"}\n");
        StratumScanner scanner = Scan(stream, pieces: 9);
        Assert.Equal(StratumVerdict.Hold, scanner.Verdict);
        Assert.Equal(StratumScanner.ScanLimit, scanner.DecidedAt);
        Assert.Equal(StratumScanner.ScanLimit, scanner.Offset);
    }

    [Fact]
    public void BlankUpToTheLimitIsHeldAndAHandshakeToo()
    {
        Assert.Equal(StratumVerdict.Hold, Scan(new string('\n', StratumScanner.ScanLimit + 10)).Verdict);
        Assert.Equal(StratumVerdict.Hold, Scan(Bytes("CONNECT pool:3333 HTTP/1.1\r\n", new string('x', StratumScanner.ScanLimit))).Verdict);
    }

    [Fact]
    public void WholeMessagesUpToTheLimitLetTheRestBe()
    {
        string message = "{\"id\":1,\"method\":\"ping\"}".PadRight(31) + "\n"; // 32 bytes: the limit falls between two
        string stream = string.Concat(Enumerable.Repeat(message, StratumScanner.ScanLimit / message.Length)) + "{\"id\":1,\"method\":\"login\"}\n";
        StratumScanner scanner = Scan(stream);
        Assert.Equal(StratumVerdict.None, scanner.Verdict);
        Assert.True(scanner.Finished);
        Assert.Equal(StratumScanner.ScanLimit, scanner.Offset);
    }

    [Fact]
    public void AnAuditPolicyAlertsAndAnEmptyOneDecidesNothing()
    {
        var audit = new StratumScanner(StratumScanner.ForPolicy(["login"], drop: false));
        Assert.Equal(StratumVerdict.Alert, audit.Read(Encoding.UTF8.GetBytes(Login)));
        var none = new StratumScanner(StratumScanner.ForPolicy([], drop: true));
        Assert.Equal(StratumVerdict.None, none.Read(Encoding.UTF8.GetBytes(Login)));
    }

    [Fact]
    public void BytesAfterTheVerdictAreNotRead()
    {
        StratumScanner scanner = Scan(Login + Login);
        long decided = scanner.DecidedAt;
        scanner.Read(Encoding.UTF8.GetBytes(Login));
        Assert.Equal(decided, scanner.DecidedAt);
        Assert.Equal(decided + 1, scanner.Offset);
    }

    [Fact]
    public void FuzzedStreamsAreJudgedAlikeHoweverTheyAreSplit()
    {
        var random = new Random(7);
        int decided = 0;
        for (int i = 0; i < 5000; i++)
        {
            byte[] stream = StratumFuzz.Stream(random);
            StratumScanner whole = Scan(stream);
            StratumScanner split = Scan(stream, pieces: random.Next(2, 9));
            var bytewise = new StratumScanner(Methods);
            foreach (byte b in stream)
                bytewise.Read([b]);
            foreach (StratumScanner other in new[] { split, bytewise })
            {
                Assert.Equal((whole.Verdict, whole.DecidedAt, whole.Method, whole.Offset, whole.Proxies), (other.Verdict, other.DecidedAt, other.Method, other.Offset, other.Proxies));
                Assert.Equal(Convert.ToHexString(whole.ProxyHost), Convert.ToHexString(other.ProxyHost));
            }
            decided += whole.Verdict == StratumVerdict.Drop ? 1 : 0;
        }
        Assert.InRange(decided, 500, 4500); // the streams reach both outcomes
    }

    [Fact]
    public void TheLimitsAreTheHeaders()
    {
        string header = File.ReadAllText(Path.Combine(RepoPaths.Bpf, "guard.h"));
        Assert.Equal(StratumScanner.ScanLimit.ToString(System.Globalization.CultureInfo.InvariantCulture), Regex.Match(header, @"#define GUARD_SCAN_LIMIT (\d+)").Groups[1].Value);
        Assert.Equal(StreamRecord.ProxyHostCapacity.ToString(System.Globalization.CultureInfo.InvariantCulture), Regex.Match(header, @"#define GUARD_PROXY_HOST_LEN (\d+)").Groups[1].Value);
        Assert.Equal(StreamRecord.Hold.ToString(System.Globalization.CultureInfo.InvariantCulture), Regex.Match(header, @"#define GUARD_STRATUM_HOLD (\d+)").Groups[1].Value);
    }
}
