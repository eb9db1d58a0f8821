namespace Guard.Sensor.Detection;

/// <summary>Every user-space detector, built from one policy.</summary>
public sealed record PolicyDetectors(
    AllowedProcesses Allowed, AllowedDestinations Destinations, KnownMinerFindings KnownMiners, ArgumentFindings Arguments,
    HashFindings Hashes, StratumFindings Stratum, RoundingFindings Rounding, WeakFindings Weak, GpuIntruderFindings GpuIntruders)
{
    public static PolicyDetectors From(Policy policy)
    {
        var hashes = new ExecutableHashes();
        return new(new(policy, hashes), new(policy), new(policy, hashes), new(policy), new(policy, hashes), new(policy), new(policy), new(policy), new(policy));
    }
}
