using Guard.Sensor.Interop;

namespace Guard.Benchmarks;

/// <summary>The sensor with the rounding sampling's preempting threads, as `guard watch` runs them under a policy; disposed together.</summary>
internal sealed class PreemptedSensor(InProcessSensor sensor, PreemptingThreads threads) : IDisposable
{
    public void Dispose()
    {
        threads.Dispose();
        sensor.Dispose();
    }
}
