namespace Guard.Cli;

/// <summary>Whether lines for a person may carry colour: on a terminal that has it, never piped, never with NO_COLOR.</summary>
public static class TerminalColour
{
    /// <summary>
    /// True when stdout is a terminal (<paramref name="outputRedirected"/> false),
    /// NO_COLOR is unset or empty (no-color.org), and TERM names a terminal
    /// that has colour (set, and not "dumb").
    /// </summary>
    public static bool Wanted(bool outputRedirected, string? noColor, string? term) =>
        !outputRedirected && string.IsNullOrEmpty(noColor) && term is { Length: > 0 } and not "dumb";
}
