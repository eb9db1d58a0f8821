using Guard.Sensor.Bpf;
using Xunit;

namespace Guard.Tests.Support;

/// <summary>What a test takes away from a hold to see the rest of it hold on its own.</summary>
public static class HoldAnswers
{
    /// <summary>
    /// Lets a SIGCONT continue held processes again, as if the kernel did not
    /// answer it: the continue program detached (waited for: the kernel frees a
    /// link a moment later) and the stops it left pending on threads cancelled
    /// (their map unpinned). The rest of the hold (denials, marks, the other
    /// answers) stays; the next hold attaches it all again.
    /// </summary>
    public static void DetachContinueAnswer()
    {
        // The kernel keeps 15 bytes of a program's name: guard_qtree_connect4 and 6 share these.
        string name = BpfProgramNames.QuarantineTreeContinue[..15];
        int Loaded() => GuardProgramsLoaded.List().Count(p => p.Name == name);
        int before = Loaded();
        string link = QuarantineKernel.TreeLinkOf(BpfProgramNames.QuarantineTreeContinue);
        Assert.True(File.Exists(link), $"no {link}");
        File.Delete(link);
        File.Delete(Path.Join(QuarantineKernel.PinRoot, BpfMapNames.QuarantineThreadStops));
        Run.WaitFor(() => Loaded() == before - 1, "the kernel to detach the continue program");
    }
}
