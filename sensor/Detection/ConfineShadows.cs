namespace Guard.Sensor.Detection;

/// <summary>
/// [[confine]] sections that can never confine a job: a job is confined by the
/// first section that selects it, so a later section every job of which an
/// earlier one selects first is dead. Told for one earlier section at a time,
/// entry by entry: each of the later section's job globs covered by one of the
/// earlier's (<see cref="GlobCovers"/>), each launcher, user and group named by
/// the earlier as written. Not told: a section covered only by several earlier
/// ones together, a user by name in one and by uid in the other, a launcher by
/// comm in one and by path in the other, a section shadowed in part.
/// </summary>
public static class ConfineShadows
{
    /// <summary>
    /// One warning line, SOURCE:confine: warning: ..., for each section of
    /// <paramref name="sections"/> (in policy order) that an earlier one shadows whole,
    /// naming both sections' file:line.
    /// </summary>
    public static IEnumerable<string> Warnings(IReadOnlyList<ConfineSection> sections)
    {
        for (int later = 1; later < sections.Count; later++)
        {
            ConfineSection b = sections[later];
            for (int earlier = 0; earlier < later; earlier++)
            {
                ConfineSection a = sections[earlier];
                if (Covers(a.Select, b.Select) is not { } why)
                    continue;
                yield return $"{b.Source}:confine: warning: every job this section selects is selected first by the section at {a.Source} ({why}): "
                    + "a job is confined by the first section that selects it, so this one confines nothing";
                break;
            }
        }
    }

    /// <summary>How <paramref name="a"/> selects every job <paramref name="b"/> does ("slurm:1" by "slurm:*", ...), or null when it may not.</summary>
    private static string? Covers(ConfineSelector a, ConfineSelector b)
    {
        if (b.Jobs.Count + b.Launchers.Count + b.Users.Count + b.Groups.Count == 0)
            return null;
        var why = new List<string>();
        foreach (string glob in b.Jobs)
        {
            if (a.Jobs.FirstOrDefault(g => GlobCovers(g, glob)) is not { } by)
                return null;
            why.Add($"\"{glob}\" by \"{by}\"");
        }
        foreach ((IReadOnlyList<string> mine, IReadOnlyList<string> theirs, string kind) in new[] { (b.Launchers, a.Launchers, "launcher"), (b.Users, a.Users, "user"), (b.Groups, a.Groups, "group") })
        {
            foreach (string name in mine)
            {
                if (!theirs.Contains(name, StringComparer.Ordinal))
                    return null;
                why.Add($"{kind} \"{name}\"");
            }
        }
        return string.Join(", ", why);
    }

    /// <summary>
    /// Whether job glob <paramref name="glob"/> matches every id job glob <paramref name="other"/>
    /// matches ('*' any run, '?' one character): <paramref name="other"/> read as text in which
    /// its '*' is matched only by a '*' of <paramref name="glob"/> and its '?' by a '?' or a '*'.
    /// "*" covers every glob, "slurm:*" covers "slurm:1" and "slurm:1*"; "slurm:1*" does not cover "slurm:*".
    /// </summary>
    public static bool GlobCovers(string glob, string other)
    {
        // As ConfineParser's glob match, with one backtrack point: linear enough for the globs a policy names.
        int g = 0, t = 0, star = -1, mark = 0;
        while (t < other.Length)
        {
            if (g < glob.Length && glob[g] != '*' && (glob[g] == '?' ? other[t] != '*' : glob[g] == other[t] && other[t] is not ('?' or '*')))
            {
                g++;
                t++;
            }
            else if (g < glob.Length && glob[g] == '*')
            {
                star = g++;
                mark = t;
            }
            else if (star >= 0)
            {
                g = star + 1;
                t = ++mark;
            }
            else
                return false;
        }
        while (g < glob.Length && glob[g] == '*')
            g++;
        return g == glob.Length;
    }
}
