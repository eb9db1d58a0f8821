using System.Text;
using Guard.Sensor.Output;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ArgumentRedactorTests
{
    private static string[] Redact(params string[] args)
    {
        var redactor = new ArgumentRedactor();
        var scratch = new byte[256];
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
}
