using System.Text.Json;
using Guard.Sensor.Events;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Output;

/// <summary>An action as the log keeps it, for `guard status`.</summary>
/// <param name="Timestamp">@timestamp as written: UTC, yyyy-MM-ddTHH:mm:ss.ffffffZ.</param>
/// <param name="Action">event.action: kill, kill-job, quarantine, ...</param>
/// <param name="Succeeded">event.outcome was success.</param>
/// <param name="Message">event.reason: what happened, or why it was refused; empty when none.</param>
/// <param name="OrderedBy">guard.action.ordered_by.via: "cli" or a rule name.</param>
/// <param name="OrderedByUid">user.id: the person's uid (guard.action.ordered_by.uid in lines written before).</param>
public sealed record LoggedAction(string Timestamp, string Action, bool Succeeded, string Message, string OrderedBy, uint OrderedByUid);

/// <summary>
/// Every action any guard process took on this host (CLI kills, holds and
/// releases, a sensor's responses), as the same ECS lines it printed, in the
/// run directory (/run/guard, or GUARD_RUN_DIR): tmpfs, so it starts empty at
/// boot like the holds themselves. Several guard processes append to it at
/// once, each line one write(2) with O_APPEND, and whichever finds it full
/// rotates it (<see cref="RotatingFile"/>: mode 0600, gzip backups).
/// A convenience for `guard status`: failing to write it never fails an action.
/// </summary>
public sealed class ActionLog
{
    /// <summary>RUN_DIR/actions.jsonl (/run/guard, or GUARD_RUN_DIR), or GUARD_ACTION_LOG when set (tests keep their own).</summary>
    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("GUARD_ACTION_LOG") is { Length: > 0 } path ? path : Path.Join(RunDirectory.Path, "actions.jsonl");

    /// <summary>
    /// Rotated past 1 MiB into 5 gzip backups, by whichever process writes:
    /// fixed rather than configured, since one-shot commands (`guard kill`)
    /// append without reading the service's configuration.
    /// </summary>
    public static FileRotation Rotation { get; } = new(1 << 20, null, 5);

    private readonly EcsEncoder encoder;
    private readonly JsonLineWriter writer = new();
    private readonly string? path;
    private readonly QueuedOutput? queued;

    /// <summary>A log at <paramref name="path"/>, or <see cref="DefaultPath"/>, of lines from <paramref name="encoder"/>, written as each action is appended.</summary>
    public ActionLog(EcsEncoder encoder, string? path = null)
    {
        this.encoder = encoder;
        this.path = path ?? DefaultPath;
    }

    /// <summary>
    /// A log whose lines go through <paramref name="output"/>'s queue and
    /// thread (the sensor's: the thread that drains the ring never writes a
    /// file); the output writes to <see cref="Open"/>'s file.
    /// </summary>
    public ActionLog(EcsEncoder encoder, QueuedOutput output)
    {
        this.encoder = encoder;
        queued = output;
    }

    /// <summary>The target the sensor's action-log output writes to: <paramref name="path"/>, or <see cref="DefaultPath"/>, rotated as <see cref="Rotation"/> says.</summary>
    public static FileTarget Open(string? path = null) => new(new RotatingFile(path ?? DefaultPath, Rotation));

    /// <summary>Adds the action's ECS line; an I/O failure loses the copy (a queued log counts it).</summary>
    public void Append(ActionEvent action)
    {
        encoder.Encode(action, writer);
        if (queued is not null)
        {
            queued.Queue.TryAdd(writer.Written);
            queued.Queue.Wake();
            return;
        }
        // One-shot writers keep no descriptor open, and leave no backup half compressed.
        using var file = new RotatingFile(path!, Rotation);
        try
        {
            file.Append(writer.Written);
            file.WaitForCompression();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The action itself is done and was reported; only its copy here is lost.
        }
    }

    /// <summary>The latest <paramref name="count"/> actions, oldest first; lines that do not parse are skipped.</summary>
    public static IReadOnlyList<LoggedAction> Recent(int count, string? path = null)
    {
        path ??= DefaultPath;
        if (!File.Exists(path))
            return [];
        var recent = new List<LoggedAction>();
        List<string> lines = [.. File.ReadLines(path).TakeLast(count)];
        // Just rotated: the rest of the latest actions are in the newest backup.
        string backup = path + ".1.gz";
        if (lines.Count < count && File.Exists(backup))
        {
            try
            {
                lines.InsertRange(0, RotatingFile.ReadBackup(backup).TakeLast(count - lines.Count));
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                // A backup being written, or damaged: the current file's lines alone.
            }
        }
        foreach (string line in lines)
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                JsonElement root = doc.RootElement;
                JsonElement ev = root.GetProperty("event");
                JsonElement by = root.GetProperty("guard").GetProperty("action").GetProperty("ordered_by");
                recent.Add(new LoggedAction(
                    root.GetProperty("@timestamp").GetString() ?? "",
                    ev.GetProperty("action").GetString() ?? "",
                    ev.GetProperty("outcome").GetString() == "success",
                    ev.TryGetProperty("reason", out JsonElement reason) ? reason.GetString() ?? "" : "",
                    by.GetProperty("via").GetString() ?? "",
                    OrderedByUid(root, by)));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or OverflowException)
            {
                // A line cut short by a crash, or written by another version.
            }
        }
        return recent;
    }

    /// <summary>Who ordered a logged action: user.id, or guard.action.ordered_by.uid as lines written before it had.</summary>
    private static uint OrderedByUid(JsonElement line, JsonElement orderedBy) =>
        line.TryGetProperty("user", out JsonElement user)
            ? uint.Parse(user.GetProperty("id").GetString() ?? "", System.Globalization.CultureInfo.InvariantCulture)
            : orderedBy.GetProperty("uid").GetUInt32();
}
