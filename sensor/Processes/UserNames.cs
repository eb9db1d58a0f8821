using System.Globalization;

namespace Guard.Sensor.Processes;

/// <summary>uid to login name from /etc/passwd, read once and again when a uid is new to it.</summary>
public sealed class UserNames
{
    private readonly string passwd;
    private Dictionary<uint, string> names = [];
    private DateTime loadedAt = DateTime.MinValue;

    public UserNames(string passwd = "/etc/passwd") => this.passwd = passwd;

    public string? NameOf(uint uid)
    {
        if (names.TryGetValue(uid, out string? name))
            return name;
        // An unknown uid may be a user added since: reload at most once a minute.
        if (DateTime.UtcNow - loadedAt < TimeSpan.FromMinutes(1))
            return null;
        Load();
        return names.GetValueOrDefault(uid);
    }

    private void Load()
    {
        loadedAt = DateTime.UtcNow;
        var loaded = new Dictionary<uint, string>();
        try
        {
            foreach (string line in File.ReadLines(passwd))
            {
                string[] f = line.Split(':');
                if (f.Length > 2 && uint.TryParse(f[2], CultureInfo.InvariantCulture, out uint uid))
                    loaded.TryAdd(uid, f[0]);
            }
        }
        catch (IOException)
        {
        }
        names = loaded;
    }
}
