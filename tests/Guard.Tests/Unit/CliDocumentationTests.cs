using System.CommandLine;
using System.Diagnostics;
using Guard.Cli;
using Guard.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Guard.Tests.Unit;

/// <summary>The completion scripts and guard(1), written from the command tree: what a shell and man make of them.</summary>
public sealed class CliDocumentationTests
{
    private static readonly RootCommand Root = GuardCli.Build(new TestConsole());

    [Theory]
    [InlineData("guard wa", "watch")]
    [InlineData("guard watch --dur", "--duration")]
    [InlineData("guard watch --output ", "auto json none text")]
    [InlineData("guard watch --json-x --output ", "auto json none text")]
    [InlineData("guard policy ", "check show reload --help -h")]
    [InlineData("guard policy check --", "--help")]
    [InlineData("guard quarantine 42 --then ", "kill release")]
    [InlineData("guard kill -o j", "json")]
    [InlineData("guard completion ", "bash zsh --help -h")]
    [InlineData("guard watch --pid ", "")]
    public void BashCompletesCommandsOptionsAndTheValuesAnOptionNames(string line, string expected)
    {
        string script = Path.Combine(Path.GetTempPath(), $"guard-completion-{Environment.ProcessId}-{Guid.NewGuid():N}.bash");
        File.WriteAllText(script, ShellCompletion.Write("bash", Root));
        try
        {
            // As bash fills them for a Tab at the end of the line.
            string driver = "source \"$1\"; read -ra COMP_WORDS <<< \"$2\"; [[ $2 == *' ' ]] && COMP_WORDS+=(''); " +
                "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _guard; echo \"${COMPREPLY[*]}\"";
            Assert.Equal(expected, Run.Complete("/bin/bash", "-c", driver, "bash", script, line).Trim());
        }
        finally
        {
            File.Delete(script);
        }
    }

    /// <summary>An interactive zsh on a pseudo-terminal: the line typed, a Tab, and what zsh shows after it.</summary>
    private const string ZshDriver = """
        import os, pty, select, sys, time
        fpath, line = sys.argv[1], sys.argv[2]
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.update(TERM="dumb", ZDOTDIR=fpath)
            os.execv("/usr/bin/zsh", ["zsh", "-f", "-i"])
        def read(seconds):
            out, end = b"", time.time() + seconds
            while time.time() < end:
                if select.select([fd], [], [], 0.05)[0]:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            return out
        os.write(fd, ("fpath=(%s $fpath); autoload -Uz compinit && compinit -u -d %s/.zcompdump; PS1='> '\n" % (fpath, fpath)).encode())
        read(2)
        os.write(fd, line.encode() + b"\t")
        shown = read(2)
        os.write(fd, b"\x03exit\n")
        read(0.3)
        sys.stdout.write(shown.decode(errors="replace").replace("\r", ""))
        """;

    [Theory]
    [InlineData("guard wa", "guard watch ")]
    [InlineData("guard watch --dura", "guard watch --duration ")]
    [InlineData("guard watch --output ", "auto  json  none  text")]
    [InlineData("guard policy c", "guard policy check ")]
    [InlineData("guard completion ", "bash  zsh")]
    public void ZshCompletesCommandsOptionsAndTheValuesAnOptionNames(string line, string shown)
    {
        if (!File.Exists("/usr/bin/zsh"))
            throw new XunitException("zsh is missing: packaging/setup.sh installs it");
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "_guard"), ShellCompletion.Write("zsh", Root));
        using Process zsh = Run.PythonScript(ZshDriver, dir.Path, line);
        string said = zsh.StandardOutput.ReadToEnd();
        Assert.True(zsh.WaitForExit(30_000), "the zsh driver did not finish in 30 s");
        Assert.Contains(shown, said, StringComparison.Ordinal);
    }

    [Fact]
    public void BothScriptsAndTheManPageNameEveryVisibleCommandAndOption()
    {
        string bash = ShellCompletion.Write("bash", Root);
        string zsh = ShellCompletion.Write("zsh", Root);
        string man = ManPage.Write(Root, "9.9.9", new DateOnly(2026, 11, 30));
        IReadOnlyList<CommandTree.Node> nodes = CommandTree.Walk(Root);
        Assert.Contains(nodes, n => n.Path == "policy check");
        Assert.DoesNotContain(nodes, n => n.Path == "man"); // hidden
        foreach (CommandTree.Node n in nodes.Skip(1))
        {
            string key = "'/" + n.Path.Replace(' ', '/') + "'";
            Assert.Contains(key, bash, StringComparison.Ordinal);
            Assert.Contains(key, zsh, StringComparison.Ordinal);
            Assert.Contains($".SS \"guard {n.Path.Replace("-", "\\-", StringComparison.Ordinal)}\"", man, StringComparison.Ordinal);
            foreach (Option o in n.Options.Where(o => o.Name != "--help"))
            {
                Assert.Contains(o.Name.Replace("-", "\\-", StringComparison.Ordinal), man, StringComparison.Ordinal);
                Assert.Contains($"{o.Name}[", zsh, StringComparison.Ordinal);
            }
        }
        Assert.StartsWith("#compdef guard\n", zsh, StringComparison.Ordinal);
        Assert.Contains("complete -F _guard guard", bash, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ShellCompletion.Write("fish", Root));
    }

    [Fact]
    public void GroffReadsTheManPageWithoutAWarning()
    {
        if (!File.Exists("/usr/bin/groff"))
            throw new XunitException("groff is missing: packaging/setup.sh installs it (Debian's groff-base)");
        string page = Path.Combine(Path.GetTempPath(), $"guard-{Environment.ProcessId}-{Guid.NewGuid():N}.1");
        File.WriteAllText(page, ManPage.Write(Root, "9.9.9", new DateOnly(2026, 11, 30)));
        try
        {
            using Process groff = Run.Start("/usr/bin/groff", "-man", "-Tutf8", "-P-cbu", "-ww", page);
            string text = groff.StandardOutput.ReadToEnd();
            string warnings = groff.StandardError.ReadToEnd();
            Assert.True(groff.WaitForExit(30_000), "groff did not finish in 30 s");
            Assert.True(groff.ExitCode == 0 && warnings.Length == 0, $"groff: exit {groff.ExitCode}: {warnings}");
            Assert.Contains("guard policy check", text, StringComparison.Ordinal);
            Assert.Contains("EXIT STATUS", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(page);
        }
    }
}
