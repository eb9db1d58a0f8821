using System.Diagnostics;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Packaging;

/// <summary>
/// packaging/deb/build-deb.sh: the .deb is built (the native binary published
/// for it), installed with dpkg into a root of its own (DPKG_ROOT: the
/// maintainer scripts run outside a chroot and touch nothing of this host),
/// run, upgraded over an edited conffile and purged. Nothing is left behind:
/// the root is a temporary directory.
/// </summary>
public sealed class DebianPackageTests
{
    private static readonly string[] Installed =
    [
        "usr/bin/guard",
        "usr/lib/systemd/system/guard.service",
        "etc/guard/guard.toml",
        "etc/guard/policy.toml",
        "usr/share/bash-completion/completions/guard",
        "usr/share/zsh/vendor-completions/_guard",
        "usr/share/man/man1/guard.1.gz",
        "usr/share/guard/slurm/guard-slurm.sh",
    ];

    [Fact]
    public void TheDebInstallsRunsKeepsAnEditedConffileOnUpgradeAndPurgesClean()
    {
        DirectoryInfo work = Directory.CreateTempSubdirectory("guard-deb-");
        try
        {
            string first = Build(work.FullName, "0.1.0~test1", binary: null);
            string second = Build(work.FullName, "0.1.0~test2", binary: Path.Combine(RepoPaths.Root, "artifacts", "guard", "guard"));
            string root = Path.Combine(work.FullName, "root");
            MakeDpkgRoot(root);

            Dpkg(root, "--install", first);
            foreach (string file in Installed)
                Assert.True(File.Exists(Path.Combine(root, file)), $"{file} is not installed");
            Assert.Equal("0.1.0~test1", Run.Complete("/usr/bin/dpkg-query", "--root", root, "--show", "--showformat=${Version}", "guard").Trim());
            string version = Run.Complete(Path.Combine(root, "usr/bin/guard"), "version");
            Assert.StartsWith("guard ", version, StringComparison.Ordinal);
            // postinst enabled the unit in that root (systemctl --root), and started nothing here.
            string wants = Path.Combine(root, "etc/systemd/system/multi-user.target.wants/guard.service");
            Assert.True(File.Exists(wants), "postinst did not enable guard.service");
            // ... and made the group [access] may name, in that root's files only.
            Assert.Contains(File.ReadAllLines(Path.Combine(root, "etc/group")), l => l.StartsWith("guard:x:", StringComparison.Ordinal));
            Assert.Equal("0755", Executable(root, "usr/bin/guard"));
            Assert.Equal("/etc/guard/guard.toml\n/etc/guard/policy.toml", Run.Complete("/usr/bin/dpkg-query", "--root", root, "--status", "guard").Split('\n')
                .SkipWhile(l => l != "Conffiles:").Skip(1).TakeWhile(l => l.StartsWith(' ')).Select(l => l.Trim().Split(' ')[0]).Aggregate((a, b) => $"{a}\n{b}"));

            // An administrator's edit survives an upgrade.
            string policy = Path.Combine(root, "etc/guard/policy.toml");
            File.AppendAllText(policy, "mode = \"audit\"\n");
            Dpkg(root, "--install", second);
            Assert.Equal("0.1.0~test2", Run.Complete("/usr/bin/dpkg-query", "--root", root, "--show", "--showformat=${Version}", "guard").Trim());
            Assert.EndsWith("mode = \"audit\"\n", File.ReadAllText(policy), StringComparison.Ordinal);
            Assert.Contains("mode audit", Run.Complete(Path.Combine(root, "usr/bin/guard"), "policy", "check", policy), StringComparison.Ordinal);

            // Purge removes the package's files, its conffiles, what Guard wrote and the enable link.
            Directory.CreateDirectory(Path.Combine(root, "var/lib/guard"));
            Dpkg(root, "--purge", "guard");
            foreach (string file in Installed)
                Assert.False(File.Exists(Path.Combine(root, file)), $"{file} is still there after purge");
            Assert.False(Directory.Exists(Path.Combine(root, "etc/guard")), "/etc/guard is still there after purge");
            Assert.False(Directory.Exists(Path.Combine(root, "var/lib/guard")), "/var/lib/guard is still there after purge");
            Assert.False(File.Exists(wants) || new FileInfo(wants).LinkTarget is not null, "the enable link is still there after purge");
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    [Fact]
    public void TheBuildRefusesABinaryThatIsNotTheNativeOne()
    {
        // The test build's guard is the .NET apphost: it needs a runtime a host may not have.
        using Process build = Run.Start(Path.Combine(RepoPaths.Root, "packaging/deb/build-deb.sh"), "--binary", Run.GuardExecutable, "--out", Path.GetTempPath());
        string said = build.StandardError.ReadToEnd() + build.StandardOutput.ReadToEnd();
        Assert.True(build.WaitForExit(60_000), "build-deb.sh did not finish in 60 s");
        Assert.Equal(1, build.ExitCode);
        Assert.Contains("is not the native AOT guard", said, StringComparison.Ordinal);
    }

    /// <summary>Runs build-deb.sh (publishing the native binary when <paramref name="binary"/> is null) and returns the .deb's path.</summary>
    private static string Build(string dir, string version, string? binary)
    {
        string[] args = binary is null ? ["--out", dir, "--version", version] : ["--binary", binary, "--out", dir, "--version", version];
        using Process build = Run.Start(Path.Combine(RepoPaths.Root, "packaging/deb/build-deb.sh"), args);
        Task<string> output = build.StandardOutput.ReadToEndAsync();
        string error = build.StandardError.ReadToEnd();
        if (!build.WaitForExit(600_000))
        {
            build.Kill(entireProcessTree: true);
            throw new XunitException("build-deb.sh did not finish in 10 minutes");
        }
        if (build.ExitCode != 0)
            throw new XunitException($"build-deb.sh exited {build.ExitCode}: {error}");
        string deb = output.Result.Trim().Split('\n')[^1];
        Assert.True(File.Exists(deb), $"build-deb.sh said {deb}, which does not exist");
        return deb;
    }

    /// <summary>An empty dpkg database under <paramref name="root"/>.</summary>
    private static void MakeDpkgRoot(string root)
    {
        foreach (string dir in new[] { "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "etc", "run" })
            Directory.CreateDirectory(Path.Combine(root, dir));
        File.WriteAllText(Path.Combine(root, "var/lib/dpkg/status"), "");
        File.WriteAllText(Path.Combine(root, "etc/group"), "root:x:0:\n");
        File.WriteAllText(Path.Combine(root, "etc/gshadow"), "root:*::\n");
        File.WriteAllText(Path.Combine(root, "var/lib/dpkg/available"), "");
    }

    /// <summary>dpkg on <paramref name="root"/>, its maintainer scripts run here with DPKG_ROOT set (the root holds no shell); libc6 is this host's.</summary>
    private static string Dpkg(string root, params string[] args) =>
        Run.Complete("/usr/bin/dpkg", ["--root", root, "--force-script-chrootless", "--force-depends", "--force-confold", .. args]);

    private static string Executable(string root, string file) =>
        Convert.ToString((int)File.GetUnixFileMode(Path.Combine(root, file)) & 0x1ff, 8).PadLeft(4, '0');
}
