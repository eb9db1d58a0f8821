using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;

namespace Guard.Benchmarks;

/// <summary>An empty sys_enter_ioctl program: the floor any ioctl hook costs.</summary>
internal sealed unsafe class EmptyIoctlProgram : IDisposable
{
    private readonly nint obj;
    private readonly nint link;

    public EmptyIoctlProgram(string workDir)
    {
        string objPath = Path.Combine(workDir, "empty.bpf.o");
        Shell.Run("clang", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", Path.Combine(AppContext.BaseDirectory, "empty.bpf.c"), "-o", objPath);
        KernelMounts.EnsureTraceFs();
        LibbpfLog.Install();
        byte[] image = File.ReadAllBytes(objPath);
        fixed (byte* p = image)
            obj = Libbpf.ObjectOpenMem(p, (nuint)image.Length, null);
        if (obj == 0 || Libbpf.ObjectLoad(obj) != 0)
            throw new SensorException("cannot load the empty ioctl program");
        link = Libbpf.ProgramAttach(Libbpf.FindProgram(obj, "empty_ioctl"));
        if (link == 0)
            throw new SensorException("cannot attach the empty ioctl program");
    }

    public void Dispose()
    {
        _ = Libbpf.LinkDestroy(link);
        Libbpf.ObjectClose(obj);
    }
}
