using System.Diagnostics;
using System.Text;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Unit;

/// <summary>
/// The executable is read as the kernel ran it or not at all: never a FIFO, a
/// device, the sensor's own descriptor or another file at its path; never past
/// its size bound or time limit; and a full queue or a hung read comes back as
/// an outcome, not a stall.
/// </summary>
public sealed class ExecutableHashesTests
{
    private static FileId IdOf(string path)
    {
        using FileDescriptor file = FileDescriptor.OpenPathOnly(path, out int errno) ?? throw new IOException($"{path}: errno {errno}");
        return file.Status(out _)!.Value.Id;
    }

    /// <summary>A process as the exec record would describe it: its pid, the file exec opened, the path it was given.</summary>
    private static ProcessEntry Exec(int pid, string path, FileId file) =>
        new(pid, 1, $"test-1-{pid}", ProcessOrigin.Exec) { Executable = Encoding.UTF8.GetBytes(path), ExecutableFile = file };

    /// <summary>A process that ran <paramref name="program"/> and is gone: its pid and when it exec'd (CLOCK_BOOTTIME ns).</summary>
    private static (int Pid, long ExecNs) Gone(string program)
    {
        // Change times tick coarsely: the exec is clearly after the file, and what replaces it clearly after the exec.
        Thread.Sleep(20);
        long execNs = Libc.NowNs(Libc.ClockBoottime);
        using Process p = Run.Start(program);
        p.WaitForExit();
        Thread.Sleep(20);
        return (p.Id, execNs);
    }

