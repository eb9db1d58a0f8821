using Guard.Sensor.Abi;
using Guard.Sensor.Detection;
using Guard.Sensor.Response;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ExecConfinementTests
{
    private static IReadOnlyList<ConfineSection> Sections(string body) =>
        Policies.Over($"[[confine]]\njobs = [\"slurm:*\"]\n{body}").Confine;

    [Theory]
    [InlineData("bash", ExecClassBits.Shells)]
    [InlineData("busybox", ExecClassBits.Shells)]
    [InlineData("pip3.11", ExecClassBits.PackageManagers)]
    [InlineData("gcc-12", ExecClassBits.Compilers)]
    [InlineData("go", ExecClassBits.PackageManagers | ExecClassBits.Compilers)]
    [InlineData("curl", ExecClassBits.Downloaders)]
    [InlineData("python3", ExecClassBits.Interpreters)]
    [InlineData("python3.11", ExecClassBits.Interpreters)]
    [InlineData("ld-linux-x86-64.so.2", ExecConfinement.ProgramClasses)]
    [InlineData("gcc-", ExecClassBits.None)]
    [InlineData("trainer", ExecClassBits.None)]
    public void ANameHasItsClasses(string name, ExecClassBits classes) =>
        Assert.Equal((uint)classes, ExecConfinement.ClassesOfName(name));

    [Fact]
    public void ClassProgramsAreFoundByNameAndKeptByInode()
    {
        using var dir = new TempDir();
        string bash = dir.ExecutableCopy("/bin/true", "bash");
        dir.ExecutableCopy("/bin/true", "curl");
        dir.ExecutableCopy("/bin/true", "gcc-13");
        dir.ExecutableCopy("/bin/true", "trainer");
        ExecConfinement e = ExecConfinement.Resolve(Sections("exec.deny = [\"shells\"]\n"), [dir.Path]);
        Assert.Equal(3, e.Files.Count(f => f.Set == 0));
        var bashFile = Guard.Sensor.Processes.ExecutedFile.KernelIdOf(bash);
        Assert.Contains(e.Files, f => f.Set == 0 && f.File == bashFile && f.Value == (uint)ExecClassBits.Shells);
        Assert.Equal((uint)ExecClassBits.Compilers, e.Names["gcc-13"]);
        Assert.Equal((uint)ExecClassBits.Shells, e.Names["dash"]);
        Assert.False(e.Names.ContainsKey("trainer"));
    }

    [Fact]
    public void RulesAreClassBitsAndFilesWithAllowWinningPerFile()
    {
        using var dir = new TempDir();
        string a = dir.ExecutableCopy("/bin/true", "tool-a");
        string b = dir.ExecutableCopy("/bin/true", "tool-b");
        ExecConfinement e = ExecConfinement.Resolve(
            Sections($"exec.deny = [\"shells\", \"memfd\", \"{dir.Path}/tool-*\", \"sha256:{new string('a', 64)}\"]\nexec.allow = [\"downloaders\", \"{b}\"]\ngpu = [\"1\", \"65\"]\n"), [dir.Path]);
        GuardConfineExecRules r = Assert.Single(e.Rules);
        Assert.Equal((uint)(ExecClassBits.Shells | ExecClassBits.Memfd | ExecClassBits.File), r.Deny);
        Assert.Equal((uint)ExecClassBits.Downloaders, r.Allow);
        Assert.Contains(e.Files, f => f.Set == 1 && f.File == Guard.Sensor.Processes.ExecutedFile.KernelIdOf(a) && f.Value == GuardConfineExecRules.FileDeny);
        Assert.Contains(e.Files, f => f.Set == 1 && f.File == Guard.Sensor.Processes.ExecutedFile.KernelIdOf(b) && f.Value == GuardConfineExecRules.FileAllow);
        Assert.Single(e.Files, f => f.Set == 1 && f.File == Guard.Sensor.Processes.ExecutedFile.KernelIdOf(b));
        GuardConfineGpu gpu = Assert.Single(e.Gpus);
        Assert.Equal(1u, gpu.Limited);
        ReadOnlySpan<byte> minors = gpu.Minors;
        Assert.Equal(0b10, minors[0]);
        Assert.Equal(0b10, minors[8]);
        Assert.Equal(2, minors.ToArray().Sum(x => System.Numerics.BitOperations.PopCount(x)));
    }

    [Fact]
    public void ASectionWithoutExecOrGpuRulesLimitsNothing()
    {
        ExecConfinement e = ExecConfinement.Resolve(Sections("egress.allow = [\"10.0.0.1\"]\n"), []);
        Assert.Equal(0u, Assert.Single(e.Rules).Deny);
        Assert.Equal(0u, Assert.Single(e.Gpus).Limited);
    }
}
