using Guard.Sensor.Processes;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>A job id as a person types it, made the id events carry.</summary>
public sealed class JobIdsTests
{
    [Theory]
    [InlineData("k8s-pod:1f2e3d4c-0000-4000-8000-00000000abcd", "k8s-pod:1f2e3d4c-0000-4000-8000-00000000abcd")]
    [InlineData("k8s-pod:1f2e3d4c_0000_4000_8000_00000000abcd", "k8s-pod:1f2e3d4c-0000-4000-8000-00000000abcd")] // as a systemd cgroup path writes it
    [InlineData("k8s-pod:1F2E3D4C-0000-4000-8000-00000000ABCD", "k8s-pod:1f2e3d4c-0000-4000-8000-00000000abcd")]
    [InlineData("slurm:4242", "slurm:4242")]
    [InlineData("systemd:Train_Job.service", "systemd:Train_Job.service")] // a unit's name is its own
    public void APodUidIsWrittenAsKubernetesPrintsIt(string given, string canonical)
    {
        Assert.Equal(canonical, JobIds.Canonical(given));
    }
}
