using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;

namespace Guard.Benchmarks;

/// <summary>
/// Confinement (bpf/confine.bpf.c) with one section, as a sensor writes it: either
/// a cgroup job (<paramref name="jobCgroup"/>, a stand-in Slurm job cgroup, whose
/// own cgroup gets the programs; nothing at the root) or a launcher's tree
/// (<paramref name="launcher"/>: the storm binary "storms" to measure a confined
/// tree, another name to measure processes outside every confined job while the
/// root programs are attached). The section allows loopback TCP, so the storm's
/// connects go through the full judgement and succeed; <paramref name="more"/>
/// adds keys to the section (an exec policy). Dispose detaches and unpins all of it.
/// </summary>
internal sealed class ConfinedJob : IDisposable
{
    private readonly ConfineKernel kernel;

    public ConfinedJob(string? launcher, string more = "", string? jobCgroup = null)
    {
        var errors = new List<PolicyError>();
        string select = launcher is null ? "jobs = [\"slurm:*\"]" : $"launchers = [\"{launcher}\"]";
        Policy policy = PolicyParser.Parse(
            $"[[confine]]\n{select}\negress.allow = [\"tcp://127.0.0.0/8\", \"10.0.0.0/8:443\", \"[fd00::/8]:443\"]\n{more}", "bench.toml", PolicyLoader.BuiltIn, errors);
        if (errors.Count > 0)
            throw new InvalidOperationException(string.Join("\n", errors));
        var rules = new ConfineRules(policy);
        string root = KernelMounts.FindCgroup2Root();
        kernel = ConfineKernel.Ensure(root);
        kernel.ReplaceSet(1, rules.Sets[0]);
        foreach ((string comm, ConfineSection section) in rules.LauncherNames())
            kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
        if (jobCgroup is not null)
        {
            ulong id = Libc.InodeOf(jobCgroup) ?? throw new InvalidOperationException($"no cgroup {jobCgroup}");
            kernel.ConfineCgroup(id, Cgroupfs.LevelOf(jobCgroup[root.Length..]), rules.KernelJob(rules.Sections[0], ConfineRules.CgroupJobSet(id)));
        }
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
