using Guard.Sensor.Interop;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>The access group's rule: a directory root:GROUP 2750 is shared, and what Guard writes there is 0640 of that group.</summary>
public sealed class SharedDirectoryTests
{
    [Fact]
    public void AGroupIsANameInTheGroupFileOrANumberAndNeverRoots()
    {
        using var dir = new TempDir();
        string groups = dir.File("group", "root:x:0:\nops:x:1234:alice,bob\nbroken:x:notanumber:\n");
        Assert.Equal(1234u, SharedDirectory.GroupId("ops", groups));
        Assert.Equal(77u, SharedDirectory.GroupId("77", groups));
        Assert.Null(SharedDirectory.GroupId("root", groups));
        Assert.Null(SharedDirectory.GroupId("0", groups));
        Assert.Null(SharedDirectory.GroupId("broken", groups));
        Assert.Null(SharedDirectory.GroupId("nobody-here", groups));
    }

    [Fact]
    public void ADirectorySharedWithAGroupGivesItsFilesThatGroupAnd0640UntilUnshared()
    {
        if (Libc.GetEuid() != 0)
            throw new Xunit.Sdk.XunitException("chown to another group needs root (the tests run as root)");
        using var dir = new TempDir();
        string shared = Path.Combine(dir.Path, "shared");
        Directory.CreateDirectory(shared);
        Assert.Null(SharedDirectory.GroupOf(shared));
        Assert.Equal(SharedDirectory.PrivateFileMode, SharedDirectory.FileModeIn(shared));

        SharedDirectory.Share(shared, 4321);
        Assert.Equal(4321u, SharedDirectory.GroupOf(shared));
        Assert.Equal("2750 0 4321", Run.Complete("/usr/bin/stat", "-c", "%a %u %g", shared).Trim());
        string log = Path.Combine(shared, "actions.jsonl");
        using (AppendFile file = AppendFile.Open(log))
            Assert.Equal(3, file.Write("{}\n"u8, out _));
        Assert.Equal("640 0 4321", Run.Complete("/usr/bin/stat", "-c", "%a %u %g", log).Trim());

        // Unshared, the next open makes the file root's alone again (its group stays, without the read bit).
        SharedDirectory.Unshare(shared, 0x1ED);
        Assert.Null(SharedDirectory.GroupOf(shared));
        Assert.Equal("755 0 0", Run.Complete("/usr/bin/stat", "-c", "%a %u %g", shared).Trim());
        using (AppendFile file = AppendFile.Open(log))
            Assert.Equal(3, file.Write("{}\n"u8, out _));
        Assert.StartsWith("600 ", Run.Complete("/usr/bin/stat", "-c", "%a %u %g", log).Trim(), StringComparison.Ordinal);
    }
}
