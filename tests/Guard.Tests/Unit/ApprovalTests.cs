using System.Text.Json;
using Guard.Cli;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Output;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>The approval gate's parts that need no kernel: ids, the decision line, the policy key, the list's lines, expiry, the events, the CLI's messages.</summary>
public sealed class ApprovalTests
{
    [Fact]
    public void IdsAreRandomTwelveCharactersOfLowerCaseBase32()
    {
        var ids = Enumerable.Range(0, 10_000).Select(_ => ApprovalRequest.NewId()).ToList();
        Assert.All(ids, id => Assert.Matches("^[a-z2-7]{12}$", id));
        Assert.All(ids, id => Assert.True(ApprovalRequest.IsId(id)));
        // 60 random bits: 10,000 draws never meet (the chance is about 4e-11), so no id follows from another.
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        // Each place takes every character: not a counter, not a clock.
        for (int place = 0; place < ApprovalRequest.IdLength; place++)
            Assert.Equal(32, ids.Select(id => id[place]).Distinct().Count());
    }

    [Theory]
    [InlineData("")]
    [InlineData("aaaaaaaaaaa")]
    [InlineData("aaaaaaaaaaaaa")]
    [InlineData("AAAAAAAAAAAA")]
    [InlineData("aaaaaaaaaaa0")]
    [InlineData("aaaaaaaaaaa1")]
    [InlineData("../../etc/pw")]
    [InlineData("aaaaaa/aaaaa")]
    [InlineData("aaaaaaaaaaa\n")]
    public void WhatIsNoIdIsRefusedAndSoNeverAPath(string text) => Assert.False(ApprovalRequest.IsId(text));

    [Theory]
    [InlineData(true, 3600L, 1000u, "approve 3600 1000\n")]
    [InlineData(true, 0L, null, "approve 0 -\n")]
    [InlineData(false, 99L, 0u, "deny 0 0\n")]
    public void ADecisionLineReadsBackAsWritten(bool approve, long seconds, uint? sudo, string line)
    {
        Assert.Equal(line, ApprovalChannel.LineOf(approve, seconds, sudo));
        ApprovalDecision d = ApprovalChannel.ParseLine("abcdefghijkm", line, 0)!;
        Assert.Equal(new ApprovalDecision("abcdefghijkm", approve, approve ? seconds : 0, 0, sudo), d);
    }

    [Theory]
    [InlineData("approve")]
    [InlineData("approve 1")]
    [InlineData("approve -1 -")]
    [InlineData("approve 1.5 -")]
    [InlineData("approve 8640001 -")]
    [InlineData("allow 1 -")]
    [InlineData("approve 1 root")]
    [InlineData("approve 1 - more")]
    [InlineData("approve 99999999999999999999 -")]
    public void AMalformedDecisionIsNone(string line) => Assert.Null(ApprovalChannel.ParseLine("abcdefghijkm", line, 0));

    private static List<PolicyError> Errors(string text)
    {
        var errors = new List<PolicyError>();
        PolicyParser.Parse(text, "p.toml", PolicyLoader.BuiltIn, errors);
        return errors;
    }

    [Fact]
    public void AskExpiryIsFifteenMinutesUnlessTheSectionSaysOtherwise()
    {
        var errors = new List<PolicyError>();
        Policy p = PolicyParser.Parse("[[confine]]\njobs = [\"*\"]\nmode = \"ask\"\negress.allow = [\"10.0.0.1\"]\n[[confine]]\njobs = [\"slurm:*\"]\nmode = \"ask\"\nask_expiry_seconds = 60\negress.allow = [\"10.0.0.1\"]\n", "p.toml", PolicyLoader.BuiltIn, errors);
        Assert.Empty(errors);
        Assert.Equal(900, p.Confine[0].AskExpirySeconds);
        Assert.Equal(60, p.Confine[1].AskExpirySeconds);
        // Written back as read: policy show round-trips it.
        Assert.Contains("ask_expiry_seconds = 60", PolicyWriter.Write(p), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mode = \"ask\"\nask_expiry_seconds = 0", "p.toml:4:confine.ask_expiry_seconds: expected whole seconds from 1 to 86400 (900: 15 minutes)")]
    [InlineData("mode = \"ask\"\nask_expiry_seconds = 86401", "p.toml:4:confine.ask_expiry_seconds: expected whole seconds from 1 to 86400 (900: 15 minutes)")]
    [InlineData("mode = \"ask\"\nask_expiry_seconds = \"15m\"", "p.toml:4:confine.ask_expiry_seconds: expected whole seconds from 1 to 86400 (900: 15 minutes)")]
    [InlineData("ask_expiry_seconds = 60", "p.toml:3:confine.ask_expiry_seconds: is only for mode = \"ask\": nothing waits for an answer in this section")]
    [InlineData("mode = \"audit\"\nask_expiry_seconds = 60", "p.toml:4:confine.ask_expiry_seconds: is only for mode = \"ask\": nothing waits for an answer in this section")]
    public void ABadAskExpiryIsReportedWithFileLineAndKey(string lines, string error) =>
        Assert.Equal(error, Assert.Single(Errors($"[[confine]]\njobs = [\"*\"]\n{lines}\negress.allow = [\"10.0.0.1\"]\n")).ToString());

