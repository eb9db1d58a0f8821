namespace Guard.Sensor.Detection;

/// <summary>Every user-space detector, built from one policy, and the hashing of executables they share.</summary>
public sealed record PolicyDetectors(
    AllowedProcesses Allowed, AllowedDestinations Destinations, KnownMinerFindings KnownMiners, ArgumentFindings Arguments,
    HashFindings Hashes, StratumFindings Stratum, RoundingFindings Rounding, WeakFindings Weak, GpuIntruderFindings GpuIntruders,
    ExecutableHashes Executables, ContentFindings Content)
{
    public static PolicyDetectors From(Policy policy) => From(policy, new ExecutableHashes());

    /// <summary>The detectors of <paramref name="policy"/> sharing <paramref name="executables"/> (a reload keeps the running hasher).</summary>
    public static PolicyDetectors From(Policy policy, ExecutableHashes executables) =>
        new(new(policy), new(policy), new(policy), new(policy), new(policy), new(policy), new(policy), new(policy), new(policy), executables, new(policy));
}
