namespace Guard.Cli;

/// <summary>Exit codes `guard` returns; scripts may rely on them.</summary>
public enum ExitCode
{
    Success = 0,

    /// <summary>The command ran and failed (cannot load, cannot attach, refused).</summary>
    Failure = 1,

    /// <summary>The command line was wrong: unknown flag, bad value.</summary>
    Usage = 2,

    /// <summary>An acting command (kill, quarantine, release, detach, policy reload) run by a caller other than root without the capabilities it needs; EX_NOPERM in sysexits.h.</summary>
    NotPermitted = 77,
}