    private static string Copy(TempDir dir, string program, string name)
    {
        string path = Path.Combine(dir.Path, name);
        File.Copy(program, path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static HashOutcome HashOf(ProcessEntry process, long execNs, TimeSpan? limit = null)
    {
        using var hashes = new ExecutableHashes(timeLimit: limit);
        using HashRequest request = HashRequest.For(process, execNs, null);
        return hashes.Hash(request);
    }

    [Fact]
    public void ARunningProcessIsHashedThroughWhatItRunsWhateverItsPathNamesNow()
    {
        using var dir = new TempDir();
        string program = Copy(dir, "/bin/sleep", "runner");
        string expected = Sha256.HexOf(File.ReadAllBytes(program));
        FileId id = IdOf(program);
        using Process running = Run.Start(program, "30");
        try
        {
            File.Delete(program);
            Run.Complete("mkfifo", program);
            HashOutcome outcome = HashOf(Exec(running.Id, program, id), Libc.NowNs(Libc.ClockBoottime));
            Assert.Equal(expected, outcome.Sha256);
        }
        finally
        {
            running.Kill();
        }
    }

    [Fact]
    public void AGoneProcessIsHashedThroughItsPathOnlyWhileThatNamesTheSameFile()
    {
        using var dir = new TempDir();
        string program = Copy(dir, "/bin/true", "quick");
        FileId id = IdOf(program);
        (int pid, long execNs) = Gone(program);

        Assert.Equal(Sha256.HexOf(File.ReadAllBytes(program)), HashOf(Exec(pid, program, id), execNs).Sha256);

        // Through symlinks, relative and absolute, each followed by hand.
        string links = Path.Combine(dir.Path, "links");
        Directory.CreateDirectory(links);
        File.CreateSymbolicLink(Path.Combine(links, "relative"), "../quick");
        File.CreateSymbolicLink(Path.Combine(links, "absolute"), Path.Combine(links, "relative"));
        Assert.Equal(Sha256.HexOf(File.ReadAllBytes(program)), HashOf(Exec(pid, Path.Combine(links, "absolute"), id), execNs).Sha256);

        // Another file at the same path, even one that reuses the freed inode number.
        File.Delete(program);
        File.WriteAllText(program, "another file");
        Assert.Equal(NotHashed.Gone, HashOf(Exec(pid, program, id), execNs).Why);
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("/dev/zero")]
    [InlineData("/dev/null")]
    public void APathThatNamesAFifoOrADeviceIsNeverOpenedForReading(string kind)
    {
        using var dir = new TempDir();
        string program = Copy(dir, "/bin/true", "quick");
        FileId id = IdOf(program);
        (int pid, long execNs) = Gone(program);
        File.Delete(program);
        if (kind == "fifo")
            Run.Complete("mkfifo", program);
        else
            File.CreateSymbolicLink(program, kind);

        Stopwatch took = Stopwatch.StartNew();
        HashOutcome outcome = HashOf(Exec(pid, program, id), execNs);
        Assert.Equal(NotHashed.Gone, outcome.Why);
        Assert.True(took.Elapsed < TimeSpan.FromSeconds(1), $"took {took.Elapsed}");
    }

    [Fact]
    public void ADescriptorPathNamesTheSensorsOwnDescriptorAndIsNeverRead()
    {
        using var dir = new TempDir();
        string program = Copy(dir, "/bin/true", "quick");
        FileId id = IdOf(program);
        (int pid, long execNs) = Gone(program);
        // A pipe of ours, with a byte waiting: what /dev/fd/N names in this process.
        using var server = new System.IO.Pipes.AnonymousPipeServerStream(System.IO.Pipes.PipeDirection.Out);
        using var client = new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, server.ClientSafePipeHandle);
        server.WriteByte(42);
        string ownFd = $"/dev/fd/{client.SafePipeHandle.DangerousGetHandle()}";

        Assert.Equal(NotHashed.Gone, HashOf(Exec(pid, ownFd, id), execNs).Why);
        Assert.Equal(NotHashed.Gone, HashOf(Exec(pid, $"/proc/self/fd/{client.SafePipeHandle.DangerousGetHandle()}", id), execNs).Why);
        Assert.Equal(42, client.ReadByte());
    }

    [Fact]
    public void AFileOverTheBoundOrPastTheTimeLimitIsNotHashedAndSaysWhy()
    {
        using var dir = new TempDir();
        string huge = Path.Combine(dir.Path, "huge");
        using (var f = File.Create(huge))
            f.SetLength(ExecutableHashes.MaxBytes + 1); // sparse: nothing is read to find it too large
        (int pid, long execNs) = Gone("/bin/true");
        Assert.Equal(NotHashed.TooLarge, HashOf(Exec(pid, huge, IdOf(huge)), execNs).Why);

        string slow = Copy(dir, "/bin/true", "slow");
        (pid, execNs) = Gone(slow);
        Assert.Equal(NotHashed.TimedOut, HashOf(Exec(pid, slow, IdOf(slow)), execNs, TimeSpan.Zero).Why);
    }

    [Fact]
    public void AHungReadIsTimedOutItsWorkerReplacedAndAFullQueueDropsWithACount()
    {
        using var release = new ManualResetEventSlim();
        using var hanging = new SemaphoreSlim(0);
        using var hashes = new ExecutableHashes(capacity: 1, TimeSpan.FromMilliseconds(100), request =>
        {
            if ((string)request.State! == "hangs")
            {
                hanging.Release();
                release.Wait(); // a read no one can interrupt
            }
            return new HashOutcome(request, "hash", NotHashed.None);
        });
        var outcomes = new List<HashOutcome>();
        ProcessEntry process = Exec(Gone("/bin/true").Pid, "/bin/true", IdOf("/bin/true"));
        try
        {
            // Two workers: both hang; one more waits in the queue, and the next is dropped.
            for (int i = 0; i < 2; i++)
            {
                hashes.Submit(HashRequest.For(process, null, "hangs"));
                Assert.True(hanging.Wait(5000), "no worker took the request");
            }
            hashes.Submit(HashRequest.For(process, null, "waits"));
            hashes.Submit(HashRequest.For(process, null, "dropped"));
            Stopwatch waited = Stopwatch.StartNew();
            while (outcomes.Count < 4 && waited.Elapsed < TimeSpan.FromSeconds(5))
            {
                Thread.Sleep(20);
                hashes.Drain(outcomes);
            }
            Assert.Equal(NotHashed.QueueFull, outcomes.Single(o => (string)o.Request.State! == "dropped").Why);
            Assert.All(outcomes.Where(o => (string)o.Request.State! == "hangs"), o => Assert.Equal(NotHashed.TimedOut, o.Why));
            Assert.Equal("hash", outcomes.Single(o => (string)o.Request.State! == "waits").Sha256);
            Assert.Equal(1, hashes.Dropped);
            Assert.Equal(2, hashes.TimedOut);
        }
        finally
        {
            release.Set();
        }
    }
}
