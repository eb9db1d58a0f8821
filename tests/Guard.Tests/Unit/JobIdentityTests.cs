using System.Text;
using Guard.Sensor.Events;
using Guard.Sensor.Output;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// Job identity at fleet scale: Slurm steps and tasks, a pod's container and
/// runtime, and a pod's name and namespace from the kubelet's directories,
/// from path corpora as the nodes lay them out, hostile names included.
/// </summary>
public sealed class JobIdentityTests
{
    private const string Uid = "1b2c3d4e-5f60-7182-9304-a5b6c7d8e9f0";
    private const string UidUnderscored = "1b2c3d4e_5f60_7182_9304_a5b6c7d8e9f0";
    private const string Hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    // Slurm on cgroup v2 (slurmstepd.scope, and the node-named scope of several slurmds on one host).
    [InlineData("/system.slice/slurmstepd.scope/job_4242/step_0/user/task_3", "slurm:4242", "0", "3", null, null)]
    [InlineData("/system.slice/node17_slurmstepd.scope/job_4242/step_batch/user/task_0", "slurm:4242", "batch", "0", null, null)]
    [InlineData("/system.slice/slurmstepd.scope/job_4242/step_extern/slurm_processes", "slurm:4242", "extern", null, null, null)]
    [InlineData("/system.slice/slurmstepd.scope/job_4242/step_interactive/user/task_special", "slurm:4242", "interactive", null, null, null)]
    [InlineData("/system.slice/slurmstepd.scope/job_4242", "slurm:4242", null, null, null, null)]
    // Slurm on cgroup v1 (each controller's tree; the same path shape).
    [InlineData("/slurm/uid_1000/job_778/step_12/task_1", "slurm:778", "12", "1", null, null)]
    // A job that makes cgroups below its own cannot rename the job, and odd names are no step or task.
    [InlineData("/slurm/uid_1000/job_778/step_0/task_1x", "slurm:778", "0", null, null, null)]
    [InlineData("/slurm/uid_1000/job_778/step_$(reboot)/task_1", "slurm:778", null, null, null, null)]
    [InlineData("/slurm/uid_1000/job_778/step_0/job_999/task_2", "slurm:778", "0", "2", null, null)]
    // Kubernetes, systemd driver: burstable, besteffort, guaranteed; containerd, CRI-O, docker.
    [InlineData("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + UidUnderscored + ".slice/cri-containerd-" + Hex64 + ".scope", "k8s-pod:" + Uid, null, null, Hex64, "containerd")]
    [InlineData("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + UidUnderscored + ".slice/crio-" + Hex64 + ".scope", "k8s-pod:" + Uid, null, null, Hex64, "cri-o")]
    [InlineData("/kubepods.slice/kubepods-pod" + UidUnderscored + ".slice/docker-" + Hex64 + ".scope", "k8s-pod:" + Uid, null, null, Hex64, "docker")]
    [InlineData("/kubepods.slice/kubepods-pod" + UidUnderscored + ".slice", "k8s-pod:" + Uid, null, null, null, null)]
    // Kubernetes, cgroupfs driver: the bare id under the pod.
    [InlineData("/kubepods/burstable/pod" + Uid + "/" + Hex64, "k8s-pod:" + Uid, null, null, Hex64, null)]
    [InlineData("/kubepods/besteffort/pod" + Uid + "/" + Hex64 + "/inner", "k8s-pod:" + Uid, null, null, Hex64, null)]
    [InlineData("/kubepods/pod" + Uid + "/crio-conmon-" + Hex64 + ".scope", "k8s-pod:" + Uid, null, null, null, null)]
    [InlineData("/kubepods/pod" + Uid + "/" + "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "k8s-pod:" + Uid, null, null, null, null)]
    // A container outside Kubernetes: its own id and runtime.
    [InlineData("/system.slice/docker-" + Hex64 + ".scope", "container:0123456789ab", null, null, Hex64, "docker")]
    [InlineData("/machine.slice/libpod-" + Hex64 + ".scope/container", "container:0123456789ab", null, null, Hex64, "podman")]
    [InlineData("/docker/" + Hex64, "container:0123456789ab", null, null, Hex64, "docker")]
    public void CgroupPathsSayWhereInTheJobAProcessRuns(string path, string id, string? step, string? task, string? container, string? runtime)
    {
        Job job = CgroupJobs.WithoutUnits.FromPath(path)!;
        Assert.Equal(id, job.Id);
        JobPlacement? placed = job.Placement;
        Assert.Equal(step, placed?.SlurmStep);
        Assert.Equal(task, placed?.SlurmTask);
        Assert.Equal(container, placed?.ContainerId);
        Assert.Equal(runtime, placed?.ContainerRuntime);
        if (step is null && task is null && container is null)
            Assert.Null(placed);
    }

    [Fact]
    public void APodIsNamedFromItsLogDirectoryElseFromItsKubeletDirectoryElseNotAtAll()
    {
        using var dir = new TempDir();
        string logs = Path.Combine(dir.Path, "log-pods"), kubelet = Path.Combine(dir.Path, "kubelet-pods");
        Directory.CreateDirectory(Path.Combine(logs, $"team-a_trainer-7f9c-0_{Uid}", "worker"));
        Assert.Equal(("team-a", "trainer-7f9c-0"), new PodNames(logs, kubelet).Find(Uid));

        // Only the kubelet's pod directory: the service account volume's namespace and the name in etc-hosts.
        const string other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        string pod = Path.Combine(kubelet, other);
        Directory.CreateDirectory(Path.Combine(pod, "volumes", "kubernetes.io~projected", "kube-api-access-x7k2p"));
        File.WriteAllText(Path.Combine(pod, "volumes", "kubernetes.io~projected", "kube-api-access-x7k2p", "namespace"), "ml-jobs");
        File.WriteAllText(Path.Combine(pod, "etc-hosts"), "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.244.1.7\tbert-finetune-2\n");
        Assert.Equal(("ml-jobs", "bert-finetune-2"), new PodNames(logs, kubelet).Find(other));

        // An etc-hosts the pod rewrote with a name that is no DNS name: not used.
        File.WriteAllText(Path.Combine(pod, "etc-hosts"), "10.244.1.7\tEvil_Name\"}\n");
        Assert.Null(new PodNames(logs, kubelet).Find(other));

        // Nothing readable, a malformed UID, a log directory that is not NAMESPACE_NAME_UID: null, never a failure.
        Assert.Null(new PodNames(Path.Combine(dir.Path, "none"), Path.Combine(dir.Path, "none")).Find(Uid));
        Assert.Null(new PodNames(logs, kubelet).Find("../../etc"));
        Directory.CreateDirectory(Path.Combine(logs, $"x_y_z_{other}"));
        Directory.CreateDirectory(Path.Combine(logs, $"UPPER_name_{other}"));
        Assert.Null(new PodNames(logs, Path.Combine(dir.Path, "none")).Find(other));
    }

    [Fact]
    public void LinesAboutAPodCarryOrchestratorAndContainerFieldsAndASlurmTaskItsStep()
    {
        var encoder = new EcsEncoder(new RunInfo("host-a", "boot-a", "1.0.0", 1_700_000_000_000_000_000), new ArgumentRedactor(), () => 2_500_000_000);
        var pod = new Job("k8s-pod:" + Uid, "kubernetes", "/kubepods.slice/kubepods-pod" + UidUnderscored + ".slice")
        {
            Placement = new JobPlacement(null, null, Hex64, "containerd", "trainer-0", "team-a"),
        };
        string line = Encode(encoder, pod);
        Assert.Contains($"\"orchestrator\":{{\"type\":\"kubernetes\",\"namespace\":\"team-a\",\"resource\":{{\"type\":\"pod\",\"id\":\"{Uid}\",\"name\":\"trainer-0\"}}}}", line, StringComparison.Ordinal);
        Assert.Contains($"\"container\":{{\"id\":\"{Hex64}\",\"runtime\":\"containerd\"}}", line, StringComparison.Ordinal);

        var slurm = new Job("slurm:4242", "slurm", "/system.slice/slurmstepd.scope/job_4242") { Placement = new JobPlacement("0", "3", null, null) };
        line = Encode(encoder, slurm);
        Assert.Contains("\"orchestrator\":{\"type\":\"slurm\",\"resource\":{\"type\":\"job\",\"id\":\"4242\"}}", line, StringComparison.Ordinal);
        Assert.Contains("\"job\":{\"id\":\"slurm:4242\",\"kind\":\"slurm\",\"cgroup\":\"/system.slice/slurmstepd.scope/job_4242\",\"step\":\"0\",\"task\":\"3\"}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("\"container\"", line, StringComparison.Ordinal);

        line = Encode(encoder, new Job("systemd:trainer.service", "systemd", "/system.slice/trainer.service"));
        Assert.DoesNotContain("\"orchestrator\"", line, StringComparison.Ordinal);
    }

    private static string Encode(EcsEncoder encoder, Job job)
    {
        var process = new ProcessEntry(300, 30, "boot-a-300", ProcessOrigin.Fork)
        {
            Name = "python"u8.ToArray(),
            Executable = "/usr/bin/python"u8.ToArray(),
            Args = "python\0train.py"u8.ToArray(),
            CgroupJob = job,
        };
        var e = new ProcessEvent { Process = process };
        e.Reset(EventType.Exec);
        e.Sequence = 1;
        e.TimeNs = 1_000_000_000;
        var w = new JsonLineWriter();
        encoder.Encode(e, w);
        return Encoding.UTF8.GetString(w.Written);
    }
}
