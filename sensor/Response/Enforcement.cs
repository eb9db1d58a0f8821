using Guard.Sensor.Bpf;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>Who makes the kernel's decisions (the exec-time kill, job membership, the Stratum drop) right now.</summary>
public enum Enforcer
{
    /// <summary>No one: no enforcing program is attached.</summary>
    None,

    /// <summary>A running sensor, through its own pinned programs.</summary>
    RunningSensor,

    /// <summary>The pinned programs of a sensor that ended without handing over (SIGKILL, OOM, a crash).</summary>
    EndedSensor,

    /// <summary>The programs a stopping sensor handed over (bpf/enforce.bpf.c).</summary>
    HandedOver,
}

/// <summary>What the pins say about enforcement: who, and the sensors' pids where a sensor's pins do it.</summary>
/// <param name="By">Who enforces.</param>
/// <param name="Pids">The sensors whose pins enforce (running or ended); empty otherwise.</param>
public sealed record Enforcement(Enforcer By, IReadOnlyList<int> Pids)
{
    /// <summary>Reads bpffs and /proc: what is in force now, not what was done.</summary>
    public static Enforcement Read()
    {
        var owners = SensorPins.Owners().Select(o => (o.Pid, Running: ProcfsReader.IsRunning(o.Pid, o.StartTicks))).ToList();
        if (owners.Where(o => o.Running).Select(o => o.Pid).ToList() is { Count: > 0 } running)
            return new(Enforcer.RunningSensor, running);
        if (owners.Count > 0)
            return new(Enforcer.EndedSensor, [.. owners.Select(o => o.Pid)]);
        return new(EnforcementKernel.Active ? Enforcer.HandedOver : Enforcer.None, []);
    }
}
