using System.Globalization;
using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>A person's answer to a request, as <c>guard approve</c> or <c>guard deny</c> wrote it.</summary>
/// <param name="Id">The request's id (<see cref="ApprovalRequest.IsId"/>).</param>
/// <param name="Approve">True to approve, false to deny.</param>
/// <param name="ForSeconds">Approve: for how long; 0 for the job's life.</param>
/// <param name="FileOwner">The uid that owned the decision file: who wrote it (root, or a user with the capabilities).</param>
/// <param name="SudoUid">SUDO_UID of the command, when it ran under sudo.</param>
public sealed record ApprovalDecision(string Id, bool Approve, long ForSeconds, uint FileOwner, uint? SudoUid);

/// <summary>
/// How <c>guard approve</c>, <c>guard deny</c> and <c>guard approvals</c> talk
/// to the running sensor: files in RUN_DIR/approvals, a directory of mode 0700
/// that root owns, so no monitored process can read, write or race in it.
/// The sensor keeps its requests in <c>list</c> (JSON lines, written whole and
/// renamed). A decision is <c>ID.decision</c> (one line, written whole under
/// another name and renamed); the sensor looks every 100 ms, reads it without
/// following a link and at most <see cref="MaxDecisionBytes"/>, removes it,
/// and answers in <c>ID.answer</c> (ok or refused, then one line), which the
/// command waits for, prints and removes.
/// </summary>
public static class ApprovalChannel
{
    /// <summary>The most a decision file may hold: "approve 8640000 4294967295\n" and room.</summary>
    public const int MaxDecisionBytes = 128;

    /// <summary>The most an answer file may hold.</summary>
    public const int MaxAnswerBytes = 4096;

    /// <summary>The most decisions the sensor takes in one look: a flood waits for the next.</summary>
    public const int DecisionsPerLook = 32;

    /// <summary>How long a command waits for the sensor's answer: it looks every 100 ms.</summary>
    public static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(5);

    /// <summary>RUN_DIR/approvals.</summary>
    public static string Directory => Path.Join(RunDirectory.Path, "approvals");

    /// <summary>The sensor's list of requests.</summary>
    public static string ListFile => Path.Join(Directory, "list");

    /// <summary>
    /// Creates the directory (mode 0700) when it is not there, and checks that it is
    /// a directory (not a link) that root or this user owns, closed to everyone else.
    /// Throws <see cref="SensorException"/> when it is anything else.
    /// </summary>
    public static string Ensure()
    {
        string dir = Directory;
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Guard runs on Linux");
        RunDirectory.Ensure();
        if (!System.IO.Directory.Exists(dir) && !File.Exists(dir))
            System.IO.Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Check(dir);
        return dir;
    }

