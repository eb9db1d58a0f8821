using Guard.Sensor.Detection;
using Xunit;

namespace Guard.Tests.Support;

public static class Policies
{
    /// <summary>The built-in policy with <paramref name="toml"/> laid over it; a policy error fails the test.</summary>
    public static Policy Over(string toml)
    {
        var errors = new List<PolicyError>();
        Policy over = PolicyParser.Parse(toml, "test.toml", PolicyLoader.BuiltIn, errors);
        Assert.Empty(errors);
        return over;
    }
}
