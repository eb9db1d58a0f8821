using System.Text;
using Guard.Cli;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Events;
using Guard.Sensor.Gpu;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

public sealed class ParsingTests
{
    private const string Uid = "1b2c3d4e_5f60_7182_9304_a5b6c7d8e9f0";
    private const string Hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0", "slurm:4242", "slurm", "/system.slice/slurmstepd.scope/job_4242")]
    [InlineData("/slurm/uid_1000/job_778/step_0", "slurm:778", "slurm", "/slurm/uid_1000/job_778")]
    [InlineData("/X/job_778/step_0", "slurm:778", "slurm", "/X/job_778")]
    [InlineData("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + Uid + ".slice/cri-containerd-" + Hex64 + ".scope", "k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0", "kubernetes", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + Uid + ".slice")]
    [InlineData("/kubepods.slice/kubepods-pod" + Uid + ".slice", "k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0", "kubernetes", "/kubepods.slice/kubepods-pod" + Uid + ".slice")]
    [InlineData("/kubepods/burstable/pod1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0/" + Hex64, "k8s-pod:1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0", "kubernetes", "/kubepods/burstable/pod1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0")]
    [InlineData("/system.slice/docker-" + Hex64 + ".scope", "container:0123456789ab", "container", "/system.slice/docker-" + Hex64 + ".scope")]
    [InlineData("/machine.slice/libpod-" + Hex64 + ".scope/container", "container:0123456789ab", "container", "/machine.slice/libpod-" + Hex64 + ".scope")]
    [InlineData("/system.slice/crio-" + Hex64 + ".scope", "container:0123456789ab", "container", "/system.slice/crio-" + Hex64 + ".scope")]
    [InlineData("/docker/" + Hex64, "container:0123456789ab", "container", "/docker/" + Hex64)]
    [InlineData("/system.slice/trainer.service/worker", "systemd:trainer.service", "systemd", "/system.slice/trainer.service")]
    [InlineData("/user.slice/user-1000.slice/user@1000.service/app.slice/trainer.service", "systemd:trainer.service", "systemd", "/user.slice/user-1000.slice/user@1000.service/app.slice/trainer.service")]
    [InlineData("/system.slice/trainer.service/job_5/step_0", "systemd:trainer.service", "systemd", "/system.slice/trainer.service")]
    public void CgroupPathsNameTheirJobAndItsOwnCgroup(string path, string id, string kind, string jobCgroup)
    {
        Job job = new CgroupJobs(["trainer.service"]).FromPath(path)!;
        Assert.Equal(id, job.Id);
        Assert.Equal(kind, job.Kind);
        Assert.Equal(jobCgroup, job.CgroupPath);
    }

    [Theory]
    [InlineData("/")]
    [InlineData(null)]
    [InlineData("/user.slice/user-0.slice/session-3.scope")]
    [InlineData("/system.slice/cron.service")]
    [InlineData("/user.slice/user-1000.slice/user@1000.service/app.slice/notebook.service")]
    [InlineData("/system.slice/crio-conmon-" + Hex64 + ".scope")]
    [InlineData("/system.slice/foo-docker-" + Hex64 + ".scope")]
    [InlineData("/x/job_")]
    [InlineData("/x/job_12a")]
    [InlineData("/x/myjob_12")]
    [InlineData("/x/kubepods-besteffort-pod1B2C3D4E_5F60_7182_9304_A5B6C7D8E9F0.slice")]
    [InlineData("/x/xpod" + Uid)]
    [InlineData("/notdocker/" + Hex64)]
    [InlineData("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/job_17")]
    public void CgroupsThatAreNoJobNameNone(string? path) => Assert.Null(new CgroupJobs(["trainer.service"]).FromPath(path));

    [Fact]
    public void OnlyTheFirstSixteenLevelsAndNamesUnder127BytesAreRead()
    {
        var jobs = CgroupJobs.WithoutUnits;
        Assert.Equal("slurm:16", jobs.FromPath("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/job_16")?.Id);
        string pod126 = new string('k', 126 - 40) + "-pod" + Uid;
        Assert.Equal(126, pod126.Length);
        Assert.Equal("kubernetes", jobs.FromPath("/" + pod126)?.Kind);
        Assert.Null(jobs.FromPath("/k" + pod126));
    }

    [Fact]
    public void ANamedJobIsTheCgroupNamingItAnyUnitCounting()
    {
        Assert.Equal("systemd:cron.service", CgroupJobs.NamedBy("/system.slice/cron.service")?.Id);
        Assert.Null(CgroupJobs.NamedBy("/system.slice/cron.service/sub"));
        Assert.Equal(("slurm:9", "/x/job_9"), CgroupJobs.NamedBy("/x/job_9") is { } j ? (j.Id, j.CgroupPath) : default);
    }

    [Fact]
    public void StatParsingSurvivesParenthesesAndSpacesInTheName()
    {
        byte[] stat = Encoding.ASCII.GetBytes("1234 (a) b (c)) S 99 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 567890 0 0");
        Assert.True(ProcfsReader.TryParseStat(stat, out byte[] name, out int ppid, out long start, out uint flags));
        Assert.Equal("a) b (c)", Encoding.ASCII.GetString(name));
        Assert.Equal(99, ppid);
        Assert.Equal(567890, start);
        Assert.Equal(4194560u, flags);
    }

    [Fact]
    public void DnsQuestionIsReadFromTheWireFormat()
    {
        byte[] message = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 4, (byte)'p', (byte)'o', (byte)'o', (byte)'l', 2, (byte)'x', (byte)'y', 0, 0, 28, 0, 1];
        var name = new byte[256];
        Assert.True(DnsNames.TryReadQuestion(message, name, out int length, out int type, out int id));
        Assert.Equal("pool.xy", Encoding.ASCII.GetString(name, 0, length));
        Assert.Equal(28, type);
        Assert.Equal(0x1234, id);
    }

    [Fact]
    public void TruncatedOrHostileDnsDoesNotThrow()
    {
        var name = new byte[256];
        Assert.False(DnsNames.TryReadQuestion([1, 2, 3], name, out _, out _, out _));
        byte[] overlong = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, (byte)'a'];
        DnsNames.TryReadQuestion(overlong, name, out int length, out _, out _);
        Assert.True(length <= name.Length);
        var random = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 300)];
            random.NextBytes(bytes);
            DnsNames.TryReadQuestion(bytes, name, out length, out _, out _);
            Assert.InRange(length, 0, name.Length);
        }
    }

    [Theory]
    [InlineData("195:*", 195u, null, GpuRole.ResourceManager)]
    [InlineData("1:7", 1u, 7, GpuRole.ResourceManager)]
    [InlineData("510:*/uvm", 510u, null, GpuRole.UnifiedMemory)]
    [InlineData("4095:1048575", 4095u, 1048575, GpuRole.ResourceManager)]
    [InlineData("/dev/full", 1u, 7, GpuRole.ResourceManager)]
    public void GpuDeviceSpecsParse(string text, uint major, int? minor, GpuRole role)
    {
        Assert.True(GpuDevice.TryParse(text, out GpuDevice? device, out string error), error);
        Assert.Equal(new GpuDevice(major, minor, role), device);
    }

    [Theory]
    [InlineData("", "'' is not MAJOR:MINOR")]
    [InlineData("x", "'x' is not MAJOR:MINOR")]
    [InlineData("1:2:3", "'1:2:3' is not MAJOR:MINOR")]
    [InlineData("-1", "'-1' is not MAJOR:MINOR")]
    // A bare number was once taken as a major with every minor, whatever its size.
    [InlineData("999999", "'999999' is not MAJOR:MINOR")]
    [InlineData("195", "'195' is not MAJOR:MINOR")]
    [InlineData("999999:0", "'999999:0': major 999999 is out of range (1 to 4095)")]
    [InlineData("4096:*", "'4096:*': major 4096 is out of range (1 to 4095)")]
    [InlineData("0:1", "'0:1': major 0 is out of range (1 to 4095)")]
    [InlineData("1:1048576", "'1:1048576': minor 1048576 is out of range (0 to 1048575)")]
    [InlineData("1:99999999999", "'1:99999999999': minor 99999999999 is out of range (0 to 1048575)")]
    [InlineData("1:x", "'1:x' is not MAJOR:MINOR")]
    [InlineData("/etc/hostname", "/etc/hostname is not a character device")]
    [InlineData("/nonexistent/nvidia0", "/nonexistent/nvidia0 is not a character device")]
    public void BadGpuDeviceSpecsAreRefusedSayingWhy(string text, string why)
    {
        Assert.False(GpuDevice.TryParse(text, out _, out string error));
        Assert.StartsWith(why, error, StringComparison.Ordinal);
    }

    [Fact]
    public void NvidiaDevicesAreDiscoveredFromProcDevices()
    {
        using var dir = new TempDir();
        string devices = dir.File("devices", "Character devices:\n  1 mem\n195 nvidia-frontend\n195 nvidiactl\n509 nvidia-uvm\n510 nvidia-caps\n\nBlock devices:\n  8 sd\n");
        Assert.Equal([new GpuDevice(195, null, GpuRole.ResourceManager), new GpuDevice(509, null, GpuRole.UnifiedMemory)], GpuDevice.Discover(devices));
        Assert.Empty(GpuDevice.Discover(dir.File("none", "Character devices:\n  1 mem\n")));
    }

    [Theory]
    [InlineData("30", 30)]
    [InlineData("30s", 30)]
    [InlineData("5m", 300)]
    [InlineData("1h", 3600)]
    [InlineData("250ms", 0.25)]
    [InlineData("1h30m", 5400)]
    [InlineData("2m30s", 150)]
    [InlineData("1.5h", 5400)]
    [InlineData("1d", 86400)]
    public void DurationsParse(string text, double seconds)
    {
        Assert.True(ValueParsers.TryParseDuration(text, out TimeSpan d));
        Assert.Equal(seconds, d.TotalSeconds, 6);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("soon")]
    [InlineData("0")]
    [InlineData("1h30")]
    [InlineData("5x")]
    [InlineData("m")]
    [InlineData("1e9h")]
    [InlineData("99999999999999d")]
    public void BadDurationsAreRefused(string text) => Assert.False(ValueParsers.TryParseDuration(text, out _));

    [Theory]
    [InlineData("4242", 4242, null)]
    [InlineData("fedfab4cc213-607320-3417", 3417, 607320L)]
    public void KillTargetsAreAPidOrAnEntityId(string text, int pid, long? ticks)
    {
        Assert.True(Guard.Sensor.Response.ProcessTarget.TryParse(text, out Guard.Sensor.Response.ProcessTarget target));
        Assert.Equal(pid, target.Pid);
        Assert.Equal(ticks, target.StartTicks);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("x-1-2")]
    [InlineData("a-b-c")]
    [InlineData("-1-2")]
    public void BadKillTargetsAreRefused(string text) => Assert.False(Guard.Sensor.Response.ProcessTarget.TryParse(text, out _));

    [Fact]
    public void RecordDecoderCountsBadRecordsInsteadOfThrowing()
    {
        var decoder = new RecordDecoder();
        var handler = new CountingHandler();
        decoder.Decode(new byte[4], handler);
        byte[] unknown = new byte[64];
        unknown[0] = 200;
        unknown[2] = 1;
        decoder.Decode(unknown, handler);
        byte[] wrongVersion = new byte[64];
        wrongVersion[0] = (byte)RecordKind.Exit;
        wrongVersion[2] = 99;
        decoder.Decode(wrongVersion, handler);
        byte[] shortExec = new byte[64];
        shortExec[0] = (byte)RecordKind.Exec;
        shortExec[2] = (byte)RecordHeader.AbiVersion;
        decoder.Decode(shortExec, handler);
        Assert.Equal(2, decoder.Failures[(int)DecodeFailure.TooShort]);
        Assert.Equal(1, decoder.Failures[(int)DecodeFailure.UnknownKind]);
        Assert.Equal(1, decoder.Failures[(int)DecodeFailure.VersionMismatch]);
        Assert.Equal(0, handler.Calls);
    }

    private sealed class CountingHandler : IRecordHandler
    {
        public int Calls { get; private set; }

        public void OnExec(in ExecRecord record) => Calls++;

        public void OnFork(in ForkRecord record) => Calls++;

        public void OnExit(in ExitRecord record) => Calls++;

        public void OnConnect(in ConnectRecord record) => Calls++;

        public void OnPayload(in PayloadRecord record) => Calls++;

        public void OnDns(in DnsRecord record) => Calls++;

        public void OnGpuOpen(in GpuOpenRecord record) => Calls++;

        public void OnGpuIoctl(in GpuIoctlRecord record) => Calls++;

        public void OnStream(in StreamRecord record) => Calls++;

        public void OnExecArgs(in ExecArgsRecord record) => Calls++;
    }
}
