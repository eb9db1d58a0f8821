namespace Guard.Sensor.Abi;

/// <summary>Counter slots of gpu_ioctl_counts (enum guard_ioctl_kind).</summary>
public enum IoctlKind
{
    RmAlloc = 0,
    RmFree = 1,
    RmControl = 2,
    RmMap = 3,
    RmOther = 4,
    Uvm = 5,
    Count = 6,
}
