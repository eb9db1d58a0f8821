using System.Diagnostics;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The pass over /proc that late judging makes after lost records
/// (<see cref="ProcfsSweep"/>): every process /proc shows is offered, a block
/// at a time, by pid and start, and a process the table knows costs no allocation.
/// It starts processes whose arguments look like a miner's: in the kernel tests' collection, so no
/// sensor of a kernel test running at the same time judges (and kills, and alerts on) them.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ProcfsSweepTests
{
    [Fact]
    public void APassOffersEveryProcessByPidAndStart()
    {
        using Process child = Process.Start(new ProcessStartInfo("/bin/sleep", "30") { UseShellExecute = false })!;
        try
        {
            Assert.True(ProcfsReader.TryReadStat(child.Id, out ProcfsStat stat));
            var unknown = new List<(int Pid, long StartTicks)>();
            using var sweep = new ProcfsSweep();
            Assert.True(sweep.Begin());
            int steps = 0;
            while (sweep.Step((_, _) => false, unknown))
                steps++;
            Assert.False(sweep.Running);
            Assert.Contains((child.Id, stat.StartTicks), unknown);
            Assert.Contains(unknown, u => u.Pid == Environment.ProcessId);
            Assert.DoesNotContain(unknown, u => u.Pid == 2); // kthreadd: kernel threads are left out
            Assert.True(steps >= 1);
        }
        finally
        {
            child.Kill();
            child.WaitForExit();
        }
    }

    [Fact]
    public void AProcessTheTableKnowsCostsNoAllocation()
    {
        var unknown = new List<(int Pid, long StartTicks)>(16);
        Func<int, long, bool> known = (_, _) => true;
        using var sweep = new ProcfsSweep();
        // One pass to warm up (JIT, the stat parser), then one measured.
        Assert.True(sweep.Begin());
        while (sweep.Step(known, unknown))
        {
        }
        int processes = ProcfsReader.Pids().Count();
        var clock = new Stopwatch();
        Assert.True(sweep.Begin());
        long before = GC.GetAllocatedBytesForCurrentThread();
        clock.Start();
        while (sweep.Step(known, unknown))
        {
        }
        clock.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Empty(unknown);
        Assert.True(allocated == 0, $"a pass over {processes} known processes allocated {allocated} bytes");
        Console.WriteLine($"procfs sweep: {processes} processes in {clock.Elapsed.TotalMilliseconds:F2} ms, {allocated} bytes allocated");
    }

    [Fact]
    public void ArgumentsAreReadWholeUpTo64KiBAndSaidToBeCutPastIt()
    {
        string flag = "--donate-level";
        string pad = new('A', 1100);
        string huge = new('B', 70 << 10);
        using Process small = Process.Start(new ProcessStartInfo("/bin/sh") { UseShellExecute = false, ArgumentList = { "-c", "sleep 30", "x", pad, flag } })!;
        using Process big = Process.Start(new ProcessStartInfo("/bin/sh") { UseShellExecute = false, ArgumentList = { "-c", "sleep 30", "x", huge } })!;
        try
        {
            byte[] args = ProcfsReader.ReadArgs($"/proc/{small.Id}/cmdline", out bool truncated);
            Assert.False(truncated);
            Assert.EndsWith("\0" + flag, System.Text.Encoding.UTF8.GetString(args), StringComparison.Ordinal); // past byte 1,100, final NUL dropped

            args = ProcfsReader.ReadArgs($"/proc/{big.Id}/cmdline", out truncated);
            Assert.True(truncated);
            Assert.Equal(ProcfsReader.ArgsLimit, args.Length);
        }
        finally
        {
            small.Kill();
            big.Kill();
        }
    }

    [Theory]
    [InlineData("1", true, 1)]
    [InlineData("4194304", true, 4194304)]
    [InlineData("self", false, 0)]
    [InlineData("", false, 0)]
    [InlineData("0", false, 0)]
    [InlineData("1234567890", false, 0)]
    public void OnlyDigitsNameAProcess(string name, bool parsed, int pid)
    {
        Assert.Equal(parsed, ProcfsSweep.TryParsePid(System.Text.Encoding.ASCII.GetBytes(name), out int got));
        Assert.Equal(pid, got);
    }
}
