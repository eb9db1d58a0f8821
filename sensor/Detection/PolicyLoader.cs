namespace Guard.Sensor.Detection;

/// <summary>Finds and reads the effective policy: the built-in one, with the system or given file laid over it.</summary>
public static class PolicyLoader
{
    public const string BuiltInName = "built-in";

    private static readonly Lazy<Policy> BuiltInPolicy = new(() =>
    {
        var errors = new List<PolicyError>();
        Policy policy = PolicyParser.Parse(BuiltInText(), BuiltInName, null, errors);
        // A broken built-in policy is a build defect, not a user error.
        return errors.Count == 0 ? policy : throw new InvalidOperationException("the built-in policy is invalid:\n" + string.Join("\n", errors));
    });

    private static readonly Lazy<string> BuiltInSha256 = new(() =>
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(BuiltInText()), writable: false);
        return Sha256.HexOf(stream);
    });

    public static Policy BuiltIn => BuiltInPolicy.Value;

    public static string BuiltInText()
    {
        using Stream stream = typeof(PolicyLoader).Assembly.GetManifestResourceStream("default-policy.toml")
            ?? throw new InvalidOperationException("the built-in policy is not embedded in this build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// The policy in force: <paramref name="path"/> over the built-in one; with
    /// no path, /etc/guard/policy.toml when it exists. Throws with every error.
    /// </summary>
    public static Policy Load(string? path) => Load(path, out _);

    /// <summary>
    /// As <see cref="Load(string?)"/>, with the SHA-256 (lowercase hex) of the
    /// bytes parsed: the file as read, so it matches <c>sha256sum FILE</c>, or
    /// the built-in policy's text when there is no file.
    /// </summary>
    public static Policy Load(string? path, out string sha256)
    {
        path ??= File.Exists(Policy.SystemPath) ? Policy.SystemPath : null;
        if (path is null)
        {
            sha256 = BuiltInSha256.Value;
            return BuiltIn;
        }
        string text;
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            using (var stream = new MemoryStream(bytes, writable: false))
                sha256 = Sha256.HexOf(stream);
            // As File.ReadAllText reads it: UTF-8, a byte order mark honoured.
            using var reader = new StreamReader(new MemoryStream(bytes, writable: false), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicyException([new PolicyError(path, 0, "-", $"cannot read the policy: {PolicyError.Unreadable(e)}")]);
        }
        var errors = new List<PolicyError>();
        Policy policy = PolicyParser.Parse(text, path, BuiltIn, errors);
        return errors.Count == 0 ? policy : throw new PolicyException(errors);
    }
}
