using Guard.Sensor.Detection;
using Guard.Sensor.Events;

namespace Guard.Sensor.Output;

/// <summary>
/// event.severity of an alert line, 1 to 4; 0 is "none" and is not written.
/// The scale is README's ("Events", severity): Guard's own, with the names
/// Elastic Security gives its rule severities.
/// </summary>
public enum AlertSeverity
{
    /// <summary>Not an alert: no event.severity.</summary>
    None = 0,

    /// <summary>1: a hint, not evidence.</summary>
    Low = 1,

    /// <summary>2: weak evidence joined by a second kind of signal (rules that never act alone).</summary>
    Medium = 2,

    /// <summary>3: evidence that a miner runs (rules whose evidence may act alone).</summary>
    High = 3,

    /// <summary>4: reserved; no rule is critical today.</summary>
    Critical = 4,
}

/// <summary>How an alert's severity and risk score are chosen.</summary>
public static class AlertSeverityScale
{
    /// <summary>
    /// The alert's severity by its rule: High for a detector whose evidence may
    /// act alone (<see cref="Detector.Strong"/>), Medium for one whose evidence
    /// never acts alone, and Medium for a rule no detector names.
    /// </summary>
    public static AlertSeverity Of(AlertEvent alert) =>
        Detectors.Find(alert.Rule) is { Strong: true } ? AlertSeverity.High : AlertSeverity.Medium;

    /// <summary>
    /// event.risk_score (0-100) for a severity: 21, 47, 73, 99, the risk scores
    /// Elastic Security's rules give low, medium, high and critical by default,
    /// so a rule that copies the source's score keeps its band.
    /// </summary>
    public static long RiskScore(AlertSeverity severity) => severity switch
    {
        AlertSeverity.Low => 21,
        AlertSeverity.Medium => 47,
        AlertSeverity.High => 73,
        AlertSeverity.Critical => 99,
        _ => 0,
    };
}
