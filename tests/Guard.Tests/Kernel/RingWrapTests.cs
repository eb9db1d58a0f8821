using System.Diagnostics;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// The ring is read through its data pages mapped once (RingBufferMapping), so
/// a record that runs past the ring's end is put back together from its two
/// parts. An 8 KiB ring read live while execs with arguments of every length
/// go through it: each record lands at another offset, many of them across the
/// end, and each must arrive whole, in order, or be counted as lost.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class RingWrapTests
{
    [Fact]
    public void RecordsThatRunPastTheRingsEndArriveWholeAndInOrder()
    {
        const int Execs = 300;
        string token = $"ring-wrap-{Guid.NewGuid():N}";
        using SensorHarness sensor = SensorHarness.Start(new SensorOptions { Policy = PolicyLoader.BuiltIn, Kernel = new KernelOptions { RingBufferBytes = 8192 } });
        ulong lostBefore = sensor.Sensor.Kernel.ReadDrops()[(int)RecordKind.Exec];
        ulong tailsLostBefore = sensor.Sensor.Kernel.ReadDrops()[(int)RecordKind.ExecArgs];
        var expected = new List<string>();
        for (int i = 0; i < Execs; i++)
        {
            // 0 to 1,000 bytes of padding: the exec record's length, and so where the next one starts, keeps changing.
            string arg = $"{token}-{i}-{new string((char)('a' + (i % 26)), i * 37 % 1001)}";
            expected.Add(arg);
            using Process p = Run.Start("/bin/true", arg);
            Assert.True(p.WaitForExit(5000));
            // One at a time: the reader keeps up however loaded the machine, so the ring wraps ~60 times and drops nothing.
            string prefix = arg[..Math.Min(arg.Length, token.Length + 8)];
            Run.WaitFor(() => sensor.Events.Any(e => e.Action == "exec" && e.Args.Length == 2 && e.Args[1].StartsWith(prefix, StringComparison.Ordinal))
                || sensor.Sensor.Kernel.ReadDrops()[(int)RecordKind.Exec] > lostBefore, $"exec {i} seen or counted as lost", 10_000);
        }
        List<string> seen = [.. sensor.Events.Where(e => e.Action == "exec" && e.Args.Length == 2 && e.Args[1].StartsWith(token, StringComparison.Ordinal)).Select(e => e.Args[1])];
        ulong lost = sensor.Sensor.Kernel.ReadDrops()[(int)RecordKind.Exec] - lostBefore;
        // Whole: each argument seen is exactly one that ran, or (only when the kernel counted a lost exec_args
        // record, the argv past the exec record's first 1 KiB) the start of one that ran.
        ulong tailsLost = sensor.Sensor.Kernel.ReadDrops()[(int)RecordKind.ExecArgs] - tailsLostBefore;
        for (int i = 0; i < seen.Count; i++)
        {
            string s = seen[i];
            if (expected.Contains(s))
                continue;
            string? cut = expected.FirstOrDefault(x => x.StartsWith(s, StringComparison.Ordinal));
            Assert.True(cut is not null && tailsLost > 0, $"an argument of {s.Length} chars arrived that never ran ({tailsLost} exec_args records lost): {s[..Math.Min(s.Length, 80)]}...");
            seen[i] = cut!;
        }
        // In the order they ran.
        Assert.Equal(seen, expected.Where(seen.Contains));
        Assert.Equal(Execs, seen.Count + (int)lost);
        Assert.True(seen.Count >= Execs / 2, $"only {seen.Count} of {Execs} execs were read ({lost} lost): the test shows little");
        Assert.Equal(0, sensor.Sensor.Summary().DecodeFailures);
    }
}
