using System.Text.Json;
using Guard.Sensor.Events;

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
/// releases, a sensor's responses), as the same ECS lines it printed, in
/// /run/guard: tmpfs, so it starts empty at boot like the holds themselves.
/// A convenience for `guard status`: failing to write it never fails an action.
/// </summary>
public sealed class ActionLog
{
    /// <summary>/run/guard/actions.jsonl, or GUARD_ACTION_LOG when set (tests keep their own).</summary>
    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("GUARD_ACTION_LOG") is { Length: > 0 } path ? path : "/run/guard/actions.jsonl";

    /// <summary>Past 1 MiB the log moves to PATH.1 (replacing the one before) and starts again.</summary>
    private const long RotateBytes = 1 << 20;

    private readonly string path;
    private readonly EcsEncoder encoder;
    private readonly JsonLineWriter writer = new();

    /// <summary>A log at <paramref name="path"/>, or <see cref="DefaultPath"/>, of lines from <paramref name="encoder"/>.</summary>
    public ActionLog(EcsEncoder encoder, string? path = null)
    {
        this.encoder = encoder;
        this.path = path ?? DefaultPath;
    }

    /// <summary>Adds the action's ECS line; an I/O failure loses the copy silently.</summary>
    public void Append(ActionEvent action)
    {
        encoder.Encode(action, writer);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path) && new FileInfo(path).Length > RotateBytes)
                File.Move(path, path + ".1", overwrite: true);
            using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            file.Write(writer.Written);
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
        foreach (string line in File.ReadLines(path).TakeLast(count))
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
