using System.CommandLine;
using System.Globalization;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;

namespace Guard.Cli.Commands;

/// <summary>
/// The approval gate of ask sections: <c>guard approvals</c> lists the running
/// sensor's requests, <c>guard approve ID [--for 1h]</c> and <c>guard deny ID</c>
/// answer one (<see cref="ApprovalChannel"/>). Root only: the requests name jobs
/// and destinations, and an answer changes what a job may reach.
/// </summary>
public static class ApprovalCommands
{
    private static readonly Argument<string> Id = new("ID") { Description = "The request's id, as guard approvals lists it (12 characters, a-z and 2-7)" };

    private static readonly Option<string?> For = new("--for")
    {
        Description = "How long the approval lasts: 90s, 30m, 1h, 2h30m, 7d (default: the job's life)",
    };

    private static readonly Option<string> Output = ActionOutput.CreateOption("the sensor's requests, one JSON object a line");

    /// <summary>guard approvals, guard approve, guard deny.</summary>
    public static IEnumerable<Command> Create(IConsole console)
    {
        var list = new Command("approvals", "List the approval requests of [[confine]] sections in ask mode: pending ones and approvals in force, with job, process, destination or program.");
        list.Options.Add(Output);
        list.SetAction(parse => List(parse, console));
        yield return list;

        var approve = new Command("approve", "Approve a request: the destination or program goes on that job's allow list in the kernel at once, for --for or the job's life.");
        approve.Arguments.Add(Id);
        approve.Options.Add(For);
        approve.SetAction(parse => Decide("guard approve", parse.GetValue(Id)!, true, parse.GetValue(For), console));
        yield return approve;

        var deny = new Command("deny", "Deny a request: it is closed; the job stays denied, and its retries raise no new request until the section's ask_expiry_seconds pass.");
        deny.Arguments.Add(Id);
        deny.SetAction(parse => Decide("guard deny", parse.GetValue(Id)!, false, null, console));
        yield return deny;
    }

    private static int List(ParseResult parse, IConsole console)
    {
        NotPermittedException.ThrowUnlessMayAct("guard approvals", Privileges.ToHold);
        RequireSensor();
        List<ApprovalListing> requests = ApprovalChannel.ReadList()
            ?? throw new SensorException("the running guard watch keeps no approval requests: its policy has no [[confine]] section with mode = \"ask\"");
        if (ActionOutput.IsJson(parse, Output))
        {
            foreach (ApprovalListing r in requests)
                console.Out.WriteLine(r.Json);
            return (int)ExitCode.Success;
        }
        if (requests.Count == 0)
        {
            console.Out.WriteLine("no approval requests");
            return (int)ExitCode.Success;
        }
        string[] header = ["ID", "STATE", "JOB", "SECTION", "PID", "PROCESS", "WHAT", "COUNT", "EXPIRES/UNTIL"];
        List<string[]> rows = [header, .. requests.Select(r => new[]
        {
            r.Id, r.State, Printable.Of(r.Job.Length == 0 ? "?" : r.Job), Printable.Of(r.Section), r.Pid.ToString(CultureInfo.InvariantCulture),
            Printable.Of(r.ProcessName), Printable.Of(r.What), r.Count.ToString(CultureInfo.InvariantCulture), r.Expires,
        })];
        int[] widths = [.. Enumerable.Range(0, header.Length).Select(i => rows.Max(row => row[i].Length))];
        foreach (string[] row in rows)
            console.Out.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
        return (int)ExitCode.Success;
    }

    private static int Decide(string what, string id, bool approve, string? forText, IConsole console)
    {
        NotPermittedException.ThrowUnlessMayAct(what, Privileges.ToHold);
        long seconds = 0;
        if (forText is not null)
        {
            if (!ValueParsers.TryParseDuration(forText, out TimeSpan span) || span.TotalSeconds < 1 || span.TotalSeconds > ApprovalChannel.MaxApprovalSeconds)
                throw new UsageException($"--for {forText}: expected a duration from 1s to {ApprovalChannel.MaxApprovalSeconds / 86400}d (90s, 30m, 1h, 2h30m)");
            seconds = (long)Math.Ceiling(span.TotalSeconds);
        }
        RequireSensor();
        if (!ApprovalRequest.IsId(id))
        {
            console.Error.WriteLine($"guard: {Printable.Of(id)} is not a request id (12 characters, a-z and 2-7, as guard approvals lists them)");
            return (int)ExitCode.Failure;
        }
        List<ApprovalListing>? requests = ApprovalChannel.ReadList();
        if (requests?.Find(r => r.Id == id) is not { State: "pending" })
        {
            console.Error.WriteLine($"guard: no pending request {id} (unknown, answered already, or expired)");
            return (int)ExitCode.Failure;
        }
        (bool done, string line) = ApprovalChannel.Submit(id, approve, seconds, SudoUid());
        (done ? console.Out : console.Error).WriteLine(Printable.Of(line));
        return done ? (int)ExitCode.Success : (int)ExitCode.Failure;
    }

    /// <summary>Throws unless a guard watch runs on this host: it alone raises and answers requests.</summary>
    private static void RequireSensor()
    {
        if (RunningSensors.List().Count == 0)
            throw new SensorException("no guard watch runs on this host: approval requests are raised and answered by the running sensor");
    }

    /// <summary>SUDO_UID when the command runs under sudo: the person behind root.</summary>
    private static uint? SudoUid() =>
        Environment.GetEnvironmentVariable("SUDO_UID") is { } text && uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid) ? uid : null;
}
