using System.Net;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ConfineRulesTests
{
    private static ConfineRules Rules(string toml) => new(Policies.Over(toml));

    private static ConfineAllowEntry At(IReadOnlyList<ConfineAllowEntry> entries, string address, int prefix) =>
        Assert.Single(entries, e => new IPAddress(e.Address).Equals(IPAddress.Parse(address)) && e.PrefixLength == prefix);

    [Fact]
    public void AddressesAreKeyedAsTheKernelKeysThem()
    {
        ConfineRules rules = Rules("[[confine]]\njobs = [\"*\"]\negress.allow = [\"tcp://10.1.2.3:443\", \"[fd00::/8]:1000-2000\"]\n");
        IReadOnlyList<ConfineAllowEntry> set = rules.Sets[0];
        ConfineAllowEntry v4 = At(set, "::ffff:10.1.2.3", 128);
        Assert.Equal(1u, v4.Set);
        Assert.Equal((443, 443, 6), (v4.Ports[0].Low, v4.Ports[0].High, v4.Ports[0].Protocol));
        ConfineAllowEntry v6 = At(set, "fd00::", 8);
        Assert.Equal((1000, 2000, 0), (v6.Ports[0].Low, v6.Ports[0].High, v6.Ports[0].Protocol));
    }

    [Fact]
    public void ALongerPrefixCarriesThePortsOfEveryShorterOneThatCoversIt()
    {
        // The kernel finds only the longest match: 10.1.0.0/16 must allow 443 too, and resolvers' 53.
        ConfineRules rules = Rules("""
            [[confine]]
            jobs = ["*"]
            resolvers = ["10.1.0.53"]
            egress.allow = ["10.0.0.0/8:443", "10.1.0.0/16:80", "udp://10.1.0.0/16:81", "192.168.0.1"]
            """);
        IReadOnlyList<ConfineAllowEntry> set = rules.Sets[0];
        Assert.Equal([(443, 443, 0)], At(set, "::ffff:10.0.0.0", 104).Ports.Select(r => ((int)r.Low, (int)r.High, (int)r.Protocol)));
        Assert.Equal([(80, 80, 0), (443, 443, 0), (81, 81, 17)], At(set, "::ffff:10.1.0.0", 112).Ports.Select(r => ((int)r.Low, (int)r.High, (int)r.Protocol)));
        Assert.Equal([(53, 53, 0), (80, 80, 0), (443, 443, 0), (81, 81, 17)], At(set, "::ffff:10.1.0.53", 128).Ports.Select(r => ((int)r.Low, (int)r.High, (int)r.Protocol)));
        Assert.Equal([(0, 65535, 0)], At(set, "::ffff:192.168.0.1", 128).Ports.Select(r => ((int)r.Low, (int)r.High, (int)r.Protocol)));
    }

    [Fact]
    public void OverlappingRangesAreJoinedAndAnyProtocolSwallowsOne()
    {
        ConfineRules rules = Rules("[[confine]]\njobs = [\"*\"]\negress.allow = [\"10.0.0.1:100-200\", \"10.0.0.1:150-300\", \"tcp://10.0.0.1:120\", \"udp://10.0.0.1:400\"]\n");
        Assert.Equal([(100, 300, 0), (400, 400, 17)], At(rules.Sets[0], "::ffff:10.0.0.1", 128).Ports.Select(r => ((int)r.Low, (int)r.High, (int)r.Protocol)));
    }

    [Fact]
    public void MorePortRangesThanTheKernelKeepsAreRefused()
    {
        string ports = string.Join(", ", Enumerable.Range(1, GuardConfinePorts.Capacity + 1).Select(i => $"\"10.0.0.1:{i * 10}\""));
        var e = Assert.Throws<Guard.Sensor.Interop.SensorException>(() => Rules($"[[confine]]\nname = \"many\"\njobs = [\"*\"]\negress.allow = [{ports}]\n"));
        Assert.Contains("many (test.toml:1)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFirstSectionThatSelectsAJobConfinesIt()
    {
        ConfineRules rules = Rules("""
            [[confine]]
            name = "one"
            jobs = ["slurm:7*"]
            egress.allow = []
            [[confine]]
            name = "all"
            jobs = ["*"]
            users = ["4242"]
            egress.allow = []
            """);
        Assert.Equal("one", rules.SectionFor("slurm:778", null, 0, 0, _ => null, _ => null)!.Name);
        Assert.Equal("all", rules.SectionFor("k8s-pod:x", null, 0, 0, _ => null, _ => null)!.Name);
        Assert.Equal("all", rules.SectionFor(null, null, 4242, 0, n => uint.Parse(n, System.Globalization.CultureInfo.InvariantCulture), _ => null)!.Name);
        Assert.Null(rules.SectionFor(null, null, 1, 0, n => uint.Parse(n, System.Globalization.CultureInfo.InvariantCulture), _ => null));
        Assert.Equal(2u, rules.KernelJob(rules.Sections[1], 0).Section);
        Assert.Equal((uint)ConfineKernelMode.Enforce, rules.KernelJob(rules.Sections[1], 0).Mode);
    }

    [Fact]
    public void TheKernelConfinesANewJobOfAKindOnlyWhereTheFirstSectionThatMaySelectItSelectsEveryOne()
    {
        ConfineRules rules = Rules("""
            [[confine]]
            name = "pods"
            jobs = ["k8s-pod:*"]
            mode = "audit"
            egress.allow = []
            [[confine]]
            name = "some-jobs"
            jobs = ["slurm:7*"]
            egress.allow = []
            [[confine]]
            name = "all"
            jobs = ["*"]
            egress.allow = []
            """);
        GuardConfineJob[] kinds = rules.KernelKinds();
        Assert.Equal(ConfineKernel.GuardConfineKindCount, kinds.Length);
        Assert.Equal(0u, kinds[1].Section); // Slurm: "slurm:7*" comes first and selects only some
        Assert.Equal(1u, kinds[2].Section); // pods: all of them, by the first section
        Assert.Equal((uint)ConfineKernelMode.Audit, kinds[2].Mode);
        Assert.Equal(3u, kinds[3].Section); // containers: "pods" and "some-jobs" cannot select one, "*" selects all
        Assert.Equal(1u, kinds[0].Section); // some kind is confined: the kernel looks

        // A section that selects by user could select any job: the kernel leaves every kind after it to the sensor.
        GuardConfineJob[] byUser = Rules("""
            [[confine]]
            users = ["4242"]
            egress.allow = []
            [[confine]]
            jobs = ["slurm:*"]
            egress.allow = []
            """).KernelKinds();
        Assert.All(byUser, k => Assert.Equal(0u, k.Section));
        Assert.Equal(2u, Rules("[[confine]]\njobs = [\"systemd:*\"]\negress.allow = []\n[[confine]]\njobs = [\"slurm:*\"]\negress.allow = []\n").KernelKinds()[1].Section);
    }
}
