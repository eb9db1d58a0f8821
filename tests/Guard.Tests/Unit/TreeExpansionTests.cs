using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Processes;
using Guard.Sensor.Response;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// How a tree's members are found in one snapshot (<see cref="StoppedTree.Expand"/>):
/// by recorded lineage through exited links and by live parent pid, every
/// process by pid and start, so a pid that changed hands links nothing.
/// </summary>
public sealed class TreeExpansionTests
{
    private static readonly (int, long) Root = (100, 1_000);

    private static GuardProcessId Id(int pid, long ticks) => new() { Tgid = (uint)pid, StartTimeNs = (ulong)ticks * GuardProcessId.NsPerTick + 123 };

    private static LineageLink Link((int Pid, long Ticks) process, (int Pid, long Ticks) creator, bool alive = true) =>
        new(Id(process.Pid, process.Ticks), Id(creator.Pid, creator.Ticks), alive);

    private static ProcfsStat Proc(int pid, int ppid, long ticks) => new(pid, ppid, ticks, [], false);

    private static List<(int Pid, long StartTicks)> Expand(IReadOnlyList<LineageLink> links, params ProcfsStat[] procs)
    {
        Dictionary<int, ProcfsStat> byPid = procs.ToDictionary(p => p.Pid);
        var known = new HashSet<(int Pid, long StartTicks)> { Root };
        return StoppedTree.Expand(known, links, byPid, id => byPid.TryGetValue(id.Pid, out ProcfsStat s) && s.StartTicks == id.StartTicks);
    }

    [Fact]
    public void ASetsidGrandchildIsFoundThroughItsExitedParent()
    {
        (int, long) subshell = (101, 1_001), grandchild = (102, 1_002);
        List<(int, long)> found = Expand(
            [Link(subshell, Root, alive: false), Link(grandchild, subshell)],
            Proc(100, 50, 1_000), Proc(102, 1, 1_002)); // the grandchild's parent is init now

        Assert.Equal([grandchild], found);
    }

    [Fact]
    public void ACloneParentChildIsFoundThoughItsParentIsTheRootsParent()
    {
        (int, long) child = (103, 1_003);
        List<(int, long)> found = Expand([Link(child, Root)], Proc(50, 1, 10), Proc(100, 50, 1_000), Proc(103, 50, 1_003));

        Assert.Equal([child], found);
    }

    [Fact]
    public void ProcessesOlderThanTheRecorderAreFoundByLiveParent()
    {
        List<(int, long)> found = Expand([], Proc(100, 50, 1_000), Proc(104, 100, 900), Proc(105, 104, 950));

        Assert.Equal([(104, 900L), (105, 950L)], found.Order());
    }

    [Fact]
    public void APidThatChangedHandsLinksNothing()
    {
        // The root's pid now belongs to another process: neither its children by pid nor its lineage are the tree's.
        (int, long) newcomer = (100, 2_000), newcomersChild = (106, 2_001);
        List<(int, long)> found = Expand([Link(newcomersChild, newcomer)], Proc(100, 50, 2_000), Proc(106, 100, 2_001), Proc(107, 100, 2_002));

        Assert.Empty(found);
    }

    [Fact]
    public void AnExitedLinkIsFollowedButNeverFound()
    {
        (int, long) hopper1 = (110, 1_010), hopper2 = (111, 1_011), hopper3 = (112, 1_012);
        List<(int, long)> found = Expand(
            [Link(hopper1, Root, alive: false), Link(hopper2, hopper1, alive: false), Link(hopper3, hopper2)],
            Proc(100, 50, 1_000), Proc(112, 1, 1_012));

        Assert.Equal([hopper3], found);
    }

    [Fact]
    public void AnExitedRootSplicedOutIsFollowedThroughItsHeirs()
    {
        // The root and its child exited; the grandchild forked, splicing both out of the map: its own
        // entry names the root's creator now, and only heir links (lineage_heirs: the gone one as
        // creator, its heir as process) lead from the root to it.
        (int, long) rootsCreator = (50, 10), child = (120, 1_020), grandchild = (121, 1_021), itsChild = (122, 1_022);
        var known = new HashSet<(int Pid, long StartTicks)> { Root };
        List<(int, long)> found = StoppedTree.Expand(
            known,
            [Link(grandchild, rootsCreator), Link(itsChild, grandchild), Link(grandchild, Root), Link(grandchild, child)],
            new Dictionary<int, ProcfsStat> { [100] = Proc(100, 1, 3_000) }, // the root's pid is another's now
            _ => false);

        Assert.Equal([grandchild, itsChild], found);
    }
}
