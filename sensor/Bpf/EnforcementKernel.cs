using Guard.Sensor.Abi;
using Guard.Sensor.Interop;

namespace Guard.Sensor.Bpf;

/// <summary>
/// The enforcement that stays while no sensor runs (bpf/enforce.bpf.c): the
/// exec-time kill of known miners and the Stratum drop, pinned under
/// PIN_ROOT/enforce. A stopping `guard watch` hands over to it before it
/// detaches its own programs; the next one removes it once its own are
/// attached, so enforcement has no gap across a restart.
/// </summary>
public static unsafe class EnforcementKernel
{
    private const string ObjectName = "enforce.bpf.o";

    private static readonly (string Name, bool AtCgroupRoot)[] Programs =
    [
        (BpfProgramNames.EnforceExec, false), (BpfProgramNames.EnforceFork, false), (BpfProgramNames.EnforceExit, false),
        (BpfProgramNames.EnforceCgroupAttach, false),
        (BpfProgramNames.EnforceConnect4, true), (BpfProgramNames.EnforceConnect6, true), (BpfProgramNames.EnforceEgress, true),
    ];

    public static string PinRoot => Path.Join(Pins.Root, "enforce");

    /// <summary>Whether enforcement is pinned, i.e. handed over by a sensor that stopped.</summary>
    public static bool Active => Directory.Exists(PinRoot);

    /// <summary>
    /// Loads the enforcement programs with the sensor's rules and its job
    /// members, attaches them and pins their links. Whatever was pinned before
    /// is replaced. Returns how many programs now enforce.
    /// </summary>
    public static int HandOver(InKernelRules rules, IEnumerable<(uint Tgid, GuardJobMember Member)> jobMembers, string cgroupRoot)
    {
        Remove();
        KernelMounts.EnsureBpfFs();
        LibbpfLog.Install();
        LibbpfLog.Clear();
        nint obj = KernelSession.OpenEmbedded(ObjectName);
        try
        {
            int err = Libbpf.ObjectLoad(obj);
            if (err != 0)
                throw new SensorException(KernelSession.LoadFailure(-err));
            PolicyMaps.Write(obj, rules);
            int membersFd = KernelSession.MapFd(obj, BpfMapNames.JobMembers);
            foreach ((uint tgid, GuardJobMember member) in jobMembers)
            {
                uint key = tgid;
                GuardJobMember value = member;
                _ = Libbpf.MapUpdate(membersFd, &key, &value, 0); // one gone meanwhile is no loss
            }
            using FileDescriptor root = FileDescriptor.OpenDirectory(cgroupRoot);
            foreach ((string name, bool atRoot) in Programs)
                Pins.AttachAndPin(obj, name, atRoot ? root : null, Path.Join(PinRoot, name));
            return Programs.Length;
        }
        catch
        {
            Remove();
            throw;
        }
        finally
        {
            // The pins hold the programs and their maps now.
            Libbpf.ObjectClose(obj);
        }
    }

    /// <summary>Detaches and unpins the handed-over enforcement (a sensor is enforcing again, or a person said so).</summary>
    public static void Remove() => Pins.Remove(PinRoot);
}
