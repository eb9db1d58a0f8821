using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;

namespace Guard.Benchmarks;

/// <summary>
/// Confinement attached at the cgroup v2 root (bpf/confine.bpf.c) with one
/// section whose launcher is <paramref name="launcher"/>: the storm binary
/// ("storms") to measure a confined job, another name to measure processes
/// outside every confined job. The section allows loopback TCP, so the storm's
/// connects go through the full judgement and succeed; <paramref name="more"/>
/// adds keys to the section (an exec policy). Dispose detaches and unpins all of it.
/// </summary>
internal sealed class ConfinedJob : IDisposable
{
    private readonly ConfineKernel kernel;

    public ConfinedJob(string launcher, string more = "")
    {
        var errors = new List<PolicyError>();
        Policy policy = PolicyParser.Parse(
            $"[[confine]]\nlaunchers = [\"{launcher}\"]\negress.allow = [\"tcp://127.0.0.0/8\", \"10.0.0.0/8:443\", \"[fd00::/8]:443\"]\n{more}", "bench.toml", PolicyLoader.BuiltIn, errors);
        if (errors.Count > 0)
            throw new InvalidOperationException(string.Join("\n", errors));
        var rules = new ConfineRules(policy);
        kernel = ConfineKernel.Ensure(KernelMounts.FindCgroup2Root());
        kernel.ReplaceSet(1, rules.Sets[0]);
        foreach ((string comm, ConfineSection section) in rules.LauncherNames())
            kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
        ExecConfinement.Resolve(rules.Sections).WriteTo(kernel);
    }

    /// <summary>Connects and packets the kernel denied in every ConfinedJob so far: none expected.</summary>
    public static ulong TotalDenied { get; private set; }

    public void Dispose()
    {
        TotalDenied += kernel.Denials().Aggregate(0UL, (sum, d) => sum + d.Value.Count);
        kernel.Dispose();
        ConfineKernel.Remove();
    }
}
