using System.Globalization;

namespace Guard.Sensor.Processes;

/// <summary>
/// User and group names as this host's files list them (/etc/passwd, /etc/group),
/// the way the sensor resolves a [[confine]] section's users and groups: not
/// through NSS, so a user only a directory service (LDAP, SSSD) knows is not found.
/// </summary>
/// <param name="Passwd">The passwd file (name:x:uid:...).</param>
/// <param name="Group">The group file (name:x:gid:...).</param>
public sealed record LocalAccounts(string Passwd = "/etc/passwd", string Group = "/etc/group")
{
    /// <summary>This host's /etc/passwd and /etc/group.</summary>
    public static LocalAccounts Host { get; } = new();

    /// <summary>The uid of user <paramref name="nameOrNumber"/> (a number is its own uid); null when unknown.</summary>
    public uint? UserId(string nameOrNumber) => IdFromFile(nameOrNumber, Passwd);

    /// <summary>The gid of group <paramref name="nameOrNumber"/> (a number is its own gid); null when unknown.</summary>
    public uint? GroupId(string nameOrNumber) => IdFromFile(nameOrNumber, Group);

    /// <summary>A name, or a number, resolved through <paramref name="file"/> (passwd or group form: the id is the third field); null when unknown or unreadable.</summary>
    public static uint? IdFromFile(string name, string file)
    {
        if (uint.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
            return id;
        try
        {
            foreach (string line in File.Exists(file) ? File.ReadLines(file) : [])
            {
                string[] f = line.Split(':');
                if (f.Length > 2 && f[0] == name && uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out id))
                    return id;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }
}