    private static ApprovalRequest Request(ApprovalKind kind = ApprovalKind.Destination) => new()
    {
        Id = "k3xq7mzp2a4d",
        Kind = kind,
        JobSet = 1030,
        JobId = "slurm:4242",
        Section = "ask \"gpu\"",
        Pid = 4243,
        ProcessName = "py\nthon\u001b[31m",
        ProcessExecutable = "/usr/bin/python3",
        Lineage = ["4242 bash", "1 systemd"],
        Address = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 5],
        Port = 443,
        Protocol = 6,
        ProgramPath = "/tmp/a b\"c",
        ProgramFile = new FileId(8, 1234),
        Sha256 = new string('a', 64),
        Count = 3,
        RaisedNs = 1_000,
        ExpiresNs = 901_000,
        RaisedUnixMs = 1_700_000_000_000,
        ExpiresUnixMs = 1_700_000_900_000,
    };

    [Fact]
    public void AListLineReadsBackWithWhatCameFromTheJobKeptAsText()
    {
        ApprovalListing destination = ApprovalListing.Parse(Request().ToJson())!;
        Assert.Equal(("k3xq7mzp2a4d", "pending", "slurm:4242", "ask \"gpu\"", 4243, "py\nthon\u001b[31m", "tcp 10.0.0.5:443", 3UL),
            (destination.Id, destination.State, destination.Job, destination.Section, destination.Pid, destination.ProcessName, destination.What, destination.Count));
        Assert.DoesNotContain('\n', Request().ToJson());
        ApprovalListing program = ApprovalListing.Parse(Request(ApprovalKind.Program).ToJson())!;
        Assert.Equal("exec /tmp/a b\"c sha256:aaaaaaaaaaaa", program.What);
        ApprovalRequest v6 = Request();
        JsonElement json = JsonDocument.Parse(new ApprovalRequest { Id = v6.Id, Kind = v6.Kind, JobSet = 1, Section = "s", Address = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], Port = 53, Protocol = 17 }.ToJson()).RootElement;
        Assert.Equal("2001:db8::1", json.GetProperty("destination").GetProperty("ip").GetString());
        Assert.Equal("udp", json.GetProperty("destination").GetProperty("transport").GetString());
        Assert.Null(ApprovalListing.Parse("{\"id\": 3}"));
        Assert.Null(ApprovalListing.Parse("not json"));
    }

    [Fact]
    public void ARequestExpiresAtItsTimeAndAnApprovalEndsAtItsOwnOrWithTheJob()
    {
        ApprovalRequest r = Request();
        Assert.False(r.ExpiredAt(900_999));
        Assert.True(r.ExpiredAt(901_000));
        r.State = ApprovalState.Approved;
        Assert.False(r.ExpiredAt(2_000_000)); // approved: no longer waits
        r.AllowedUntilNs = 5_000_000;
        Assert.False(r.AllowEndedAt(4_999_999));
        Assert.True(r.AllowEndedAt(5_000_000));
        r.AllowedUntilNs = 0; // for the job's life: only the job's end ends it
        Assert.False(r.AllowEndedAt(long.MaxValue));
    }

    [Fact]
    public void RetriesAreOneRequestByJobAndDestinationOrJobAndFile()
    {
        ApprovalRequest r = Request();
        Assert.Equal(r.Key, ApprovalRequest.KeyOf(ApprovalKind.Destination, 1030, [.. r.Address], 443, 6, null));
        Assert.NotEqual(r.Key, ApprovalRequest.KeyOf(ApprovalKind.Destination, 1031, r.Address, 443, 6, null));
        Assert.NotEqual(r.Key, ApprovalRequest.KeyOf(ApprovalKind.Destination, 1030, r.Address, 443, 17, null));
        ApprovalRequest p = Request(ApprovalKind.Program);
        Assert.Equal(p.Key, ApprovalRequest.KeyOf(ApprovalKind.Program, 1030, [], 0, 0, new FileId(8, 1234)));
        Assert.NotEqual(p.Key, ApprovalRequest.KeyOf(ApprovalKind.Program, 1030, [], 0, 0, new FileId(8, 1235)));
    }

    private static JsonElement Ecs(SensorEvent e)
    {
        var w = new JsonLineWriter();
        new EcsEncoder(RunInfo.ForThisHost("test"), new ArgumentRedactor()).Encode(e, w);
        return JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(w.Written)).RootElement;
    }

    [Fact]
    public void ARequestIsADeniedEventNamingItsIdAndADecisionAnActionWithWhoMadeIt()
    {
        JsonElement raised = Ecs(new ProcessDenialEvent { What = "exec", Section = "s", Mode = "ask", Enforced = true, Killed = true, Path = "/tmp/x", ApprovalId = "k3xq7mzp2a4d", ApprovalExpiresUnixMs = 1_700_000_900_000 });
        Assert.Equal("confine-ask", raised.GetProperty("event").GetProperty("action").GetString());
        Assert.Equal("denied", raised.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("process", raised.GetProperty("event").GetProperty("category")[0].GetString());
        Assert.Equal("k3xq7mzp2a4d", raised.GetProperty("guard").GetProperty("approval").GetProperty("id").GetString());
        Assert.Equal("pending", raised.GetProperty("guard").GetProperty("approval").GetProperty("state").GetString());
        Assert.Equal("2023-11-14T22:28:20.0000000+00:00", raised.GetProperty("guard").GetProperty("approval").GetProperty("expires").GetString());
        // Without a request (a plain denial) the action stays confine-exec.
        Assert.Equal("confine-exec", Ecs(new ProcessDenialEvent { What = "exec", Section = "s", Enforced = true }).GetProperty("event").GetProperty("action").GetString());

        JsonElement decided = Ecs(new ActionEvent
        {
            Action = "approve",
            Succeeded = true,
            Message = "approved",
            OrderedByUid = 1000,
            Approval = new ApprovalFacts("k3xq7mzp2a4d", "destination", "slurm:1", "s", "tcp 10.0.0.5:443", null, "approved", 0, 0, 1000),
        });
        Assert.Equal("configuration", decided.GetProperty("event").GetProperty("category")[0].GetString());
        Assert.Equal("change", decided.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("1000", decided.GetProperty("user").GetProperty("id").GetString());
        JsonElement approval = decided.GetProperty("guard").GetProperty("approval");
        Assert.Equal("approved", approval.GetProperty("decision").GetString());
        Assert.Equal("job-end", approval.GetProperty("until").GetString());
        Assert.Equal(0, approval.GetProperty("decided_by_uid").GetInt32());
        Assert.Equal(1000, approval.GetProperty("sudo_uid").GetInt32());
    }

    [Theory]
    [InlineData(new[] { "approve", "abcdefghijkm", "--for", "soon" }, "guard: --for soon: expected a duration from 1s to 100d (90s, 30m, 1h, 2h30m)\n")]
    [InlineData(new[] { "approve", "abcdefghijkm", "--for", "101d" }, "guard: --for 101d: expected a duration from 1s to 100d (90s, 30m, 1h, 2h30m)\n")]
    [InlineData(new[] { "approve", "abcdefghijkm", "--for", "0.2s" }, "guard: --for 0.2s: expected a duration from 1s to 100d (90s, 30m, 1h, 2h30m)\n")]
    public void ABadDurationIsAUsageErrorInOneLine(string[] args, string said)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run(args, console));
        Assert.Equal(said, console.ErrorText);
        Assert.Equal("", console.Out.ToString());
    }

    [Theory]
    [InlineData("approve")]
    [InlineData("deny")]
    public void AnAnswerWithoutAnIdIsAUsageError(string command)
    {
        var console = new TestConsole();
        Assert.Equal((int)ExitCode.Usage, GuardCli.Run([command], console));
        Assert.Single(console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