    private static void Check(string dir)
    {
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("Guard runs on Linux");
        var info = new DirectoryInfo(dir);
        if (!info.Exists || info.LinkTarget is not null)
            throw new SensorException($"{dir} is not a directory: remove it, the sensor makes it again");
        if (Libc.OwnerOf(dir) is not uint owner || (owner != 0 && owner != Libc.GetEuid()))
            throw new SensorException($"{dir} is not root's: remove it, the sensor makes it again");
        if ((info.UnixFileMode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute)) != 0)
            info.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    }

    /// <summary>The decision line of <paramref name="decision"/>: "approve SECONDS SUDO_UID" or "deny 0 SUDO_UID", "-" for no SUDO_UID.</summary>
    public static string LineOf(bool approve, long forSeconds, uint? sudoUid) =>
        string.Create(CultureInfo.InvariantCulture, $"{(approve ? "approve" : "deny")} {(approve ? forSeconds : 0)} {(sudoUid is { } u ? u.ToString(CultureInfo.InvariantCulture) : "-")}\n");

    /// <summary>A decision line read back; null when it is not one (the sensor refuses it).</summary>
    public static ApprovalDecision? ParseLine(string id, string text, uint owner)
    {
        string[] f = text.TrimEnd('\n').Split(' ');
        if (f.Length != 3 || f[0] is not ("approve" or "deny")
            || !long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out long seconds) || seconds > MaxApprovalSeconds)
            return null;
        uint? sudo = null;
        if (f[2] != "-")
        {
            if (!uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint u))
                return null;
            sudo = u;
        }
        return new ApprovalDecision(id, f[0] == "approve", seconds, owner, sudo);
    }

    /// <summary>The longest <c>--for</c>: 100 days; for longer, write the destination into the policy.</summary>
    public const long MaxApprovalSeconds = 100L * 86400;

    /// <summary>
    /// Writes a decision for the sensor and waits up to <see cref="AnswerTimeout"/> for its answer:
    /// (true, line) when it was carried out, (false, line) when the sensor refused it.
    /// Throws <see cref="SensorException"/> when it cannot be written, or no answer came in time.
    /// </summary>
    public static (bool Done, string Line) Submit(string id, bool approve, long forSeconds, uint? sudoUid)
    {
        if (!ApprovalRequest.IsId(id))
            throw new ArgumentException("not a request id", nameof(id));
        string dir = Ensure();
        string answer = Path.Join(dir, id + ".answer");
        TryDelete(answer);
        string temporary = Path.Join(dir, $".{id}.{ApprovalRequest.NewId()}.new");
        try
        {
            // CreateNew is O_CREAT | O_EXCL: it never follows a link, nor opens a file that is there.
            using (var f = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                f.Write(Encoding.ASCII.GetBytes(LineOf(approve, forSeconds, sudoUid)));
            File.Move(temporary, Path.Join(dir, id + ".decision"), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw new SensorException($"cannot write the decision in {dir}: {e.Message}");
        }
        DateTime deadline = DateTime.UtcNow + AnswerTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (ReadSmall(dir, id + ".answer", MaxAnswerBytes) is { } text)
            {
                TryDelete(answer);
                string[] lines = text.Split('\n', 2);
                return (lines[0] == "ok", lines.Length > 1 ? lines[1].TrimEnd('\n') : "");
            }
            Thread.Sleep(20);
        }
        // Not taken: nothing is left for a later sensor to act on unasked.
        TryDelete(Path.Join(dir, id + ".decision"));
        throw new SensorException($"no running guard watch answered within {AnswerTimeout.TotalSeconds:F0} s (is it running with an ask section? see guard status)");
    }

    /// <summary>The decisions waiting, each read once and removed; a file that is not one (a link, too big, not root's, malformed) is removed and answered refused.</summary>
    public static List<ApprovalDecision> TakeDecisions()
    {
        var taken = new List<ApprovalDecision>();
        string dir;
        try
        {
            dir = Ensure();
        }
        catch (Exception e) when (e is SensorException or IOException or UnauthorizedAccessException)
        {
            return taken;
        }
        IEnumerable<string> names;
        try
        {
            names = [.. System.IO.Directory.EnumerateFiles(dir, "*.decision").Select(Path.GetFileName).OfType<string>().Take(DecisionsPerLook)];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return taken;
        }
        foreach (string name in names)
        {
            string id = name[..^".decision".Length];
            string path = Path.Join(dir, name);
            uint? owner = Libc.OwnerOf(path);
            string? text = ReadSmall(dir, name, MaxDecisionBytes);
            TryDelete(path);
            if (!ApprovalRequest.IsId(id))
                continue; // no id, no answer file: nothing to say it to
            ApprovalDecision? decision = text is null || owner is not uint uid || (uid != 0 && uid != Libc.GetEuid()) ? null : ParseLine(id, text, uid);
            if (decision is null)
                Answer(id, false, $"guard: the decision for {id} was not one (a link, too long, not root's, or malformed): refused");
            else
                taken.Add(decision);
        }
        return taken;
    }

    /// <summary>Answers the decision on <paramref name="id"/>: ok or refused, and one line for the person.</summary>
    public static void Answer(string id, bool done, string line)
    {
        if (!ApprovalRequest.IsId(id))
            return;
        WriteWhole(Path.Join(Directory, id + ".answer"), $"{(done ? "ok" : "refused")}\n{line.ReplaceLineEndings(" ")}\n");
    }

    /// <summary>How long an answer waits for its command: one that gave up (after <see cref="AnswerTimeout"/>) never reads it.</summary>
    public static readonly TimeSpan AnswerLifetime = TimeSpan.FromMinutes(1);

    /// <summary>Removes answers (and half-written files of a command killed midway) older than <see cref="AnswerLifetime"/>.</summary>
    public static void RemoveStale()
    {
        try
        {
            DateTime before = DateTime.UtcNow - AnswerLifetime;
            foreach (string file in System.IO.Directory.EnumerateFiles(Directory).Where(f => f.EndsWith(".answer", StringComparison.Ordinal) || f.EndsWith(".new", StringComparison.Ordinal)).Take(256).ToList())
            {
                if (File.GetLastWriteTimeUtc(file) < before)
                    TryDelete(file);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Tried again in a second.
        }
    }

    /// <summary>Writes the sensor's list of requests, one JSON object a line.</summary>
    public static void WriteList(IEnumerable<ApprovalRequest> requests)
    {
        var text = new StringBuilder();
        foreach (ApprovalRequest r in requests)
            text.Append(r.ToJson()).Append('\n');
        WriteWhole(ListFile, text.ToString());
    }

    /// <summary>Removes the list: no sensor holds requests any more.</summary>
    public static void RemoveList() => TryDelete(ListFile);

    /// <summary>The requests the running sensor holds; null when it keeps no list (none runs with an ask section).</summary>
    public static List<ApprovalListing>? ReadList()
    {
        string file = ListFile;
        if (Libc.OwnerOf(file) is not uint owner || (owner != 0 && owner != Libc.GetEuid()))
            return null;
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(ApprovalListing.Parse).OfType<ApprovalListing>()];
    }

    private static void WriteWhole(string file, string text)
    {
        string temporary = $"{file}.{ApprovalRequest.NewId()}.new";
        try
        {
            using (var f = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                f.Write(Encoding.UTF8.GetBytes(text));
            File.Move(temporary, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
        }
    }

    /// <summary>A small regular file in <paramref name="dir"/>, read without following a link; null when it is not one, or longer than <paramref name="max"/> bytes.</summary>
    private static string? ReadSmall(string dir, string name, int max)
    {
        try
        {
            using FileDescriptor directory = FileDescriptor.OpenDirectory(dir);
            using FileDescriptor? handle = directory.OpenPathOnlyIn(name, out _);
            if (handle?.Status(out _) is not { IsRegular: true } status || status.Size > max)
                return null;
            using FileDescriptor? reading = handle.ReopenForReading(out _);
            if (reading is null)
                return null;
            byte[] buffer = new byte[max + 1];
            int n = reading.Read(buffer);
            return n < 0 || n > max ? null : Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (SensorException)
        {
            return null;
        }
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Gone already, or the directory went: nothing to remove.
        }
    }
}
