using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Response;

/// <summary>What an approval request asks for: a destination (connect or send) or a program (exec).</summary>
public enum ApprovalKind
{
    /// <summary>An address, port and protocol the job was denied.</summary>
    Destination,

    /// <summary>A program (its path, file and SHA-256) the job was denied to run.</summary>
    Program,
}

/// <summary>Where a request stands: waiting for a person, or approved and in force.</summary>
public enum ApprovalState
{
    /// <summary>Raised, not answered yet; the call it stands for fails meanwhile.</summary>
    Pending,

    /// <summary>Approved: the destination or program is on the job's allow list until <see cref="ApprovalRequest.AllowedUntilNs"/>.</summary>
    Approved,
}

/// <summary>
/// One approval request of an <c>ask</c> section: the job, the process that
/// was denied and its lineage, and the destination or the program; how often
/// it was denied meanwhile, and when the request expires. Its id is random
/// (<see cref="NewId"/>), so a job cannot guess the id of a request to come.
/// The sensor writes the requests it holds as JSON lines (<see cref="ToJson"/>)
/// for <c>guard approvals</c>; every string in them came from a monitored
/// process and is printed through <see cref="Printable"/> only.
/// </summary>
public sealed class ApprovalRequest
{
    /// <summary>A Unix time in ms as ISO 8601 (round-trip form), as approvals are listed and reported.</summary>
    public static string Iso(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("O", CultureInfo.InvariantCulture);

    /// <summary>Characters of an id: RFC 4648 base32 in lower case (no 0, 1, 8, 9: never read as o, l, b, g).</summary>
    public const string IdAlphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>Characters in an id: 12 of 32, 60 random bits.</summary>
    public const int IdLength = 12;

    /// <summary>The request's id, <see cref="IdLength"/> characters of <see cref="IdAlphabet"/>.</summary>
    public required string Id { get; init; }

    /// <summary>A destination or a program.</summary>
    public required ApprovalKind Kind { get; init; }

    /// <summary>The job's own rule set in the kernel: what an approval is added to.</summary>
    public required uint JobSet { get; init; }

    /// <summary>The job as Guard names it (slurm:N, tree:ENTITY_ID); null when unknown.</summary>
    public string? JobId { get; init; }

    /// <summary>The [[confine]] section that denied it.</summary>
    public required string Section { get; init; }

    /// <summary>file:line of the section's header.</summary>
    public string SectionSource { get; init; } = "";

    /// <summary>The denied process's pid; 0 when the kernel did not say (a packet at egress).</summary>
    public int Pid { get; init; }

    /// <summary>The denied process's start in clock ticks, as /proc shows it (0 when unknown).</summary>
    public long StartTicks { get; init; }

    /// <summary>Its name (comm), as the job set it: hostile text.</summary>
    public string ProcessName { get; init; } = "";

    /// <summary>Its program's path; empty when unknown.</summary>
    public string ProcessExecutable { get; init; } = "";

    /// <summary>The process's ancestors, parent first, each "PID NAME".</summary>
    public IReadOnlyList<string> Lineage { get; init; } = [];

    /// <summary>Destination: 16 bytes, IPv6 or IPv4 v4-mapped.</summary>
    public byte[] Address { get; init; } = new byte[16];

    /// <summary>Destination: the port, host order.</summary>
    public ushort Port { get; init; }

    /// <summary>Destination: IPPROTO_TCP 6 or IPPROTO_UDP 17.</summary>
    public byte Protocol { get; init; }

    /// <summary>Program: the path it ran from (the process's program, else the path the exec named).</summary>
    public string? ProgramPath { get; init; }

    /// <summary>Program: the file the kernel ran (device, inode): what an approval names.</summary>
    public FileId? ProgramFile { get; init; }

    /// <summary>Program: the file's SHA-256 when the request was raised, lowercase hex; null when it could not be read as that file.</summary>
    public string? Sha256 { get; init; }

    /// <summary>Denials counted for this request: the first, and every retry while it waits.</summary>
    public ulong Count { get; set; }

    /// <summary>When raised, CLOCK_BOOTTIME ns (the Unix ms fields are for people).</summary>
    public long RaisedNs { get; init; }

    /// <summary>When it expires unanswered, CLOCK_BOOTTIME ns.</summary>
    public long ExpiresNs { get; init; }

    /// <summary>When raised, Unix ms.</summary>
    public long RaisedUnixMs { get; init; }

    /// <summary>When it expires unanswered, Unix ms.</summary>
    public long ExpiresUnixMs { get; init; }

    /// <summary>Pending, or approved and in force.</summary>
    public ApprovalState State { get; set; }

    /// <summary>Approved: until when, CLOCK_BOOTTIME ns; 0: the job's life.</summary>
    public long AllowedUntilNs { get; set; }

    /// <summary>Approved: until when, Unix ms; 0: the job's life.</summary>
    public long AllowedUntilUnixMs { get; set; }

    /// <summary>Approved: the uid that approved it.</summary>
    public uint ApprovedBy { get; set; }

    /// <summary>Whether, at <paramref name="nowNs"/> (CLOCK_BOOTTIME), the request waited past its expiry unanswered.</summary>
    public bool ExpiredAt(long nowNs) => State == ApprovalState.Pending && ExpiresNs <= nowNs;

    /// <summary>Whether, at <paramref name="nowNs"/>, an approval for a time has reached its end (one for the job's life never does).</summary>
    public bool AllowEndedAt(long nowNs) => State == ApprovalState.Approved && AllowedUntilNs != 0 && AllowedUntilNs <= nowNs;

    /// <summary>The key that makes a retry the same request: job set and destination, or job set and file.</summary>
    public string Key => KeyOf(Kind, JobSet, Address, Port, Protocol, ProgramFile);

    /// <summary>The destination as a person reads it: tcp 10.0.0.5:443, udp [2001:db8::1]:53.</summary>
    public string Destination
    {
        get
        {
            var ip = new IPAddress(Address);
            string host = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4().ToString() : $"[{ip}]";
            return string.Create(CultureInfo.InvariantCulture, $"{ProtocolName(Protocol)} {host}:{Port}");
        }
    }

    /// <summary>What is asked for, in one line: a destination, or a program with its hash.</summary>
    public string What => Kind == ApprovalKind.Destination ? Destination : $"exec {ProgramPath} (sha256 {Sha256 ?? "unknown"})";

    /// <summary>tcp, udp, or the protocol's number.</summary>
    public static string ProtocolName(byte protocol) => protocol switch { 6 => "tcp", 17 => "udp", _ => protocol.ToString(CultureInfo.InvariantCulture) };

    /// <summary>See <see cref="Key"/>.</summary>
    public static string KeyOf(ApprovalKind kind, uint jobSet, byte[] address, ushort port, byte protocol, FileId? file) =>
        kind == ApprovalKind.Destination
            ? string.Create(CultureInfo.InvariantCulture, $"d|{jobSet}|{Convert.ToHexString(address)}|{port}|{protocol}")
            : string.Create(CultureInfo.InvariantCulture, $"p|{jobSet}|{file?.Device}|{file?.Inode}");

    /// <summary>A fresh id: <see cref="IdLength"/> characters drawn from the system's CSPRNG.</summary>
    public static string NewId() => RandomNumberGenerator.GetString(IdAlphabet, IdLength);

    /// <summary>Whether <paramref name="text"/> has the form of an id (and so is safe as a file name).</summary>
    public static bool IsId(string? text) => text is { Length: IdLength } && text.All(c => IdAlphabet.Contains(c, StringComparison.Ordinal));

    /// <summary>The request as one JSON object on one line, no newline: what <c>guard approvals -o json</c> prints.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", Id);
            w.WriteString("state", State == ApprovalState.Pending ? "pending" : "approved");
            w.WriteString("kind", Kind == ApprovalKind.Destination ? "destination" : "program");
            w.WriteString("job", JobId ?? "");
            w.WriteNumber("job_set", JobSet);
            w.WriteString("section", Section);
            w.WriteString("section_source", SectionSource);
            w.WriteStartObject("process");
            w.WriteNumber("pid", Pid);
            w.WriteNumber("start_ticks", StartTicks);
            w.WriteString("name", ProcessName);
            w.WriteString("executable", ProcessExecutable);
            w.WriteStartArray("lineage");
            foreach (string a in Lineage)
                w.WriteStringValue(a);
            w.WriteEndArray();
            w.WriteEndObject();
            if (Kind == ApprovalKind.Destination)
            {
                var ip = new IPAddress(Address);
                w.WriteStartObject("destination");
                w.WriteString("ip", ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4().ToString() : ip.ToString());
                w.WriteNumber("port", Port);
                w.WriteString("transport", ProtocolName(Protocol));
                w.WriteEndObject();
            }
            else
            {
                w.WriteStartObject("program");
                w.WriteString("path", ProgramPath ?? "");
                w.WriteString("sha256", Sha256 ?? "");
                w.WriteNumber("device", ProgramFile?.Device ?? 0);
                w.WriteNumber("inode", ProgramFile?.Inode ?? 0);
                w.WriteEndObject();
            }
            w.WriteNumber("count", Count);
            w.WriteString("raised", Iso(RaisedUnixMs));
            w.WriteString("expires", Iso(ExpiresUnixMs));
            if (State == ApprovalState.Approved)
            {
                w.WriteString("allowed_until", AllowedUntilUnixMs == 0 ? "job-end" : Iso(AllowedUntilUnixMs));
                w.WriteNumber("approved_by_uid", ApprovedBy);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}

/// <summary>
/// One request as <c>guard approvals</c> reads it back from the sensor's list:
/// the fields it prints, each as the sensor wrote it.
/// </summary>
public sealed record ApprovalListing(string Id, string State, string Job, string Section, int Pid, string ProcessName, string What, ulong Count, string Expires, string Json)
{
    /// <summary>A line of the list; null when it is not one (a list the sensor cut short, or a line of another version).</summary>
    public static ApprovalListing? Parse(string line)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(line);
            JsonElement r = doc.RootElement;
            JsonElement process = r.GetProperty("process");
            string what = r.GetProperty("kind").GetString() == "destination"
                ? $"{r.GetProperty("destination").GetProperty("transport").GetString()} {Host(r.GetProperty("destination").GetProperty("ip").GetString()!)}:{r.GetProperty("destination").GetProperty("port").GetInt32()}"
                : $"exec {r.GetProperty("program").GetProperty("path").GetString()} sha256:{Short(r.GetProperty("program").GetProperty("sha256").GetString())}";
            string state = r.GetProperty("state").GetString()!;
            return new ApprovalListing(
                r.GetProperty("id").GetString()!, state, r.GetProperty("job").GetString()!, r.GetProperty("section").GetString()!,
                process.GetProperty("pid").GetInt32(), process.GetProperty("name").GetString()!, what, r.GetProperty("count").GetUInt64(),
                state == "approved" ? r.GetProperty("allowed_until").GetString()! : r.GetProperty("expires").GetString()!, line);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    private static string Host(string ip) => ip.Contains(':', StringComparison.Ordinal) ? $"[{ip}]" : ip;

    private static string Short(string? sha) => string.IsNullOrEmpty(sha) ? "unknown" : sha.Length > 12 ? sha[..12] : sha;
}
