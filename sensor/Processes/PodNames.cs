namespace Guard.Sensor.Processes;

/// <summary>
/// A Kubernetes pod's name and namespace from its UID, read from what the
/// node's kubelet keeps: the pod log directory /var/log/pods/NAMESPACE_NAME_UID
/// (made by the kubelet; the pod cannot rename it), else the pod's own
/// directory /var/lib/kubelet/pods/UID (the service account volume's
/// `namespace` file and the name in the kubelet's etc-hosts, which the pod can
/// rewrite: both must be DNS-1123 names or are not used). Neither readable:
/// null, never a failure. At most <see cref="Capacity"/> pods are remembered.
/// </summary>
public sealed class PodNames
{
    /// <summary>Pods remembered (found or not) before the memory starts again.</summary>
    public const int Capacity = 4096;

    private const int UidLength = 36;
    private const int MaxNameLength = 253;
    private const int MaxNamespaceLength = 63;
    private const int MaxFileBytes = 4096;

    private readonly string logRoot;
    private readonly string kubeletRoot;
    private readonly Dictionary<string, (string Namespace, string Name)?> known = [];

    /// <summary>Reads pod log directories under <paramref name="logRoot"/> and pod directories under <paramref name="kubeletRoot"/>.</summary>
    public PodNames(string logRoot, string kubeletRoot)
    {
        this.logRoot = logRoot;
        this.kubeletRoot = kubeletRoot;
    }

    /// <summary>The node's: /var/log/pods and /var/lib/kubelet/pods.</summary>
    public static PodNames ForThisHost() => new("/var/log/pods", "/var/lib/kubelet/pods");

    /// <summary>The namespace and name of the pod with <paramref name="uid"/> (8-4-4-4-12 lower-case hex, '-' separated); null when neither directory says.</summary>
    public (string Namespace, string Name)? Find(string uid)
    {
        if (!IsUid(uid))
            return null;
        if (known.TryGetValue(uid, out var found))
            return found;
        found = FromLogDirectory(uid) ?? FromKubeletDirectory(uid);
        if (known.Count >= Capacity)
            known.Clear();
        known[uid] = found;
        return found;
    }

    private (string, string)? FromLogDirectory(string uid)
    {
        try
        {
            foreach (string dir in Directory.EnumerateDirectories(logRoot, "*_" + uid))
            {
                string[] parts = Path.GetFileName(dir).Split('_');
                if (parts.Length == 3 && IsLabel(parts[0], MaxNamespaceLength) && IsSubdomain(parts[1]))
                    return (parts[0], parts[1]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No kubelet here, or not readable: the kubelet directory is tried.
        }
        return null;
    }

    private (string, string)? FromKubeletDirectory(string uid)
    {
        try
        {
            string pod = Path.Combine(kubeletRoot, uid);
            string? ns = null;
            string projected = Path.Combine(pod, "volumes", "kubernetes.io~projected");
            if (Directory.Exists(projected))
            {
                foreach (string volume in Directory.EnumerateDirectories(projected))
                {
                    string file = Path.Combine(volume, "namespace");
                    if (File.Exists(file) && ReadSmall(file).Trim() is { } text && IsLabel(text, MaxNamespaceLength))
                    {
                        ns = text;
                        break;
                    }
                }
            }
            string hosts = Path.Combine(pod, "etc-hosts");
            if (ns is null || !File.Exists(hosts))
                return null;
            // The kubelet's last line: "IP\tHOSTNAME" (the pod's name unless spec.hostname says otherwise).
            string? last = ReadSmall(hosts).Split('\n').LastOrDefault(l => l.Length > 0 && !l.StartsWith('#'));
            string[] fields = last?.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries) ?? [];
            return fields.Length >= 2 && IsSubdomain(fields[1]) ? (ns, fields[1]) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>At most <see cref="MaxFileBytes"/> of a file the pod may have written.</summary>
    private static string ReadSmall(string path)
    {
        using FileStream f = File.OpenRead(path);
        byte[] buffer = new byte[MaxFileBytes];
        int n = f.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return System.Text.Encoding.UTF8.GetString(buffer, 0, n);
    }

    private static bool IsUid(string uid) =>
        uid.Length == UidLength && uid.Select((c, i) => i is 8 or 13 or 18 or 23 ? c == '-' : char.IsAsciiDigit(c) || c is >= 'a' and <= 'f').All(ok => ok);

    /// <summary>A DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit.</summary>
    private static bool IsLabel(string text, int max) =>
        text.Length is > 0 && text.Length <= max && char.IsAsciiLetterOrDigit(text[0]) && char.IsAsciiLetterOrDigit(text[^1])
        && text.All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c) || c == '-');

    /// <summary>A DNS-1123 subdomain: labels joined by '.', 253 characters at most.</summary>
    private static bool IsSubdomain(string text) =>
        text.Length is > 0 and <= MaxNameLength && text.Split('.').All(label => IsLabel(label, 63));
}
