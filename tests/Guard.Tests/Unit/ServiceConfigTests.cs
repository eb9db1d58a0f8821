using Guard.Cli;
using Guard.Cli.Commands;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// /etc/guard/guard.toml: a bad file is refused before anything is loaded, with
/// one line per problem naming file:line:key, exit 2; an option given on the
/// command line wins over the file.
/// </summary>
public sealed class ServiceConfigTests
{
    private static (int Code, string[] Lines) Watch(params string[] args)
    {
        var console = new TestConsole();
        int code = GuardCli.Run(["watch", .. args], console);
        return (code, console.ErrorText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData("[intervals]\nheartbeat = 10s\n", 2, "intervals.heartbeat", "")]
    [InlineData("[intervals]\nheartbeat = \"soon\"\n", 2, "intervals.heartbeat", "'soon' is not a duration")]
    [InlineData("policy = \"/etc/guard/policy.toml\"\n\n[outputs.file]\npath = \"/var/log/guard/events.jsonl\"\nmax_sise = \"1M\"\n", 5, "outputs.file.max_sise", "unknown key (known in [outputs.file]: path, max_size, max_age, backups;")]
    [InlineData("[outputs.file]\npath = \"/tmp/x\"\nbackups = true\n", 3, "outputs.file.backups", "expected a string or a whole number")]
    [InlineData("[outputs.file]\npath = \"/tmp/x\"\nmax_size = \"12Q\"\n", 3, "outputs.file.max_size", "'12Q' is not a size of at least 4K")]
    [InlineData("[outputs.syslog]\naddress = \"localhost:514\"\n", 2, "outputs.syslog.address", "'localhost:514' is not a syslog address (unix:PATH, udp:HOST:PORT or tcp:HOST:PORT")]
    [InlineData("[outputs.syslog]\naddress = \"udp:127.0.0.1:514\"\nfacility = \"kernel\"\n", 3, "outputs.syslog.facility", "'kernel' is not a syslog facility")]
    [InlineData("[outputs.stdout]\nformat = \"xml\"\n", 2, "outputs.stdout.format", "'xml' is not auto, json, text or none")]
    [InlineData("types = [\"exec\", \"nope\"]\n", 1, "types", "'nope' is not an event type")]
    [InlineData("gpu_devices = \"195\"\n", 1, "gpu_devices", "expected a list of strings")]
    [InlineData("gpu_devices = [\"nvidia\"]\n", 1, "gpu_devices", "'nvidia' is not MAJOR:MINOR, MAJOR:* (every minor) or a /dev path")]
    [InlineData("\n[intervals]\nstall_limit = \"10ms\"\n", 3, "intervals.stall_limit", "'10ms' is not a duration of at least 100ms")]
    [InlineData("[metrics]\nlisten = \"127.0.0.1:9464\"\n", 2, "metrics.listen", "unknown key (known in [metrics]: address, drop_alert_rate")]
    [InlineData("[output]\n", 1, "[output]", "unknown section (known: intervals, outputs, outputs.stdout, outputs.file, outputs.syslog, metrics, access)")]
    [InlineData("[intervals]\nheartbeat = \"5s\"\nheartbeat = \"6s\"\n", 3, "intervals.heartbeat", "")]
    public void ABadConfigurationIsRefusedWithFileLineAndKeyOnOneLine(string text, int line, string key, string reason)
    {
        using var dir = new TempDir();
        string path = dir.File("guard.toml", text);
        (int code, string[] lines) = Watch("--config", path);
        Assert.Equal((int)ExitCode.Usage, code);
        Assert.True(lines.Length == 1, string.Join("\n", lines));
        Assert.StartsWith($"{path}:{line}:{key}: {reason}", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void TheShippedConfigurationParsesAsShippedAndWithEveryExampleTurnedOn()
    {
        string shipped = File.ReadAllText(Path.Combine(RepoRoot(), "packaging", "config", "guard.toml"));
        Assert.Equal("/etc/guard/policy.toml", ServiceConfig.Parse(shipped, "guard.toml").For("--policy")!.Value);
        // Every commented example, uncommented: each key is one the loader knows.
        string examples = string.Join('\n', shipped.Split('\n').Select(l => l.StartsWith("# [", StringComparison.Ordinal) || (l.StartsWith("# ", StringComparison.Ordinal) && l.Contains(" = ", StringComparison.Ordinal)) ? l[2..] : l));
        ServiceConfig all = ServiceConfig.Parse(examples, "guard.toml");
        Assert.Equal("127.0.0.1:9464", all.For("--metrics")!.Value);
        Assert.Equal("100", all.For("--drop-alert-rate")!.Value);
        Assert.Equal("/var/log/guard/events.jsonl", all.For("--file")!.Value);
    }

    private static string RepoRoot()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Sensor.sln")))
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("no Sensor.sln above the test binaries");
        return dir;
    }

    [Fact]
    public void AnOptionOnTheCommandLineWinsOverTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("guard.toml", "[intervals]\nheartbeat = \"soon\"\n\n[outputs.syslog]\naddress = \"nowhere\"\n");
        // The file's heartbeat is wrong, but the command line's stands: the next problem is the syslog address.
        (int code, string[] lines) = Watch("--config", path, "--heartbeat", "5s");
        Assert.Equal((int)ExitCode.Usage, code);
        Assert.Equal($"{path}:5:outputs.syslog.address: 'nowhere' is not a syslog address ({Guard.Sensor.Output.SyslogAddress.Forms})", Assert.Single(lines));
        // And a wrong option on the command line is the option's error, not the file's.
        (code, lines) = Watch("--config", path, "--heartbeat", "5s", "--syslog", "tcp:127.0.0.1:0");
        Assert.Equal("guard: --syslog: 'tcp:127.0.0.1:0' is not a syslog address (" + Guard.Sensor.Output.SyslogAddress.Forms + ")", Assert.Single(lines));
    }

    [Fact]
    public void AConfigurationNamedButMissingIsRefused()
    {
        (int code, string[] lines) = Watch("--config", "/nonexistent/guard.toml");
        Assert.Equal((int)ExitCode.Usage, code);
        Assert.StartsWith("/nonexistent/guard.toml:0:-: cannot read the configuration: ", Assert.Single(lines), StringComparison.Ordinal);
    }

    [Fact]
    public void EveryKeyStandsForAWatchOptionAndAFullFileParses()
    {
        var watch = WatchCommand.Create(new TestConsole());
        foreach ((string key, string option) in ServiceConfig.Keys)
            Assert.True(watch.Options.Any(o => o.Name == option), $"{key} stands for {option}, which guard watch does not have");
        ServiceConfig config = ServiceConfig.Parse("""
            policy = "/etc/guard/policy.toml"
            ring_size = "16M"
            gpu_devices = ["195", "510/uvm"]
            redact = ["apikey"]
            types = ["exec", "alert"]

            [intervals]
            heartbeat = "10s"
            gpu_sample = "1s"
            stall_limit = "30s"

            [outputs]
            queue_size = "4M"

            [outputs.stdout]
            format = "none"

            [outputs.file]
            path = "/var/log/guard/events.jsonl"
            max_size = "100M"
            max_age = "1d"
            backups = 5

            [outputs.syslog]
            address = "unix:/dev/log"
            facility = "authpriv"

            [metrics]
            """, "guard.toml");
        Assert.Equal("5", config.For("--file-backups")!.Value);
        Assert.Equal(["195", "510/uvm"], config.For("--gpu-device")!.Values);
        Assert.Equal("guard.toml:20:outputs.file.max_size", config.For("--file-max-size")!.Where);
        Assert.Null(config.For("--pid"));
    }
}
