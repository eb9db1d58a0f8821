using System.Text;
using Guard.Sensor.Abi;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Who a relayed finding acts on: the relay's one client, the client whose
/// stream carried the bytes, or no one when that cannot be told. Never a
/// guess between two, never someone who has gone.
/// </summary>
public sealed class RelaySendersTests
{
    private static readonly byte[] Line = Encoding.ASCII.GetBytes("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cgminer/4.12.0\"]}\n");

    private static readonly SocketHolder Sender = new(4242, 1000, 3, "python3"u8.ToArray());

    private static LocalPeer Unix(params SocketHolder[] holders) =>
        new(true, "unix:/run/relay.sock", InboundBasis.Listener, holders.Length > 0 ? 77u : 0u, 0, holders, null);

    private static LocalPeer Tcp(ulong cookie, InboundBasis basis, params SocketHolder[] holders) =>
        new(false, $"127.0.0.1:4000 <- 127.0.0.1:{cookie}", basis, 100 + cookie, cookie, holders, null);

    private static PeerProbe Probe(params LocalPeer[] inbound) => new(7, 500, false, inbound, []);

    private static Func<ulong, CapturedHead?> Heads(params (ulong Cookie, string Bytes)[] heads) =>
        cookie => heads.Where(h => h.Cookie == cookie).Select(h => (CapturedHead?)new CapturedHead(Encoding.ASCII.GetBytes(h.Bytes), h.Bytes.Length < PayloadRecord.Capacity)).FirstOrDefault();

    [Fact]
    public void AProcessThatAcceptedNoLocalConnectionIsTheOrigin()
    {
        Assert.Equal(RelayRole.Origin, RelaySenders.Decide(Probe(), Line, Heads()).Role);
    }

