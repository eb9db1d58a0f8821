using Guard.Sensor.Interop;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The kernel's CPU list format (/sys/devices/system/cpu/online), from which
/// the preempting threads take the CPUs to sample.
/// </summary>
public sealed class CpuListTests
{
    [Theory]
    [InlineData("0\n", new[] { 0 })]
    [InlineData("0-1\n", new[] { 0, 1 })]
    [InlineData("0-3,8,10-11\n", new[] { 0, 1, 2, 3, 8, 10, 11 })]
    [InlineData("2,0-1", new[] { 0, 1, 2 })] // written ascending by the kernel; taken in any order, without repeats
    [InlineData("1,1-2", new[] { 1, 2 })]
    [InlineData("8191", new[] { 8191 })]
    [InlineData("\n", new int[0])] // no CPU online: the caller falls back to its own CPUs
    public void AListOfCpusAndRangesIsEveryCpuItNamesAscending(string text, int[] cpus) =>
        Assert.Equal(cpus, PreemptingThreads.ParseCpuList(text));

    [Theory]
    [InlineData("0-")]
    [InlineData("-1")]
    [InlineData("3-1")] // a range that runs backwards
    [InlineData("0,,1")]
    [InlineData("0-1,")]
    [InlineData(" 0")]
    [InlineData("+1")]
    [InlineData("0x1")]
    [InlineData("0-7:2/4")] // the stride form: never written for the online list
    [InlineData("8192")] // past NR_CPUS
    [InlineData("0-99999999999")]
    [InlineData("0\n\n1")]
    public void ATextThatIsNoCpuListIsRefused(string text) =>
        Assert.Null(PreemptingThreads.ParseCpuList(text));

    [Fact]
    public void ThisMachinesOnlineListParses()
    {
        List<int>? cpus = PreemptingThreads.ParseCpuList(File.ReadAllText("/sys/devices/system/cpu/online"));
        Assert.NotNull(cpus);
        Assert.NotEmpty(cpus);
        Assert.Equal(cpus.Order(), cpus);
    }
}
