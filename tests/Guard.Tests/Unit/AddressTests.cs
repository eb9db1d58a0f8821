using System.Net;
using Guard.Sensor.Detection;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class AddressTests
{
    [Theory]
    [InlineData("198.51.100.7", true)]
    [InlineData("8.8.8.8", true)]
    [InlineData("2001:db8::1", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.1.2.3", false)]
    [InlineData("172.20.0.1", false)]
    [InlineData("192.168.1.1", false)]
    [InlineData("100.64.0.1", false)]
    [InlineData("169.254.1.1", false)]
    [InlineData("::1", false)]
    [InlineData("fd00::1", false)]
    [InlineData("fe80::1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    public void OnlyPublicAddressesAreEvidence(string address, bool isPublic) =>
        Assert.Equal(isPublic, WeakFindings.IsPublic(IPAddress.Parse(address)));
}
