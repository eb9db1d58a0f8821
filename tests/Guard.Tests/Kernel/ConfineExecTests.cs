using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Exec and GPU confinement against the real kernel: bpf/confine.bpf.c attached
/// at a cgroup this test made (never the root), with no sensor running (the
/// pinned object alone decides), a stand-in Slurm job cgroup below it and a
/// cgroup outside every job beside it. Stand-ins are copies of /bin/sh and
/// /bin/true in this test's own directory; the class programs are looked for
/// there, never in /usr/bin, so the test names exactly what it runs.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed class ConfineExecTests : IDisposable
{
    private const int Killed = 128 + 9;
    private const int Eperm = 1;
    private const int Enxio = 6;

    private readonly TestCgroups cgroups = new();
    private readonly TempDir dir = new();
    private readonly List<Process> started = [];
    private string? deviceDir;

    public ConfineExecTests() => KernelRequirements.Check();

    private static ConfineRules Rules(string body, string mode = "enforce") =>
        new(Policies.Over($"[[confine]]\nname = \"test\"\njobs = [\"slurm:*\"]\nlaunchers = [\"lineage-job\"]\nmode = \"{mode}\"\n{body}"));

    /// <summary>Attaches at this test's cgroup and writes the section's exec and GPU rules, class programs found in <paramref name="classDirectory"/>.</summary>
    private static ConfineKernel Attach(ConfineRules rules, CgroupsAndDirectory where)
    {
        ConfineKernel kernel = ConfineKernel.Ensure(where.Cgroups.DirectoryOf(where.Cgroups.Top));
        ExecConfinement.Resolve(rules.Sections, [where.ClassDirectory]).WriteTo(kernel);
        return kernel;
    }

    private readonly record struct CgroupsAndDirectory(TestCgroups Cgroups, string ClassDirectory);

    private CgroupsAndDirectory Here => new(cgroups, dir.Path);

    private string ConfinedSlurmJob(ConfineKernel kernel, ConfineRules rules)
    {
        string job = cgroups.Make("job_" + Random.Shared.Next(1000, 99999).ToString(CultureInfo.InvariantCulture));
        ulong id = Libc.InodeOf(cgroups.DirectoryOf(job)) ?? throw new Xunit.Sdk.XunitException("the job cgroup has no inode");
        kernel.ConfineCgroup(id, Cgroupfs.LevelOf(job), rules.KernelJob(rules.Sections[0], 0));
        return job;
    }

    /// <summary>Runs <paramref name="command"/> (shell lines; each program's status echoed) in <paramref name="cgroupPath"/>, by a shell exec'd outside it; returns what it printed.</summary>
    private string RunIn(string cgroupPath, string command)
    {
        Process shell = cgroups.StartIn(cgroupPath, command + "; echo done");
        started.Add(shell);
        TestCgroups.Go(shell);
        Task<string> output = shell.StandardOutput.ReadToEndAsync();
        Assert.True(output.Wait(30_000), "the job's shell did not finish within 30 s");
        return output.Result;
    }

    private static void AssertSaid(string output, string expected) =>
        Assert.True(output.Contains(expected, StringComparison.Ordinal), $"expected \"{expected}\" in: {output}");

    private static List<GuardConfineAct> Acts(ConfineKernel kernel)
    {
        using var reader = new ConfineActReader(kernel.ActsFd);
        var acts = new List<GuardConfineAct>();
        reader.Drain(acts);
        return acts;
    }

    [Fact]
    public void AShellIsKilledBeforeItsFirstInstructionHoweverItIsNamed()
    {
        // A stand-in shell found as "bash" in the class directory, then a hard link of it named like a training program.
        string bash = dir.ShellCopy("bash");
        string trainer = Path.Join(dir.Path, "trainer");
        Run.Complete("ln", bash, trainer);
        string marker = Path.Join(dir.Path, "ran");
        ConfineRules rules = Rules("exec.deny = [\"shells\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        string job = ConfinedSlurmJob(kernel, rules);
        string command = $"{trainer} -c 'echo x > {marker}'; echo trainer=$?; /bin/true; echo true=$?";

        string inJob = RunIn(job, command);
        AssertSaid(inJob, $"trainer={Killed}");
        AssertSaid(inJob, "true=0");
        Assert.False(File.Exists(marker), "the denied shell ran a command: it was not killed before its first instruction");
        GuardConfineAct act = Assert.Single(Acts(kernel), a => a.Kind == (uint)ConfineActKind.Exec);
        Assert.Equal(1u, act.Killed);
        Assert.Equal(1u, act.Section);
        Assert.Equal((uint)ExecClassBits.Shells, act.Denied & (uint)ExecClassBits.Shells);
        Assert.EndsWith("/trainer", Text(act.Path, act.PathLength));

        // Outside every confined job the same program runs.
        string outside = RunIn(cgroups.Make("not-a-job"), command);
        AssertSaid(outside, "trainer=0");
        Assert.True(File.Exists(marker), "outside every job the shell should have run");
    }

    /// <summary>
    /// A Slurm job cgroup made while no sensor runs (none runs in this test): the kernel confines it
    /// at its first exec by its name, and that exec is judged already; a cgroup that names no job is not.
    /// </summary>
    [Fact]
    public void ANewJobIsConfinedByTheKernelAtItsFirstExecBeforeAnySensorSeesIt()
    {
        string bash = dir.ShellCopy("bash");
        string marker = Path.Join(dir.Path, "ran");
        ConfineRules rules = Rules("exec.deny = [\"shells\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        kernel.ReplaceKinds(rules.KernelKinds());
        string job = cgroups.Make("job_" + Random.Shared.Next(1000, 99999).ToString(CultureInfo.InvariantCulture));
        ulong id = Libc.InodeOf(cgroups.DirectoryOf(job)) ?? throw new Xunit.Sdk.XunitException("the job cgroup has no inode");
        Assert.Null(kernel.JobOfCgroup(id));
        string command = $"{bash} -c 'echo x > {marker}'; echo bash=$?; /bin/true; echo true=$?";

        string inJob = RunIn(job, command);
        AssertSaid(inJob, $"bash={Killed}");
        AssertSaid(inJob, "true=0");
        Assert.False(File.Exists(marker), "the new job's first exec, a denied shell, ran");
        // Its entry is the one the sensor would write: the section's, with the job's own rule set.
        GuardConfineJob entry = kernel.JobOfCgroup(id) ?? throw new Xunit.Sdk.XunitException("the kernel did not confine the new job cgroup");
        Assert.Equal(1u, entry.Section);
        Assert.Equal(ConfineRules.CgroupJobSet(id), entry.Job);
        Assert.Contains(Acts(kernel), a => a.Kind == (uint)ConfineActKind.Exec && a.Killed == 1 && a.Job == entry.Job);

        // A cgroup that names no job: the same shell runs.
        AssertSaid(RunIn(cgroups.Make("not-a-job"), command), "bash=0");
        Assert.True(File.Exists(marker), "outside every job the shell should have run");

        // A first section that selects only some Slurm jobs: the kernel leaves new ones to the sensor.
        File.Delete(marker);
        kernel.ReplaceKinds(PolicyRules("[[confine]]\njobs = [\"slurm:1\"]\negress.allow = []\n[[confine]]\njobs = [\"slurm:*\"]\nexec.deny = [\"shells\"]\n").KernelKinds());
        string later = cgroups.Make("job_" + Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture));
        AssertSaid(RunIn(later, command), "bash=0");
        Assert.Null(kernel.JobOfCgroup(Libc.InodeOf(cgroups.DirectoryOf(later))!.Value));
    }

    /// <summary>The rules of a whole policy <paramref name="toml"/>, sections as given.</summary>
    private static ConfineRules PolicyRules(string toml) => new(Policies.Over(toml));

    private static readonly string[] Loaders = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"];

    /// <summary>
    /// The dynamic loader run as a program maps the shell itself, which the kernel never execs: the
    /// loader is every program class, so a section that denies shells kills it before the shell runs.
    /// </summary>
    [Fact]
    public void AShellRunThroughTheDynamicLoaderIsKilled()
    {
        string realLoader = Loaders.FirstOrDefault(File.Exists)
            ?? throw new Xunit.Sdk.XunitException("no dynamic loader at /lib64/ld-linux-x86-64.so.2 or /lib/ld-linux-aarch64.so.1");
        string loader = dir.ExecutableCopy(realLoader, Path.GetFileName(realLoader));
        string marker = Path.Join(dir.Path, "ran");
        ConfineRules rules = Rules("exec.deny = [\"shells\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{loader} /bin/sh -c 'echo x > {marker}'; echo loader=$?; /bin/true; echo true=$?");
        AssertSaid(output, $"loader={Killed}");
        AssertSaid(output, "true=0");
        Assert.False(File.Exists(marker), "the shell ran through the loader");
        Assert.Contains(Acts(kernel), a => (a.Denied & (uint)ExecClassBits.Shells) != 0 && a.Killed == 1);
    }

    /// <summary>
    /// `interpreters` denies python -c and its kin, by inode and by name; the job's own interpreter,
    /// allowed by path, still runs (allow wins over a denied class).
    /// </summary>
    [Fact]
    public void AnInterpreterIsKilledUnlessItsPathIsAllowed()
    {
        string python = dir.ExecutableCopy("/bin/true", "python3");
        string perl = dir.ExecutableCopy("/bin/true", "perl");
        string ownDir = Path.Join(dir.Path, "env");
        Directory.CreateDirectory(ownDir);
        string own = Path.Join(ownDir, "python3.11");
        File.Copy("/bin/true", own);
        File.SetUnixFileMode(own, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        ConfineRules rules = Rules($"exec.deny = [\"interpreters\"]\nexec.allow = [\"{own}\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{python}; echo python=$?; {perl}; echo perl=$?; {own}; echo own=$?");
        AssertSaid(output, $"python={Killed}");
        AssertSaid(output, $"perl={Killed}");
        AssertSaid(output, "own=0");
        Assert.Contains(Acts(kernel), a => (a.Denied & (uint)ExecClassBits.Interpreters) != 0 && a.Killed == 1);
    }

    [Fact]
    public void AProgramFromAWorldWritableTreeIsKilledAndOneElsewhereRuns()
    {
        // /dev/shm is 1777: a directory made below it, 0755, is still in a world-writable tree.
        string shm = Path.Join("/dev/shm", "guard-test-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(shm);
        try
        {
            string payload = Path.Join(shm, "payload");
            File.Copy("/bin/true", payload);
            File.SetUnixFileMode(payload, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            ConfineRules rules = Rules("exec.deny = [\"world-writable\"]\n");
            using ConfineKernel kernel = Attach(rules, Here);
            string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{payload}; echo payload=$?; /bin/true; echo true=$?");
            AssertSaid(output, $"payload={Killed}");
            AssertSaid(output, "true=0");
            Assert.Contains(Acts(kernel), a => (a.Denied & (uint)ExecClassBits.WorldWritable) != 0 && a.Killed == 1);
        }
        finally
        {
            Directory.Delete(shm, recursive: true);
        }
    }

    [Fact]
    public void AMemfdExecIsKilled()
    {
        const string Fileless = """
            import os, sys
            fd = os.memfd_create("trainer", 0)
            os.write(fd, open("/bin/true", "rb").read())
            pid = os.fork()
            if pid == 0:
                os.execv(f"/proc/self/fd/{fd}", ["trainer"])
            _, status = os.waitpid(pid, 0)
            print("memfd=" + str(os.waitstatus_to_exitcode(status)), flush=True)
            """;
        string script = dir.File("fileless.py", Fileless);
        ConfineRules rules = Rules("exec.deny = [\"memfd\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{Run.Python} {script}");
        AssertSaid(output, "memfd=-9");
        Assert.Contains(Acts(kernel), a => (a.Denied & (uint)ExecClassBits.Memfd) != 0);
    }

    [Fact]
    public void AnAllowedPathExceptsFromADeniedClassAndADeniedPathIsKilled()
    {
        string bash = dir.ShellCopy("bash");
        string tool = dir.ExecutableCopy("/bin/true", "tool");
        ConfineRules rules = Rules($"exec.deny = [\"shells\", \"{dir.Path}/to*\"]\nexec.allow = [\"{bash}\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{bash} -c 'exit 3'; echo bash=$?; {tool}; echo tool=$?");
        AssertSaid(output, "bash=3");
        AssertSaid(output, $"tool={Killed}");
        Assert.Contains(Acts(kernel), a => (a.Denied & (uint)ExecClassBits.File) != 0);
    }

    [Fact]
    public void ALauncherTreesExecIsJudgedWithNoCgroupOfItsOwn()
    {
        string tool = dir.ExecutableCopy("/bin/true", "tool");
        ConfineRules rules = Rules($"exec.deny = [\"{tool}\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        foreach ((string comm, ConfineSection section) in rules.LauncherNames())
            kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
        string launcher = dir.ShellCopy("lineage-job");
        string output = RunIn(cgroups.Make("launched"), $"{launcher} -c '{tool}; echo tree=$?'; {tool}; echo outside=$?");
        AssertSaid(output, $"tree={Killed}");
        AssertSaid(output, "outside=0");
    }

    [Fact]
    public void AuditRecordsAndKillsNothing()
    {
        string bash = dir.ShellCopy("bash");
        ConfineRules rules = Rules("exec.deny = [\"shells\"]\n", "audit");
        using ConfineKernel kernel = Attach(rules, Here);
        string output = RunIn(ConfinedSlurmJob(kernel, rules), $"{bash} -c 'exit 3'; echo bash=$?");
        AssertSaid(output, "bash=3");
        GuardConfineAct act = Assert.Single(Acts(kernel));
        Assert.Equal(0u, act.Killed);
        Assert.Equal((uint)ConfineKernelMode.Audit, act.Mode);
    }

    /// <summary>Opens each stand-in /dev/nvidiaN (made here with major 195: no driver answers, so a permitted open says ENXIO) and prints each errno.</summary>
    private string OpenDevices(string cgroupPath, string launcher = "")
    {
        const string Opener = """
            import json, os, sys
            out = {}
            for name in sys.argv[2:]:
                try:
                    os.close(os.open(os.path.join(sys.argv[1], name), os.O_RDWR))
                    out[name] = 0
                except OSError as e:
                    out[name] = e.errno
            print(json.dumps(out), flush=True)
            """;
        deviceDir ??= MakeDevices();
        string script = dir.File("opener.py", Opener);
        string output = RunIn(cgroupPath, $"{launcher}{Run.Python} {script} {deviceDir} nvidia0 nvidia2 nvidiactl");
        return output.Split('\n').First(l => l.StartsWith('{'));
    }

    /// <summary>A private directory, on a file system that allows device nodes, with stand-in /dev/nvidia0, /dev/nvidia2 and /dev/nvidiactl.</summary>
    private static string MakeDevices()
    {
        string path = Path.Join("/run", "guard-test-dev-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach ((string name, int minor) in new[] { ("nvidia0", 0), ("nvidia2", 2), ("nvidiactl", 255) })
            Run.Complete("mknod", Path.Join(path, name), "c", "195", minor.ToString(CultureInfo.InvariantCulture));
        return path;
    }

    [Fact]
    public void AConfinedJobOpensOnlyItsGpus()
    {
        ConfineRules rules = Rules("gpu = [\"0\"]\n");
        using ConfineKernel kernel = Attach(rules, Here);
        JsonElement inJob = JsonDocument.Parse(OpenDevices(ConfinedSlurmJob(kernel, rules))).RootElement;
        Assert.Equal(Enxio, inJob.GetProperty("nvidia0").GetInt32());
        Assert.Equal(Eperm, inJob.GetProperty("nvidia2").GetInt32());
        Assert.Equal(Enxio, inJob.GetProperty("nvidiactl").GetInt32());
        Assert.Contains(Acts(kernel), a => a.Kind == (uint)ConfineActKind.Gpu && a.Major == 195 && a.Minor == 2);

        JsonElement outside = JsonDocument.Parse(OpenDevices(cgroups.Make("not-a-job"))).RootElement;
        Assert.Equal(Enxio, outside.GetProperty("nvidia2").GetInt32());
    }

    [Fact]
    public void ALauncherLineageJobWithoutACgroupOfItsOwnOpensOnlyItsGpus()
    {
        ConfineRules rules = Rules("gpu = \"none\"\n");
        using ConfineKernel kernel = Attach(rules, Here);
        foreach ((string comm, ConfineSection section) in rules.LauncherNames())
            kernel.ConfineLauncher(comm, rules.KernelJob(section, 0));
        // The launcher is a stand-in named lineage-job (a copy of /bin/sh): its tree is the job, in a cgroup that is no job's.
        string launcher = dir.ShellCopy("lineage-job");
        JsonElement tree = JsonDocument.Parse(OpenDevices(cgroups.Make("launched"), $"{launcher} -c 'exec \"$@\"' - ")).RootElement;
        Assert.Equal(Eperm, tree.GetProperty("nvidia0").GetInt32());
        Assert.Equal(Eperm, tree.GetProperty("nvidia2").GetInt32());
        Assert.Equal(Enxio, tree.GetProperty("nvidiactl").GetInt32());
    }

    [Fact]
    public void ACopyOfAShellIsKilledByTheSensorOnceItsHashIsKnownAndThenByTheKernel()
    {
        // Another inode, another name: only its bytes say it is /bin/sh.
        string trainer = dir.ShellCopy("trainer");
        string marker = Path.Join(dir.Path, "ran");
        string number = Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture);
        string job = cgroups.Make("job_" + number);
        using SensorHarness sensor = SensorHarness.Start(new Guard.Sensor.SensorOptions
        {
            Policy = Policies.Over($"[[confine]]\nname = \"no-shells\"\njobs = [\"slurm:{number}\"]\nexec.deny = [\"shells\"]\n"),
        });
        var clock = Stopwatch.StartNew();
        // It waits on stdin, which the test never writes: killed, or the run times out. No child of its own keeps the output open.
        string first = RunIn(job, $"/bin/true; {trainer} -c 'read x'; echo trainer=$?");
        AssertSaid(first, $"trainer={Killed}");
        Assert.True(clock.ElapsedMilliseconds < 15_000, $"the copy ran {clock.ElapsedMilliseconds} ms: it was not killed, it finished");
        RecordedEvent denial = sensor.WaitFor("the confine-exec denial by hash", e => e.Action == "confine-exec"
            && e.Json.GetProperty("guard").GetProperty("confine").GetProperty("by").GetString() == "hash");
        JsonElement confine = denial.Json.GetProperty("guard").GetProperty("confine");
        Assert.Equal("no-shells", confine.GetProperty("section").GetString());
        Assert.True(confine.GetProperty("killed").GetBoolean());
        Assert.Equal("denied", denial.Json.GetProperty("event").GetProperty("type")[0].GetString());
        Assert.Equal("process", denial.Json.GetProperty("event").GetProperty("category")[0].GetString());
        Assert.Equal($"slurm:{number}", denial.Json.GetProperty("guard").GetProperty("job").GetProperty("id").GetString());
        Assert.Equal(trainer, denial.Json.GetProperty("file").GetProperty("path").GetString());
        double delay = confine.GetProperty("delay_ms").GetDouble();
        Console.WriteLine($"copy of /bin/sh killed by hash {delay:F1} ms after its exec");

        // The sensor gave the kernel its inode: the next exec dies before its first instruction.
        string second = RunIn(job, $"{trainer} -c 'echo x > {marker}'; echo trainer=$?");
        AssertSaid(second, $"trainer={Killed}");
        Assert.False(File.Exists(marker), "the copy ran a command on its second exec");
        sensor.WaitFor("the kernel's confine-exec denial", e => e.Action == "confine-exec"
            && e.Json.GetProperty("guard").GetProperty("confine").GetProperty("by").GetString() == "kernel"
            && e.Json.GetProperty("guard").GetProperty("confine").GetProperty("denied_by")[0].GetString() == "shells");
    }

    /// <summary>
    /// The kinds an adversary pass found past the hash: a copy started through another
    /// program (env, nice: the hash asked for the previous program's exec must not stand for
    /// this one's), a copy of an interpreter (hashed like a shell), and a copy that forks
    /// before its hash is in (its children go with it).
    /// </summary>
    [Theory]
    [InlineData("env")]
    [InlineData("nice")]
    [InlineData("interpreter")]
    [InlineData("fork")]
    public void ACopyIsKilledHoweverItStartsAndWhatItForkedGoesWithIt(string how)
    {
        string copy = how == "interpreter" ? dir.ExecutableCopy("/usr/bin/perl", "tokenizer") : dir.ShellCopy("trainer");
        string children = Path.Join(dir.Path, "children");
        string number = Random.Shared.Next(100000, 999999).ToString(CultureInfo.InvariantCulture);
        string job = cgroups.Make("job_" + number);
        using SensorHarness sensor = SensorHarness.Start(new Guard.Sensor.SensorOptions
        {
            Policy = Policies.Over($"[[confine]]\nname = \"no-shells\"\njobs = [\"slurm:{number}\"]\nexec.deny = [\"shells\", \"interpreters\"]\n"),
        });
        // Each waits on stdin, which the test never writes: killed, or the run times out.
        string command = how switch
        {
            "env" => $"/usr/bin/env {copy} -c 'read x'",
            "nice" => $"/usr/bin/nice {copy} -c 'read x'",
            "interpreter" => $"{copy} -e '<STDIN>'",
            _ => $"{copy} -c '/bin/sleep 60 & echo $! > {children}; /bin/sleep 60 & echo $! >> {children}; read x'",
        };
        var clock = Stopwatch.StartNew();
        string output = RunIn(job, $"/bin/true; {command}; echo copy=$?");
        AssertSaid(output, $"copy={Killed}");
        Assert.True(clock.ElapsedMilliseconds < 15_000, $"the copy ran {clock.ElapsedMilliseconds} ms: it was not killed, it finished");
        sensor.WaitFor("the confine-exec denial by hash", e => e.Action == "confine-exec"
            && e.Json.GetProperty("guard").GetProperty("confine").GetProperty("by").GetString() == "hash");
        if (how != "fork")
            return;
        int[] pids = [.. File.ReadAllLines(children).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];
        Assert.Equal(2, pids.Length);
        foreach (int pid in pids)
        {
            // Killed with the copy (a zombie until reaped counts as gone: no State R/S/T).
            string? state = File.Exists($"/proc/{pid}/status") ? File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) : null;
            Assert.True(state is null || state.Contains('Z', StringComparison.Ordinal) || state.Contains('X', StringComparison.Ordinal), $"the copy's child {pid} lives on: {state}");
        }
    }

    private static string Text(Bytes256 bytes, uint length) =>
        System.Text.Encoding.UTF8.GetString(((ReadOnlySpan<byte>)bytes)[..(int)Math.Min(length, (uint)GuardConfineAct.PathCapacity)]);

    public void Dispose()
    {
        foreach (Process p in started)
        {
            if (!p.HasExited)
                p.Kill(entireProcessTree: true);
            p.Dispose();
        }
        try
        {
            cgroups.Dispose();
        }
        finally
        {
            ConfineKernel.Remove();
            dir.Dispose();
            if (deviceDir is not null)
                Directory.Delete(deviceDir, recursive: true);
        }
    }
}