    [Fact]
    public void APartialPictureWithoutInboundConnectionsActsOnNoOne()
    {
        RelayVerdict verdict = RelaySenders.Decide(new PeerProbe(7, 500, false, [], ["it holds more than 4096 sockets; the first 4096 were read"]), Line, Heads());
        Assert.Equal(RelayRole.Unknown, verdict.Role);
        Assert.Contains("4096", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AProcessThatHasExitedIsNoOneToActOn()
    {
        Assert.Equal(RelayRole.Unknown, RelaySenders.Decide(PeerProbe.Exited(7, 500), Line, Heads()).Role);
    }

    [Fact]
    public void TheOnlyClientOfAUnixRelayIsTheSenderByStructure()
    {
        RelayVerdict verdict = RelaySenders.Decide(Probe(Unix(Sender)), Line, Heads());
        Assert.Equal(RelayRole.Relay, verdict.Role);
        Assert.Equal(Sender, verdict.Sender);
        Assert.Equal("structure", verdict.Basis);
    }

    [Fact]
    public void AVerdictWithoutTheBytesLeavesStructureToDecide()
    {
        // A stream verdict that came after the connection's head was let go carries no bytes:
        // a client's whole head cannot clear it, so the one client is the sender, and of two no one is.
        RelayVerdict one = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.PeerConnected, Sender)), [], Heads((1, "GET / HTTP/1.1\r\n\r\n")));
        Assert.Equal((RelayRole.Relay, "structure"), (one.Role, one.Basis));
        Assert.Equal(Sender, one.Sender);
        RelayVerdict two = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.PeerConnected, Sender), Tcp(2, InboundBasis.PeerConnected, Sender with { Pid = 4243 })), [], Heads((1, "x"), (2, "y")));
        Assert.Equal(RelayRole.Unknown, two.Role);
    }

    [Fact]
    public void ASenderThatHasExitedIsNotReplacedByAnyone()
    {
        RelayVerdict verdict = RelaySenders.Decide(Probe(Unix()), Line, Heads());
        Assert.Equal(RelayRole.Unknown, verdict.Role);
        Assert.Contains("has exited", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void TheOtherEndHeldByTwoProcessesIsNoOneToActOn()
    {
        RelayVerdict verdict = RelaySenders.Decide(Probe(Unix(Sender, Sender with { Pid = 4243 })), Line, Heads());
        Assert.Equal(RelayRole.Unknown, verdict.Role);
        Assert.Contains("held by 2 processes", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void OfTwoClientsTheOneWhoseStreamCarriedTheBytesIsTheSender()
    {
        var idle = new SocketHolder(5000, 1, 3, "curl"u8.ToArray());
        PeerProbe probe = Probe(Tcp(1, InboundBasis.PeerConnected, idle), Tcp(2, InboundBasis.PeerConnected, Sender));
        RelayVerdict verdict = RelaySenders.Decide(probe, Line, Heads((1, "CONNECT 127.0.0.1:3333 HTTP/1.1\r\n\r\n"), (2, "CONNECT 127.0.0.1:3333 HTTP/1.1\r\n\r\n" + Encoding.ASCII.GetString(Line))));
        Assert.Equal(RelayRole.Relay, verdict.Role);
        Assert.Equal(Sender, verdict.Sender);
        Assert.Equal("content", verdict.Basis);
    }

    [Fact]
    public void TwoClientsWithoutTheirFirstBytesCannotBeToldApart()
    {
        var other = new SocketHolder(5000, 1, 3, "curl"u8.ToArray());
        RelayVerdict verdict = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, other), Tcp(2, InboundBasis.Listener, Sender)), Line, Heads());
        Assert.Equal(RelayRole.Unknown, verdict.Role);
        Assert.Contains("cannot be told", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AClientWhoseWholeStreamLacksTheBytesIsClearedAndTheOtherIsActedOnByStructure()
    {
        var idle = new SocketHolder(5000, 1, 3, "curl"u8.ToArray());
        RelayVerdict verdict = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, idle), Unix(Sender)), Line, Heads((1, "GET / HTTP/1.1\r\n\r\n")));
        Assert.Equal(RelayRole.Relay, verdict.Role);
        Assert.Equal(Sender, verdict.Sender);
        Assert.Equal("structure", verdict.Basis);
    }

    [Fact]
    public void AFullHeadOrALostRecordClearsNoOne()
    {
        var idle = new SocketHolder(5000, 1, 3, "curl"u8.ToArray());
        string full = new('x', PayloadRecord.Capacity);
        // A head cut at the capture's limit may hold the bytes beyond it.
        Assert.Equal(RelayRole.Unknown, RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, idle), Unix(Sender)), Line, Heads((1, full))).Role);
        // A ring that lost payload records may have lost the segment that held them.
        Assert.Equal(RelayRole.Unknown, RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, idle), Unix(Sender)), Line, Heads((1, "GET /\r\n\r\n")), headsComplete: false).Role);
    }

    [Fact]
    public void ClientsThatAllLackTheBytesLeaveTheRelayAloneToo()
    {
        // A relay that changes what it carries (TLS, ssh) or a process that made the bytes itself: no one is acted on.
        RelayVerdict verdict = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, Sender)), Line, Heads((1, "SSH-2.0-OpenSSH_9.6\r\n")));
        Assert.Equal(RelayRole.Unknown, verdict.Role);
        Assert.Contains("none of its", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AConnectionWhoseAcceptingEndIsUnsureNeedsContent()
    {
        Assert.Equal(RelayRole.Unknown, RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Unsure, Sender)), Line, Heads()).Role);
        Assert.Equal(RelayRole.Relay, RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Unsure, Sender)), Line, Heads((1, Encoding.ASCII.GetString(Line)))).Role);
    }

    [Fact]
    public void TwoClientsThatBothCarriedTheBytesCannotBeToldApart()
    {
        var other = new SocketHolder(5000, 1, 3, "python3"u8.ToArray());
        string both = Encoding.ASCII.GetString(Line);
        RelayVerdict verdict = RelaySenders.Decide(Probe(Tcp(1, InboundBasis.Listener, other), Tcp(2, InboundBasis.Listener, Sender)), Line, Heads((1, both), (2, both)));
        Assert.Equal(RelayRole.Unknown, verdict.Role);
    }

    [Fact]
    public void AUnixClientThatWroteNothingWhileGuardWatchedFedNothing()
    {
        LocalPeer silent = Unix(Sender with { Pid = 5000 }) with { Head = new CapturedHead(ReadOnlyMemory<byte>.Empty, true) };
        LocalPeer writer = Unix(Sender) with { Head = new CapturedHead(Line, true) };
        Assert.Equal(Sender, RelaySenders.Decide(Probe(silent, writer), Line, Heads(), headsComplete: false).Sender);
        // Alone, it leaves the relay's bytes to the relay: no one is acted on.
        RelayVerdict alone = RelaySenders.Decide(Probe(silent), Line, Heads());
        Assert.Equal(RelayRole.Unknown, alone.Role);
    }

    [Fact]
    public void OfTwoHoldersOfTheOtherEndTheOneTheKernelSawWriteIsTheSender()
    {
        var parent = new SocketHolder(4000, 900, 3, "bash"u8.ToArray());
        LocalPeer shared = Unix(parent, Sender) with { Head = new CapturedHead(Line, true), Writer = (Sender.Pid, Sender.StartTicks) };
        RelayVerdict verdict = RelaySenders.Decide(Probe(shared), Line, Heads());
        Assert.Equal(RelayRole.Relay, verdict.Role);
        Assert.Equal(Sender, verdict.Sender);
        // A writer that is not among them (it passed the socket on) is the sender all the same: it wrote the bytes.
        RelayVerdict passedOn = RelaySenders.Decide(Probe(shared with { Writer = (9999, 1) }), Line, Heads());
        Assert.Equal(RelayRole.Relay, passedOn.Role);
        Assert.Equal((9999, 1L), (passedOn.Sender!.Pid, passedOn.Sender.StartTicks));
    }

    [Fact]
    public void StreamHeadsKeepLoopbackStreamsOnlyAndSayWhenTheyAreWhole()
    {
        var heads = new LocalStreamHeads();
        heads.Add(Records.Payload(1, 10, "CONNECT "u8, 1, address: "127.0.0.1"));
        heads.Add(Records.Payload(1, 10, "pool:3333"u8, 2, offset: 8, address: "127.0.0.1"));
        heads.Add(Records.Payload(1, 11, "GET /"u8, 3, address: "192.0.2.7"));
        heads.Add(Records.Payload(1, 12, "late"u8, 4, offset: 20, address: "127.0.0.2"));
        CapturedHead kept = heads.Find(10)!.Value;
        Assert.Equal("CONNECT pool:3333", Encoding.ASCII.GetString(kept.Bytes.Span));
        Assert.True(kept.Whole);
        Assert.Null(heads.Find(11)); // not loopback
        Assert.False(heads.Find(12)!.Value.Whole); // a segment after a gap: a record was lost
        Assert.True(LocalStreamHeads.IsLoopback(10, System.Net.IPAddress.Parse("::ffff:127.0.0.1").GetAddressBytes()));
        Assert.True(LocalStreamHeads.IsLoopback(10, System.Net.IPAddress.IPv6Loopback.GetAddressBytes()));
        Assert.False(LocalStreamHeads.IsLoopback(10, System.Net.IPAddress.Parse("::ffff:10.0.0.1").GetAddressBytes()));
    }

    [Fact]
    public void StreamHeadsForgetTheOldestFirst()
    {
        var heads = new LocalStreamHeads();
        for (ulong cookie = 1; cookie <= LocalStreamHeads.Capacity + 1; cookie++)
            heads.Add(Records.Payload(1, cookie, "x"u8, cookie, address: "127.0.0.1"));
        Assert.Null(heads.Find(1));
        Assert.NotNull(heads.Find(2));
        Assert.NotNull(heads.Find(LocalStreamHeads.Capacity + 1));
    }
}
