using System.Text;
using System.Text.RegularExpressions;
using Guard.Sensor.Events;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Detection;

/// <summary>
/// Miner arguments at exec: the policy's fragments (stratum+tcp://,
/// --donate-level, ...) and wallet-address shapes. Judged in user space, so
/// the alert asks the response to act.
/// </summary>
public sealed partial class ArgumentFindings
{
    private readonly byte[][] fragments;
    private readonly Policy policy;

    public ArgumentFindings(Policy policy)
    {
        this.policy = policy;
        fragments = [.. policy.Indicators.MinerArguments.Select(f => Encoding.UTF8.GetBytes(f.ToLowerInvariant()))];
    }

    // Monero (standard 95, integrated 106 characters) and Bitcoin bech32 wallets.
    [GeneratedRegex(@"(?<![0-9A-Za-z])(?:4[0-9AB][1-9A-HJ-NP-Za-km-z]{93}(?:[1-9A-HJ-NP-Za-km-z]{11})?|bc1[02-9ac-hj-np-z]{39,59})(?![0-9A-Za-z])")]
    private static partial Regex Wallet();

    public AlertEvent? OnExec(ProcessEntry process, long timeNs)
    {
        if (policy.ActionFor(Detectors.MinerArguments) == RuleAction.Off || process.Args.Length == 0)
            return null;
        var evidence = new List<KeyValuePair<string, string>>();
        if (Fragment(process.Args) is { } fragment)
        {
            string[] args = Encoding.UTF8.GetString(process.Args).Split('\0');
            evidence.Add(new("argument", args.First(a => a.Contains(fragment, StringComparison.OrdinalIgnoreCase))));
            evidence.Add(new("matched", fragment));
        }
        else if (Wallet().Match(Encoding.UTF8.GetString(process.Args).Replace('\0', ' ')) is { Success: true } wallet)
        {
            evidence.Add(new("wallet", wallet.Value));
        }
        else
        {
            return null;
        }
        evidence.Add(new("executable", process.ExecutableText));
        return new AlertEvent
        {
            Rule = Detectors.MinerArguments.Name,
            Description = evidence[0].Key == "wallet" ? "a cryptocurrency wallet address on the command line" : "miner arguments on the command line",
            RequestedAction = policy.ActionFor(Detectors.MinerArguments),
            Evidence = evidence,
            Process = process,
            TimeNs = timeNs,
        };
    }

    private string? Fragment(byte[] args)
    {
        Span<byte> lower = args.Length <= 4096 ? stackalloc byte[args.Length] : new byte[args.Length];
        for (int i = 0; i < args.Length; i++)
            lower[i] = args[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(args[i] + 32) : args[i];
        for (int i = 0; i < fragments.Length; i++)
        {
            if (lower.IndexOf(fragments[i]) >= 0)
                return policy.Indicators.MinerArguments[i];
        }
        return null;
    }
}
