using Guard.Sensor.Interop;

namespace Guard.Sensor.Output;

/// <summary>
/// Facts about this run that every event carries (agent.*, host.*), read once
/// at start.
/// </summary>
/// <param name="HostName">host.name and host.hostname: the machine's host name (.NET's Environment.MachineName).</param>
/// <param name="BootId">host.boot.id: /proc/sys/kernel/random/boot_id, new at every boot.</param>
/// <param name="AgentVersion">agent.version: Guard's version.</param>
/// <param name="RealtimeMinusBoottimeNs">
/// CLOCK_REALTIME minus CLOCK_BOOTTIME at start, in ns: what turns a kernel
/// timestamp (boot time) into wall-clock time.
/// </param>
public sealed record RunInfo(string HostName, string BootId, string AgentVersion, long RealtimeMinusBoottimeNs)
{
    /// <summary>This host's facts, read now from /proc and the clocks.</summary>
    public static RunInfo ForThisHost(string version) => new(
        Environment.MachineName,
        File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(),
        version,
        Libc.NowNs(Libc.ClockRealtime) - Libc.NowNs(Libc.ClockBoottime));

    /// <summary>The UTC wall-clock time of a CLOCK_BOOTTIME instant in ns, to the tick (100 ns).</summary>
    public DateTime WallClock(long bootNs) =>
        DateTime.UnixEpoch.AddTicks((bootNs + RealtimeMinusBoottimeNs) / 100);
}
