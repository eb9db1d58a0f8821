using System.Diagnostics;
using Guard.Sensor.Detection;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Output;
using Guard.Sensor.Pipeline;
using Guard.Sensor.Processes;

namespace Guard.Benchmarks;

/// <summary>
/// The sensor's own share of GPU sampling, NVML left out: 8 devices with 200
/// processes between them (live pids of this host, so lineage is real), fed
/// through the pipeline (table lookup, intruder verdict, ECS metrics to a null
/// stream) as at 1 Hz. The share is the time per sampling over one second.
/// </summary>
internal static class GpuSampling
{
    public static string Measure()
    {
        int[] pids = [.. Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out int p) ? p : 0).Where(p => p > 0)];
        IReadOnlyList<GpuDeviceSample> devices =
        [
            .. Enumerable.Range(0, 8).Select(i => new GpuDeviceSample(i, "NVIDIA H100 80GB HBM3", $"GPU-{i:x8}", 90, 40, 60UL << 30, 80UL << 30, 500_000, false,
                [.. Enumerable.Range(0, 25).Select(j => new GpuProcessSample(pids[((i * 25) + j) % pids.Length], 1UL << 30, 50, 20))])),
        ];
        var table = new ProcessTable(EntityIds.ForThisBoot(), null, new UserNames());
        var sink = new JsonLinesSink(Stream.Null, new EcsEncoder(RunInfo.ForThisHost("bench"), new ArgumentRedactor()));
        var emitter = new EventEmitter(table, sink, new EventFilter());
        var pipeline = new EventPipeline(table, emitter, new PayloadAssembly(), new GpuAccounting(table, null),
            new Judge(PolicyDetectors.From(PolicyLoader.BuiltIn), null, emitter));
        for (int i = 0; i < 50; i++)
            pipeline.OnGpuSamples(devices, i); // warm: tiered JIT, the table knows the processes
        const int samplings = 500;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < samplings; i++)
            pipeline.OnGpuSamples(devices, i);
        double perSampling = clock.Elapsed.TotalMilliseconds / samplings;
        return $"GPU sampling, 8 devices and 200 processes through the pipeline (NVML left out): {perSampling:F3} ms per sampling = {perSampling / 10:F3}% of one core at 1 Hz (bar 0.5%)";
    }
}
