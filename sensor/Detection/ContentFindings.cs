using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// A miner known by its bytes (<see cref="MinerContent"/>): the executable the
/// kernel ran carries two kinds of a miner's markers, whatever it is called
/// and wherever it came from (a memfd, a deleted file, an O_TMPFILE run
/// through fexecve or /proc/self/fd). Read in the same pass as the hash, off
/// the event thread, once per file version. One kind alone, or a packer's
/// mark, is weak evidence (<see cref="WeakFindings.OnMarkers"/>).
/// </summary>
public sealed class ContentFindings(Policy policy)
{
    /// <summary>
    /// Whether an exec's file is read for its markers though nothing else asks
    /// for its hash: a file staged where names say nothing (a memfd, a deleted
    /// file, a world-writable directory), while the rule is on.
    /// </summary>
    public bool Reads(ProcessEntry process) => process.Staging is not null && policy.ActionFor(Detectors.MinerContent) != RuleAction.Off;

    /// <summary>An acting finding when <paramref name="content"/>, read from the file <paramref name="process"/> runs, is a miner's.</summary>
    public AlertEvent? OnContent(ProcessEntry process, string path, string sha256, ContentVerdict content, long timeNs)
    {
        if (!content.IsMiner || policy.ActionFor(Detectors.MinerContent) == RuleAction.Off)
            return null;
        var evidence = new List<KeyValuePair<string, string>> { new("executable", path), new("sha256", sha256), new("markers", string.Join(", ", content.Markers)) };
        if (content.Packer is { } packer)
            evidence.Add(new("packer", packer));
        if (process.Staging is { } staging)
            evidence.Add(new("staging", staging));
        return new AlertEvent
        {
            Rule = Detectors.MinerContent.Name,
            Description = $"an executable carrying a miner's markers ({Kinds(content.Kinds)})",
            RequestedAction = policy.ActionFor(Detectors.MinerContent),
            Evidence = evidence,
            Process = process,
            TimeNs = timeNs,
        };
    }

    /// <summary>The kinds found, in words.</summary>
    public static string Kinds(MinerMarkerKinds kinds) => string.Join(" and ", new[]
    {
        (kinds & MinerMarkerKinds.Algorithm) != 0 ? "its algorithms" : null,
        (kinds & MinerMarkerKinds.Stratum) != 0 ? "Stratum methods" : null,
        (kinds & MinerMarkerKinds.Options) != 0 ? "a miner's options" : null,
    }.OfType<string>());
}
