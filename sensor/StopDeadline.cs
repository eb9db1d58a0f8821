using System.Text;
using Guard.Sensor.Interop;

namespace Guard.Sensor;

/// <summary>
/// A stop request (SIGTERM, Ctrl-C) honoured within a second whatever the
/// sensor is doing: blocked writing to a stdout no one reads, in a slow NVML
/// call, under a flood of records. Armed when the request comes, it waits
/// <see cref="Default"/>; if the orderly shutdown has not finished by then, it
/// hands enforcement over from its own thread (the pinned programs go on, as
/// after an orderly stop), says so on stderr if stderr takes it, and ends the
/// process (_exit) with status 1. The kernel detaches every program the
/// process held as it ends but the pinned ones: when the hand-over cannot
/// finish, the sensor's own pins (SensorPins) go on enforcing.
/// </summary>
public sealed class StopDeadline
{
    /// <summary>How long the orderly shutdown may take: leaves a hand-over's ~100 ms, and more, within the second.</summary>
    public static readonly TimeSpan Default = TimeSpan.FromMilliseconds(600);

    private static readonly TimeSpan HandOverWait = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan StderrWait = TimeSpan.FromMilliseconds(50);

    private readonly GuardSensor sensor;
    private readonly TimeSpan deadline;
    private int armed;
    private volatile bool finished;

    /// <param name="sensor">The sensor whose enforcement is handed over if it does not stop in time.</param>
    /// <param name="deadline">How long the orderly shutdown may take; default <see cref="Default"/>.</param>
    public StopDeadline(GuardSensor sensor, TimeSpan? deadline = null)
    {
        this.sensor = sensor;
        this.deadline = deadline ?? Default;
    }

    /// <summary>Starts the clock (once; safe from a signal handler's thread).</summary>
    public void Arm()
    {
        if (Interlocked.Exchange(ref armed, 1) == 0)
            new Thread(Watch) { IsBackground = true, Name = "guard-stop-deadline" }.Start();
    }

    /// <summary>The orderly shutdown is done (summary written): at the deadline, a process still here ends with status 0.</summary>
    public void Finished() => finished = true;

    private void Watch()
    {
        Thread.Sleep(deadline);
        // systemd hears STOPPING=1 whichever way the process ends.
        sensor.SayStopping();
        if (finished)
            Libc.Exit(0);
        string line;
        try
        {
            line = sensor.TryHandOverEnforcement(HandOverWait) switch
            {
                null => "guard watch: did not stop within a second, and its hand-over did not finish: its own pinned programs go on enforcing",
                0 => "guard watch: did not stop within a second; nothing to hand over; exiting",
                int pinned => $"guard watch: did not stop within a second; {pinned} enforcement programs handed over; exiting",
            };
        }
        catch (SensorException e)
        {
            line = $"guard watch: did not stop within a second: {e.Message}";
        }
        var say = new Thread(() => WriteStderr(line + "\n")) { IsBackground = true };
        say.Start();
        say.Join(StderrWait); // a stderr no one reads must not hold the exit
        Libc.Exit(1);
    }

    private static unsafe void WriteStderr(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        fixed (byte* p = bytes)
            _ = Libc.Write(2, p, (nuint)bytes.Length);
    }
}
