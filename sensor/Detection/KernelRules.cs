using System.Globalization;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>The part of a policy the kernel applies itself, at exec.</summary>
public static class KernelRules
{
    public static InKernelRules From(Policy policy, string passwd = "/etc/passwd") => new(
        policy.Indicators.MinerNames,
        policy.Indicators.MinerNamesInJobs,
        Acts(policy.ActionFor(Detectors.KnownMiner)),
        Acts(policy.ActionFor(Detectors.MinerInJob)),
        policy.Jobs.Roots,
        [.. policy.Allow.Users.Select(u => Uid(u, passwd)).OfType<uint>()],
        policy.ActionFor(Detectors.Stratum) == RuleAction.Off ? [] : policy.Indicators.StratumMethods,
        Acts(policy.ActionFor(Detectors.Stratum)))
    {
        AllowedDestinations = [.. policy.Allow.Destinations.Select(AllowedDestinations.Parse)],
        // Resolved now: a path that does not exist yet is allowed by user space only.
        AllowedFiles = [.. policy.Allow.Executables.Select(ExecutedFile.KernelIdOf).OfType<FileId>().Select(f => (f.Device, f.Inode))],
        JobUnits = policy.Jobs.Units,
    };

    public static bool Acts(RuleAction action) => action is RuleAction.Kill or RuleAction.KillJob or RuleAction.QuarantineJob;

    private static uint? Uid(string user, string passwd)
    {
        if (uint.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid))
            return uid;
        foreach (string line in File.Exists(passwd) ? File.ReadLines(passwd) : [])
        {
            string[] f = line.Split(':');
            if (f.Length > 2 && f[0] == user && uint.TryParse(f[2], CultureInfo.InvariantCulture, out uid))
                return uid;
        }
        return null;
    }
}
