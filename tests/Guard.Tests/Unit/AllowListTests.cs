using System.Net;
using Guard.Sensor.Detection;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class AllowListTests
{
    private static AllowedDestinations From(params string[] destinations)
    {
        string list = string.Join(", ", destinations.Select(d => $"\"{d}\""));
        return new AllowedDestinations(Policies.Over($"[allow]\ndestinations = [{list}]\n"));
    }

    private static bool Allows(AllowedDestinations allowed, string address, ushort port)
    {
        IPAddress ip = IPAddress.Parse(address);
        byte[] bytes = new byte[16];
        ip.GetAddressBytes().CopyTo(bytes, 0);
        return allowed.Allows(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? (ushort)2 : (ushort)10, bytes, port);
    }

    [Fact]
    public void AddressesNetworksAndPortsMatchAsThePolicySaysAndNothingElse()
    {
        AllowedDestinations allowed = From("10.20.0.0/16", "192.0.2.7:3333", "2001:db8::/32", "[2001:db8:1::5]:443");
        Assert.True(Allows(allowed, "10.20.255.1", 8888));
        Assert.False(Allows(allowed, "10.21.0.1", 8888));
        Assert.True(Allows(allowed, "192.0.2.7", 3333));
        Assert.False(Allows(allowed, "192.0.2.7", 3334));
        Assert.True(Allows(allowed, "2001:db8:ffff::1", 1));
        Assert.False(Allows(allowed, "2001:db9::1", 1));
        Assert.False(Allows(From(), "10.20.0.1", 1));
        Assert.False(Allows(From("10.20.0.0/12"), "10.48.0.1", 1));
        Assert.True(Allows(From("10.20.0.0/12"), "10.31.0.1", 1));
    }

    [Fact]
    public void AnExecutableIsAllowedByItsHashWhateverItsPathAndOnlyOnceHashed()
    {
        string hash = Sha256.HexOf("#!/bin/sh\necho internal benchmark\n"u8);
        Policy policy = Policies.Over($"[allow]\nhashes = [\"{hash.ToUpperInvariant()}\"]\n");
        var allowed = new AllowedProcesses(policy);
        var process = new ProcessEntry(4242, 1, "test-1-4242", ProcessOrigin.Exec) { Executable = "/tmp/xmrig-lookalike"u8.ToArray() };
        Assert.False(allowed.Allows(process));
        Assert.True(allowed.WaitsForHash(process));
        process.ExecutableSha256 = hash;
        Assert.True(allowed.Allows(process));
        Assert.False(allowed.WaitsForHash(process));
        var other = new ProcessEntry(4243, 1, "test-1-4243", ProcessOrigin.Exec) { Executable = "/bin/sh"u8.ToArray(), ExecutableNotHashed = "unreadable" };
        Assert.False(allowed.Allows(other));
        Assert.False(allowed.WaitsForHash(other));
    }
}
