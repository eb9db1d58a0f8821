using System.Reflection;
using Guard.Sensor.Bpf;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The names the sensor looks programs and maps up by are in the objects it
/// carries: a name that finds nothing means sensor and object were built
/// apart. Read from the ELF symbol tables of the embedded objects; nothing is loaded.
/// </summary>
public sealed class BpfNamesTests
{
    private static readonly BpfObject[] Objects = [.. BpfObjects.Embedded.Select(BpfObjects.Read)];

    private static IEnumerable<(string Constant, string Value)> Constants(Type names) =>
        names.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (f.Name, (string)f.GetRawConstantValue()!));

    private static bool IsPrefix(string constant) => constant.EndsWith("Prefix", StringComparison.Ordinal);

    [Fact]
    public void EveryProgramNameIsAProgramInAnObjectAndEveryPrefixStartsOne()
    {
        string[] programs = [.. Objects.SelectMany(o => o.Programs)];
        Assert.NotEmpty(programs);
        var missing = Constants(typeof(BpfProgramNames))
            .Where(c => IsPrefix(c.Constant) ? !programs.Any(p => p.StartsWith(c.Value, StringComparison.Ordinal)) : !programs.Contains(c.Value))
            .Select(c => $"BpfProgramNames.{c.Constant} = \"{c.Value}\"");
        Assert.Empty(missing);
    }

    [Fact]
    public void EveryProgramInTheObjectsHasItsNameAndTheCommonPrefix()
    {
        HashSet<string> named = [.. Constants(typeof(BpfProgramNames)).Where(c => !IsPrefix(c.Constant)).Select(c => c.Value)];
        var unnamed = Objects.SelectMany(o => o.Programs.Where(p => !named.Contains(p) || !p.StartsWith(BpfProgramNames.Prefix, StringComparison.Ordinal)).Select(p => $"{o.Name}: {p}"));
        Assert.Empty(unnamed);
    }

    [Fact]
    public void EveryMapNameIsAMapInAnObject()
    {
        string[] maps = [.. Objects.SelectMany(o => o.Maps)];
        Assert.NotEmpty(maps);
        var missing = Constants(typeof(BpfMapNames)).Where(c => !maps.Contains(c.Value)).Select(c => $"BpfMapNames.{c.Constant} = \"{c.Value}\"");
        Assert.Empty(missing);
    }
}
