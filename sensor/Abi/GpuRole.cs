namespace Guard.Sensor.Abi;

/// <summary>How the kernel reads a device's ioctls (enum guard_gpu_role).</summary>
public enum GpuRole : uint
{
    None = 0,

    /// <summary>/dev/nvidiactl and /dev/nvidiaN: resource manager escapes.</summary>
    ResourceManager = 1,

    /// <summary>/dev/nvidia-uvm: unified memory calls.</summary>
    UnifiedMemory = 2,
}
