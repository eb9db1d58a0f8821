using System.Net;
using Guard.Cli;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ConfinePolicyTests
{
    private static Policy Parse(string text, List<PolicyError> errors) => PolicyParser.Parse(text, "p.toml", PolicyLoader.BuiltIn, errors);

    private static Policy Valid(string text)
    {
        var errors = new List<PolicyError>();
        Policy p = Parse(text, errors);
        Assert.Empty(errors);
        return p;
    }

    /// <summary>The one error a section gives, as file:line:key: reason.</summary>
    private static string OneError(string text)
    {
        var errors = new List<PolicyError>();
        Parse(text, errors);
        return Assert.Single(errors).ToString();
    }

    [Fact]
    public void AFullSectionReadsEveryPart()
    {
        Policy p = Valid("""
            [[confine]]
            name = "slurm-gpu"
            jobs = ["slurm:*", "k8s-pod:ab*"]
            launchers = ["torchrun", "/opt/bin/deepspeed"]
            users = ["alice", "1001"]
            groups = ["ml"]
            mode = "ask"
            resolvers = ["127.0.0.53", "fd00::53"]
            [confine.egress]
            allow = ["10.0.0.0/8", "tcp://10.1.2.3:443", "udp://[2001:db8::/32]:4000-4100", "huggingface.co:443", "*.S3.amazonaws.com", "fd00::/8"]
            [confine.exec]
            deny = ["shells", "downloaders", "world-writable", "memfd", "/opt/tools/*"]
            allow = ["/usr/bin/python3*", "sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"]
            [confine.gpu]
            devices = [0, 1]

            [[confine]]
            jobs = ["*"]
            mode = "audit"
            egress.allow = ["192.168.1.7:1000-2000"]
            """);
        Assert.Equal(2, p.Confine.Count);
        ConfineSection s = p.Confine[0];
        Assert.Equal("slurm-gpu", s.Name);
        Assert.Equal("p.toml:1", s.Source);
        Assert.Equal(ConfineMode.Ask, s.Mode);
        Assert.Equal(["slurm:*", "k8s-pod:ab*"], s.Select.Jobs);
        Assert.Equal(["torchrun", "/opt/bin/deepspeed"], s.Select.Launchers);
        Assert.Equal([IPAddress.Parse("127.0.0.53"), IPAddress.Parse("fd00::53")], s.Resolvers);
        ConfineEgress egress = s.Egress!;
        Assert.Equal(new EgressAddress(IPAddress.Parse("10.0.0.0"), 8, PortRange.All, ConfineProtocol.Any, "10.0.0.0/8"), egress.Addresses[0]);
        Assert.Equal((ConfineProtocol.Tcp, 32, new PortRange(443, 443)), (egress.Addresses[1].Protocol, egress.Addresses[1].PrefixLength, egress.Addresses[1].Ports));
        Assert.Equal((ConfineProtocol.Udp, IPAddress.Parse("2001:db8::"), 32, new PortRange(4000, 4100)),
            (egress.Addresses[2].Protocol, egress.Addresses[2].Network, egress.Addresses[2].PrefixLength, egress.Addresses[2].Ports));
        Assert.Equal((IPAddress.Parse("fd00::"), 8), (egress.Addresses[3].Network, egress.Addresses[3].PrefixLength));
        Assert.Equal(new EgressName("huggingface.co", false, new PortRange(443, 443), ConfineProtocol.Any, "huggingface.co:443"), egress.Names[0]);
        Assert.True(egress.Names[1].Suffix);
        Assert.True(egress.Names[1].Matches("bucket.s3.amazonaws.com"));
        Assert.False(egress.Names[1].Matches("s3.amazonaws.com"));
        Assert.False(egress.Names[1].Matches("evils3.amazonaws.com"));
        Assert.Equal([ExecClass.Shells, ExecClass.Downloaders, ExecClass.WorldWritable, ExecClass.Memfd], s.Exec!.Deny.Select(r => r.Class).OfType<ExecClass>());
        Assert.Equal("/opt/tools/*", s.Exec.Deny[4].PathGlob);
        Assert.Equal("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", s.Exec.Allow[1].Sha256);
        Assert.Equal([0, 1], s.Gpu!.Devices);
        Assert.Equal("confine#2", p.Confine[1].Name);
        Assert.Equal(ConfineMode.Audit, p.Confine[1].Mode);
        Assert.Equal(new PortRange(1000, 2000), p.Confine[1].Egress!.Addresses[0].Ports);
    }

    [Fact]
    public void APrefixIsKeptAsItsNetwork() =>
        Assert.Equal(IPAddress.Parse("10.1.0.0"), Valid("[[confine]]\njobs = [\"*\"]\negress.allow = [\"10.1.2.3/16\"]\n").Confine[0].Egress!.Addresses[0].Network);

    [Fact]
    public void WhatIsWrittenReadsBackTheSame()
    {
        Policy p = Valid("""
            [[confine]]
            name = "a"
            jobs = ["slurm:*"]
            resolvers = ["10.0.0.2"]
            egress.allow = ["tcp://10.0.0.0/8:443", "pypi.org", "*.s3.amazonaws.com:443"]
            exec.deny = ["compilers"]
            gpu.devices = []
            """);
        Policy again = Valid(PolicyWriter.Write(p));
        Assert.Equal(p.Confine[0] with { Source = "" }, again.Confine[0] with { Source = "" }, new SectionComparer());
    }

    private sealed class SectionComparer : IEqualityComparer<ConfineSection>
    {
        public bool Equals(ConfineSection? a, ConfineSection? b) =>
            a is not null && b is not null && a.Name == b.Name && a.Mode == b.Mode && a.Select.Jobs.SequenceEqual(b.Select.Jobs)
            && a.Resolvers.SequenceEqual(b.Resolvers) && a.Egress!.Addresses.SequenceEqual(b.Egress!.Addresses) && a.Egress.Names.SequenceEqual(b.Egress.Names)
            && a.Exec!.Deny.SequenceEqual(b.Exec!.Deny) && a.Gpu!.Devices.SequenceEqual(b.Gpu!.Devices);

        public int GetHashCode(ConfineSection s) => s.Name.GetHashCode(StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("bogus = 1", "p.toml:3:confine.bogus: unknown key in [[confine]] (known: name, jobs, launchers, users, groups, mode, ask_expiry_seconds, resolvers, gpu; parts: egress, exec, gpu)")]
    [InlineData("egress.bogus = []", "p.toml:3:confine.egress.bogus: unknown key in [confine.egress] (known: allow)")]
    [InlineData("exec.alow = [\"/bin/sh\"]", "p.toml:3:confine.exec.alow: unknown key in [confine.exec] (known: allow, deny)")]
    [InlineData("gpu.device = [0]", "p.toml:3:confine.gpu.device: unknown key in [confine.gpu] (known: devices)")]
    [InlineData("exec.deny = []", "p.toml:3:confine.exec.deny: is empty: it denies nothing (give a class, a path or glob, or sha256:HEX; or leave exec out)")]
    [InlineData("resolvers = [\"010.0.0.2\"]", "p.toml:3:confine.resolvers: \"010.0.0.2\": is not an IPv4 address as written: four decimal numbers 0-255 without leading zeros (010 reads as octal 8)")]
    [InlineData("mode = \"block\"", "p.toml:3:confine.mode: \"block\" is not a mode (enforce, audit, ask)")]
    [InlineData("mode = 1", "p.toml:3:confine.mode: expected a string")]
    [InlineData("name = \"\"", "p.toml:3:confine.name: \"\": must not be empty")]
    [InlineData("launchers = [\"bin/torchrun\"]", "p.toml:3:confine.launchers: \"bin/torchrun\": must be a program's name or its absolute path")]
    [InlineData("launchers = [\"a-very-long-launcher\"]", "p.toml:3:confine.launchers: \"a-very-long-launcher\": a program's name is at most 15 bytes as the kernel keeps it (comm): give its absolute path")]
    [InlineData("users = [\"al ice\"]", "p.toml:3:confine.users: \"al ice\": must be a user name, or a number")]
    [InlineData("groups = \"ml\"", "p.toml:3:confine.groups: expected a list of strings")]
    [InlineData("resolvers = [\"dns.google\"]", "p.toml:3:confine.resolvers: \"dns.google\": must be a resolver's IPv4 or IPv6 address")]
    [InlineData("resolvers = [\"::ffff:10.0.0.2\"]", "p.toml:3:confine.resolvers: \"::ffff:10.0.0.2\": is an IPv4-mapped IPv6 address: write it as IPv4")]
    [InlineData("egress.allow = [\"sctp://10.0.0.1\"]", "p.toml:3:confine.egress.allow: \"sctp://10.0.0.1\": \"sctp\" is not a protocol (tcp://, udp://, or none for both)")]
    [InlineData("egress.allow = [\"10.0.0.0/33\"]", "p.toml:3:confine.egress.allow: \"10.0.0.0/33\": has a prefix that is not 0-32")]
    [InlineData("egress.allow = [\"[fd00::/129]:443\"]", "p.toml:3:confine.egress.allow: \"[fd00::/129]:443\": has a prefix that is not 0-128")]
    [InlineData("egress.allow = [\"10.0.0.1:0\"]", "p.toml:3:confine.egress.allow: \"10.0.0.1:0\": has a port that is not 1-65535, or a range LOW-HIGH with LOW <= HIGH")]
    [InlineData("egress.allow = [\"10.0.0.1:70000\"]", "p.toml:3:confine.egress.allow: \"10.0.0.1:70000\": has a port that is not 1-65535, or a range LOW-HIGH with LOW <= HIGH")]
    [InlineData("egress.allow = [\"10.0.0.1:500-400\"]", "p.toml:3:confine.egress.allow: \"10.0.0.1:500-400\": has a port that is not 1-65535, or a range LOW-HIGH with LOW <= HIGH")]
    [InlineData("egress.allow = [\"[10.0.0.1]:80\"]", "p.toml:3:confine.egress.allow: \"[10.0.0.1]:80\": has brackets around something that is not an IPv6 address")]
    [InlineData("egress.allow = [\"[fd00::1\"]", "p.toml:3:confine.egress.allow: \"[fd00::1\": has a '[' with no ']'")]
    [InlineData("egress.allow = [\"[fd00::1]443\"]", "p.toml:3:confine.egress.allow: \"[fd00::1]443\": must be [IPV6[/PREFIX]]:PORT or :LOW-HIGH after the brackets")]
    [InlineData("egress.allow = [\"bad_name.example\"]", "p.toml:3:confine.egress.allow: \"bad_name.example\": must be an address, a DNS name (letters, digits, '-', labels of 1-63) or *.SUFFIX")]
    [InlineData("egress.allow = [\"host.example/24\"]", "p.toml:3:confine.egress.allow: \"host.example/24\": has a prefix on something that is not an address")]
    [InlineData("egress.allow = [\"::ffff:10.0.0.1\"]", "p.toml:3:confine.egress.allow: \"::ffff:10.0.0.1\": is an IPv4-mapped IPv6 address: write it as IPv4")]
    [InlineData("egress.allow = [\"2001:db8::1:443\"]", "p.toml:3:confine.egress.allow: \"2001:db8::1:443\": is the IPv6 address 2001:db8::1:443, or 2001:db8::1 port 443: write [2001:db8::1]:443 for the port, or [2001:db8::1:443] (or 2001:db8::1:443/128) for the address")]
    [InlineData("egress.allow = [\"udp://fe80::1:53\"]", "p.toml:3:confine.egress.allow: \"udp://fe80::1:53\": is the IPv6 address fe80::1:53, or fe80::1 port 53: write [fe80::1]:53 for the port, or [fe80::1:53] (or fe80::1:53/128) for the address")]
    [InlineData("egress.allow = [\"2001:db8::1:8000-8100\"]", "p.toml:3:confine.egress.allow: \"2001:db8::1:8000-8100\": has ports after an IPv6 address without brackets: write [2001:db8::1]:8000-8100")]
    [InlineData("egress.allow = [\"fd00::/8:443\"]", "p.toml:3:confine.egress.allow: \"fd00::/8:443\": has a port after an IPv6 prefix: write [fd00::/8]:443")]
    [InlineData("egress.allow = [\"fe80::1%eth0\"]", "p.toml:3:confine.egress.allow: \"fe80::1%eth0\": has a zone (%...): give the address alone, the kernel matches no zone")]
    [InlineData("egress.allow = [\"443\"]", "p.toml:3:confine.egress.allow: \"443\": is a port alone, which names no host: write 0.0.0.0/0:443 and [::/0]:443 for every address")]
    [InlineData("egress.allow = [\"8000-8100\"]", "p.toml:3:confine.egress.allow: \"8000-8100\": is a port alone, which names no host: write 0.0.0.0/0:8000-8100 and [::/0]:8000-8100 for every address")]
    [InlineData("egress.allow = [\"10.0.0:443\"]", "p.toml:3:confine.egress.allow: \"10.0.0:443\": is neither an address (IPv4 is four numbers: 10.0.0.1) nor a DNS name (none ends in a number)")]
    [InlineData("egress.allow = [\"010.0.0.1\"]", "p.toml:3:confine.egress.allow: \"010.0.0.1\": is not an IPv4 address as written: four decimal numbers 0-255 without leading zeros (010 reads as octal 8)")]
    [InlineData("egress.allow = [\"0x0a.0.0.1/8\"]", "p.toml:3:confine.egress.allow: \"0x0a.0.0.1/8\": is not an IPv4 address as written: four decimal numbers 0-255 without leading zeros (010 reads as octal 8)")]
    [InlineData("egress.allow = [\"tcp://\"]", "p.toml:3:confine.egress.allow: \"tcp://\": names no address or host")]
    [InlineData("egress.allow = [\"pypi.org:0\"]", "p.toml:3:confine.egress.allow: \"pypi.org:0\": has a port that is not 1-65535, or a range LOW-HIGH with LOW <= HIGH")]
    [InlineData("egress.allow = [\":443\"]", "p.toml:3:confine.egress.allow: \":443\": names no address or host")]
    [InlineData("egress.allow = [3]", "p.toml:3:confine.egress.allow: expected a list of strings, but 3 is not one (a string is quoted: \"...\")")]
    [InlineData("egress.allow = [[\n  \"10.0.0.1\"\n], \"10.0.0.2\"]", "p.toml:3:confine.egress.allow: expected a list of strings, but [ \"10.0.0.1\" ] is not one (a string is quoted: \"...\")")]
    [InlineData("egress.allow = [3, 4]", "p.toml:3:confine.egress.allow: expected a list of strings, but 3 is not one (a string is quoted: \"...\")")]
    [InlineData("exec.deny = [\"bin/sh\"]", "p.toml:3:confine.exec.deny: \"bin/sh\": must be an absolute path or glob, sha256:HEX, or a class (shells, package-managers, compilers, downloaders, interpreters, world-writable, memfd)")]
    [InlineData("exec.deny = [\"sha256:abc\"]", "p.toml:3:confine.exec.deny: \"sha256:abc\": must be sha256: and 64 hex digits")]
    [InlineData("gpu.devices = [\"x\"]", "p.toml:3:confine.gpu.devices: \"x\": must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"")]
    [InlineData("gpu.devices = 0", "p.toml:3:confine.gpu.devices: expected a list of GPU minors ([0, 2]: /dev/nvidia0 and /dev/nvidia2), or \"none\"")]
    [InlineData("gpu = [\"x\"]", "p.toml:3:confine.gpu: \"x\": must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"")]
    [InlineData("gpu = [\"254\"]", "p.toml:3:confine.gpu: \"254\": must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"")]
    [InlineData("gpu = [254, 0]", "p.toml:3:confine.gpu: 254: must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"")]
    [InlineData("gpu = [\"none\", \"1\"]", "p.toml:3:confine.gpu: \"none\" with GPUs beside it: give one or the other")]
    [InlineData("gpu = [true, false]", "p.toml:3:confine.gpu: expected GPU minors (0-253: /dev/nvidia0 is 0) or \"none\"")]
    [InlineData("gpu = 1", "p.toml:3:confine.gpu: expected a list of GPU minors ([0, 2]: /dev/nvidia0 and /dev/nvidia2), or \"none\"")]
    public void EachBadKeyIsReportedWithFileLineAndKey(string line, string error)
    {
        // A valid section around the one bad key: only that key is reported.
        string text = $"[[confine]]\njobs = [\"*\"]\n{line}\n{(line.StartsWith("egress", StringComparison.Ordinal) ? "exec.deny = [\"shells\"]" : "egress.allow = [\"10.0.0.1\"]")}\n";
        Assert.Equal(error, OneError(text));
    }

    [Theory]
    [InlineData("jobs = [\"slurm\"]", "\"slurm\": must be \"*\" or KIND:ID with a glob for the id, KIND one of slurm, k8s-pod, container, systemd, tree (slurm:*, k8s-pod:*)")]
    [InlineData("jobs = [\"pbs:*\"]", "\"pbs:*\": must be \"*\" or KIND:ID with a glob for the id, KIND one of slurm, k8s-pod, container, systemd, tree (slurm:*, k8s-pod:*)")]
    [InlineData("jobs = [\"slurm:\"]", "\"slurm:\": has no id after the kind (slurm:* for every Slurm job)")]
    public void ABadJobGlobIsReported(string line, string reason) =>
        Assert.Equal($"p.toml:2:confine.jobs: {reason}", OneError($"[[confine]]\n{line}\negress.allow = [\"10.0.0.1\"]\n"));

    [Theory]
    [InlineData("gpu = [\"0\", \"2\"]", new[] { 0, 2 })]
    [InlineData("gpu = [0, 2]", new[] { 0, 2 })]
    [InlineData("gpu.devices = [\"1\"]", new[] { 1 })]
    [InlineData("gpu = \"none\"", new int[0])]
    [InlineData("gpu = [\"none\"]", new int[0])]
    [InlineData("gpu = []", new int[0])]
    public void GpuTakesMinorsOrNone(string line, int[] minors) =>
        Assert.Equal(minors, Valid($"[[confine]]\njobs = [\"*\"]\n{line}\n").Confine[0].Gpu!.Devices);

    [Fact]
    public void ASectionThatSelectsNothingIsRefused() =>
        Assert.Equal("p.toml:1:confine: selects no job: give jobs, launchers, users or groups (jobs = [\"*\"] for every job)",
            OneError("[[confine]]\negress.allow = [\"10.0.0.1\"]\n"));

    [Fact]
    public void ASectionThatConfinesNothingIsRefused() =>
        Assert.Equal("p.toml:2:confine: confines nothing: give egress.allow, exec.allow or exec.deny, or gpu",
            OneError("mode = \"enforce\"\n[[confine]]\njobs = [\"*\"]\n"));

    [Fact]
    public void NamesWithoutResolversAreRefused() =>
        Assert.Equal("p.toml:3:confine.egress.allow: names DNS names but the section has no resolvers to read their answers from",
            OneError("[[confine]]\njobs = [\"*\"]\negress.allow = [\"pypi.org\"]\n"));

    [Fact]
    public void ResolversWithoutEgressAreRefused() =>
        Assert.Equal("p.toml:3:confine.resolvers: has no egress.allow to keep DNS open in",
            OneError("[[confine]]\njobs = [\"*\"]\nresolvers = [\"10.0.0.2\"]\nexec.deny = [\"shells\"]\n"));

    [Fact]
    public void AnExecAllowWithoutADenyIsRefused() =>
        Assert.Equal("p.toml:3:confine.exec.allow: allows out of nothing: exec.allow excepts from exec.deny, which is not given",
            OneError("[[confine]]\njobs = [\"*\"]\nexec.allow = [\"/bin/sh\"]\n"));

    [Fact]
    public void AKeySetTwiceIsRefused() =>
        Assert.Equal("p.toml:5:confine.egress.allow: set twice (first on line 3)",
            OneError("[[confine]]\njobs = [\"*\"]\negress.allow = [\"10.0.0.1\"]\n[confine.egress]\nallow = [\"10.0.0.2\"]\n"));

    [Fact]
    public void TwoSectionsWithOneNameAreRefused() =>
        Assert.Equal("p.toml:6:confine.name: \"a\" names another section too (line 1)",
            OneError("[[confine]]\nname = \"a\"\njobs = [\"*\"]\negress.allow = []\n[[confine]]\nname = \"a\"\njobs = [\"*\"]\negress.allow = []\n"));

    [Fact]
    public void APartBeforeAnySectionIsRefused() =>
        Assert.Equal("p.toml:1:confine.egress: comes before any [[confine]] section", OneError("[confine.egress]\nallow = []\n"));

    [Fact]
    public void ASingleConfineTableIsRefused() =>
        Assert.Equal("p.toml:1:[confine]: write [[confine]]: a policy may have many", OneError("[confine]\njobs = [\"*\"]\n"));

    [Fact]
    public void OtherArraysOfTablesAreStillRefused() =>
        Assert.Equal("p.toml:1:[[rules]]: arrays of tables are not part of a policy, but for [[confine]]", OneError("[[rules]]\n"));

    [Fact]
    public void EveryErrorOfAFileIsListedByPolicyCheck()
    {
        using var dir = new TempDir();
        string path = dir.File("confine.toml", "[[confine]]\njobs = [\"pbs:1\"]\nmode = \"block\"\negress.allow = [\"10.0.0.0/40\"]\n");
        var console = new TestConsole();
        int code = GuardCli.Run(["policy", "check", path], console);
        Assert.Equal(2, code);
        string[] lines = console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith($"{path}:2:confine.jobs: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"{path}:3:confine.mode: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"{path}:4:confine.egress.allow: ", StringComparison.Ordinal));
    }

    [Fact]
    public void PolicyCheckCountsTheSections()
    {
        using var dir = new TempDir();
        string path = dir.File("confine.toml", "[[confine]]\njobs = [\"slurm:*\"]\negress.allow = [\"10.0.0.0/8:443\"]\n");
        var console = new TestConsole();
        Assert.Equal(0, GuardCli.Run(["policy", "check", path], console));
        Assert.Contains("1 [[confine]] section(s)", console.Out.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("slurm:*", "slurm:778", true)]
    [InlineData("slurm:*", "k8s-pod:778", false)]
    [InlineData("k8s-pod:ab?d-*", "k8s-pod:abcd-1234", true)]
    [InlineData("*", "tree:x", true)]
    [InlineData("slurm:7*8", "slurm:7008", true)]
    [InlineData("slurm:7*8", "slurm:7009", false)]
    public void JobGlobsMatchIds(string glob, string id, bool matches) => Assert.Equal(matches, ConfineParser.GlobMatches(glob, id));

    [Fact]
    public void InterpretersIsAClassAPolicyMayName()
    {
        Policy p = Valid("[[confine]]\nname = \"t\"\njobs = [\"slurm:*\"]\nexec.deny = [\"interpreters\"]\n");
        Assert.Equal(ExecClass.Interpreters, Assert.Single(Assert.Single(p.Confine).Exec!.Deny).Class);
    }

    [Theory]
    [InlineData("::1", "::1", 128, 0, 65535)]
    [InlineData("[2001:db8::1:443]", "2001:db8::1:443", 128, 0, 65535)]
    [InlineData("2001:db8::1:443/128", "2001:db8::1:443", 128, 0, 65535)]
    [InlineData("[2001:db8::1]:443", "2001:db8::1", 128, 443, 443)]
    [InlineData("2001:db8::1:1bb", "2001:db8::1:1bb", 128, 0, 65535)]
    [InlineData("2001:db8::443", "2001:db8::443", 128, 0, 65535)]
    [InlineData("tcp://[::/0]:8000-8100", "::", 0, 8000, 8100)]
    [InlineData("0.0.0.0/0:443", "0.0.0.0", 0, 443, 443)]
    public void TheIpv6FormsThatReadOneWayAreTaken(string entry, string network, int prefix, int low, int high)
    {
        Assert.Null(ConfineParser.ParseEgress(entry, out EgressAddress? address, out _));
        Assert.Equal((IPAddress.Parse(network), prefix, new PortRange((ushort)low, (ushort)high)), (address!.Network, address.PrefixLength, address.Ports));
    }

    [Fact]
    public void AnEmptySelectorIsReportedAtItsKey() =>
        Assert.Equal("p.toml:2:confine.jobs: is empty and no other selector is given: the section selects no job (jobs = [\"*\"] for every job)",
            OneError("[[confine]]\njobs = []\negress.allow = [\"10.0.0.1\"]\n"));

    [Fact]
    public void AnEmptyEgressAllowDeniesEveryDestination() =>
        Assert.Equal((0, 0), Valid("[[confine]]\njobs = [\"*\"]\negress.allow = []\n").Confine[0].Egress is { } e ? (e.Addresses.Count, e.Names.Count) : (-1, -1));

    [Fact]
    public void AnUnknownPartIsReportedOnceAndNotAgainAsConfiningNothing() =>
        Assert.Equal("p.toml:3:[confine.egres]: unknown part of [[confine]] (known: [confine.egress], [confine.exec], [confine.gpu])",
            OneError("[[confine]]\njobs = [\"*\"]\n[confine.egres]\nallow = [\"10.0.0.1\"]\n"));

    [Fact]
    public void APartOpenedTwiceInOneSectionIsReportedOnce() =>
        Assert.Equal("p.toml:5:[confine.egress]: opened twice (first on line 3): give its keys under one [confine.egress]",
            OneError("[[confine]]\njobs = [\"*\"]\n[confine.egress]\nallow = [\"10.0.0.1\"]\n[confine.egress]\nallow = [\"10.0.0.2\"]\n"));

    [Fact]
    public void EachSectionMayHaveItsOwnParts() =>
        Assert.Equal(2, Valid("[[confine]]\njobs = [\"slurm:*\"]\n[confine.egress]\nallow = [\"10.0.0.1\"]\n[[confine]]\njobs = [\"k8s-pod:*\"]\n[confine.egress]\nallow = [\"10.0.0.2\"]\n").Confine.Count);

    [Theory]
    [InlineData("[[confine]]\njobs = [\"slurm:*\"\n", "2:confine.jobs: the list is not closed: a ']' is missing (the file ends first)")]
    [InlineData("[[confine]]\njobs = [\n  \"slurm:*\",\n  \"k8s-pod:*\"\n\n[confine.egress]\nallow = [\"10.0.0.1\"]\n", "2:confine.jobs: the list is not closed: a ']' is missing (line 6 starts something else)")]
    [InlineData("[[confine]]\njobs = [\"slurm:*\"]\nmode audit\n", "3:confine.mode: a '=' is missing after the key (key = value)")]
    [InlineData("[[confine]]\njobs = \"slurm:*\n", "2:confine.jobs: a string is not closed: its '\"' is missing before the end of the line")]
    [InlineData("[[confine\njobs = [\"a\"]\n", "1:[[confine]]: the [[...]] header is not closed: ']]' is missing")]
    [InlineData("[[confine]]\njobs = [\"a\"] x\n", "2:confine.jobs: 'x' after the value: one key = value a line (a string needs quotes)")]
    [InlineData("[[confine]]\njobs = [\"a\\q\"]\n", "2:confine.jobs: a string has the escape '\\q', which TOML does not know: write '\\\\' for a backslash, or use '...' (a literal string)")]
    [InlineData("[[confine]]\njobs = slurm\n", "2:confine.jobs: 'slurm' is not a value: a string needs quotes (\"...\"), a list brackets ([...])")]
    [InlineData("[[confine]]\njobs = \n", "2:confine.jobs: has no value after '='")]
    [InlineData("[[confine]]\njobs = [\"a\" \"b\"]\n", "2:confine.jobs: a ',' is missing between two items of the list")]
    [InlineData("mode = \"audit\"\n[rules]\nstratum = \n", "3:rules.stratum: has no value after '='")]
    public void ASyntaxErrorIsOneLineInWordsAtTheKeyBeingRead(string text, string error)
    {
        var errors = new List<PolicyError>();
        Parse(text, errors);
        Assert.Equal($"p.toml:{error}", Assert.Single(errors).ToString());
        Assert.DoesNotContain("token", error, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The lines `guard policy check` prints for a file holding <paramref name="text"/>, and its exit code.</summary>
    private static (int Code, string Path, string[] Out, string[] Error) Check(TempDir dir, string text)
    {
        string path = dir.File("policy.toml", text);
        var console = new TestConsole();
        int code = GuardCli.Run(["policy", "check", path], console);
        return (code, path, console.Out.ToString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries), console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void PolicyCheckWarnsOfUsersAndGroupsThisHostDoesNotKnow()
    {
        // Warned, not refused: a sensor must start whatever accounts a node has; such a name selects no job here.
        using var dir = new TempDir();
        (int code, string path, _, string[] error) = Check(dir, "[[confine]]\njobs = [\"slurm:*\"]\nusers = [\"nosuchuser\", \"0\", \"root\"]\ngroups = [\"nosuchgroup\"]\negress.allow = [\"10.0.0.1\"]\n");
        Assert.Equal(0, code);
        Assert.Equal([
            $"{path}:3:confine.users: warning: 'nosuchuser' is not a user on this host (not in /etc/passwd, where Guard looks; give a uid for a user only a directory service such as LDAP knows): it selects no job here",
            $"{path}:4:confine.groups: warning: 'nosuchgroup' is not a group on this host (not in /etc/group, where Guard looks; give a gid for a group only a directory service such as LDAP knows): it selects no job here"], error);
    }

    [Fact]
    public void PolicyCheckTakesGpuIndicesAsNumbersAndReportsEachErrorOnce()
    {
        using var dir = new TempDir();
        (int code, _, string[] output, string[] error) = Check(dir, "[[confine]]\njobs = [\"slurm:*\"]\ngpu = [0,2]\n");
        Assert.Equal((0, []), (code, error));
        Assert.Contains("1 [[confine]] section(s)", Assert.Single(output), StringComparison.Ordinal);

        (code, string path, _, error) = Check(dir, "[[confine]]\njobs = [\"slurm:*\"]\ngpu = [0, 300, 301]\nlaunchers = [1, 2]\n");
        Assert.Equal(2, code);
        Assert.Equal([
            $"{path}:3:confine.gpu: 300: must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"",
            $"{path}:3:confine.gpu: 301: must be a GPU's minor number (0-253: /dev/nvidia0 is 0) or \"none\"",
            $"{path}:4:confine.launchers: expected a list of strings, but 1 is not one (a string is quoted: \"...\")"], error);
    }

    [Fact]
    public void PolicyCheckReportsASyntaxErrorAloneAndInWords()
    {
        using var dir = new TempDir();
        (int code, string path, _, string[] error) = Check(dir, "[[confine]]\njobs = [\"slurm:*\"\n");
        Assert.Equal(2, code);
        Assert.Equal([$"{path}:2:confine.jobs: the list is not closed: a ']' is missing (the file ends first)"], error);
    }

    [Fact]
    public void PolicyCheckWarnsOfASectionAnEarlierOneShadows()
    {
        using var dir = new TempDir();
        (int code, string path, string[] output, string[] error) = Check(dir, """
            [[confine]]
            jobs = ["slurm:*"]
            [confine.egress]
            allow = ["10.0.0.1:443"]
            [[confine]]
            jobs = ["slurm:1"]
            [confine.egress]
            allow = ["10.0.0.2:443"]
            """);
        Assert.Equal(0, code);
        Assert.Contains("2 [[confine]] section(s)", Assert.Single(output), StringComparison.Ordinal);
        Assert.Equal([$"{path}:5:confine: warning: every job this section selects is selected first by the section at {path}:1 (\"slurm:1\" by \"slurm:*\"): "
            + "a job is confined by the first section that selects it, so this one confines nothing"], error);
    }

    [Fact]
    public void PolicyCheckRefusesAnIpv6AddressWhoseLastGroupMayBeAPort()
    {
        using var dir = new TempDir();
        (int code, string path, _, string[] error) = Check(dir, "[[confine]]\njobs = [\"slurm:*\"]\n[confine.egress]\nallow = [\"2001:db8::1:443\"]\n");
        Assert.Equal(2, code);
        Assert.Equal([$"{path}:4:confine.egress.allow: \"2001:db8::1:443\": is the IPv6 address 2001:db8::1:443, or 2001:db8::1 port 443: "
            + "write [2001:db8::1]:443 for the port, or [2001:db8::1:443] (or 2001:db8::1:443/128) for the address"], error);
    }

    [Theory]
    [InlineData("jobs = [\"slurm:*\"]", "jobs = [\"slurm:1\"]", "\"slurm:1\" by \"slurm:*\"")]
    [InlineData("jobs = [\"*\"]", "jobs = [\"k8s-pod:*\", \"slurm:4?\"]", "\"k8s-pod:*\" by \"*\", \"slurm:4?\" by \"*\"")]
    [InlineData("jobs = [\"slurm:*\"]\nusers = [\"alice\"]", "jobs = [\"slurm:1*\"]\nusers = [\"alice\"]", "\"slurm:1*\" by \"slurm:*\", user \"alice\"")]
    [InlineData("launchers = [\"torchrun\"]", "launchers = [\"torchrun\"]", "launcher \"torchrun\"")]
    [InlineData("jobs = [\"slurm:1\"]", "jobs = [\"slurm:*\"]", null)]
    [InlineData("jobs = [\"slurm:*\"]", "jobs = [\"slurm:1\"]\nusers = [\"alice\"]", null)]
    [InlineData("jobs = [\"slurm:1*\"]", "jobs = [\"slurm:*1\"]", null)]
    [InlineData("jobs = [\"slurm:?\"]", "jobs = [\"slurm:*\"]", null)]
    [InlineData("launchers = [\"torchrun\"]", "launchers = [\"/usr/bin/torchrun\"]", null)]
    public void ASectionIsShadowedWhenAnEarlierOneSelectsEachOfItsEntries(string first, string second, string? why)
    {
        Policy p = Valid($"[[confine]]\n{first}\negress.allow = [\"10.0.0.1\"]\n[[confine]]\n{second}\negress.allow = [\"10.0.0.2\"]\n");
        string[] warnings = [.. ConfineShadows.Warnings(p.Confine)];
        if (why is null)
            Assert.Empty(warnings);
        else
            Assert.Contains($"the section at p.toml:1 ({why})", Assert.Single(warnings), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("*", "slurm:*", true)]
    [InlineData("slurm:*", "slurm:12*", true)]
    [InlineData("slurm:*", "slurm:?", true)]
    [InlineData("slurm:?", "slurm:7", true)]
    [InlineData("slurm:?", "slurm:?", true)]
    [InlineData("slurm:?", "slurm:*", false)]
    [InlineData("slurm:1*", "slurm:*", false)]
    [InlineData("slurm:1", "slurm:?", false)]
    [InlineData("k8s-pod:*", "slurm:1", false)]
    public void GlobCoverage(string glob, string other, bool covers) => Assert.Equal(covers, ConfineShadows.GlobCovers(glob, other));
}
