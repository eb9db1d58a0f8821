using Guard.Sensor.Bpf;
using Guard.Sensor.Interop;

namespace Guard.Benchmarks;

/// <summary>
/// floor.bpf.c: the least any sensor that follows every TCP stream from its
/// first byte costs on this kernel: storage made for each socket at its connect
/// and found again at each packet it sends, at the cgroup v2 root; with
/// <c>tracepoints</c>, also empty programs where Guard's other detections hook.
/// Attached on construction, detached on dispose. Throws
/// <see cref="SensorException"/> when the object does not load or attach.
/// </summary>
internal sealed unsafe class StreamFloorPrograms : IDisposable
{
    private static readonly string[] CgroupPrograms = ["floor_connect4", "floor_egress"];
    private static readonly string[] TracingPrograms = ["floor_data_ready", "floor_tcp_destroy", "floor_fpu"];
    private readonly nint obj;
    private readonly List<nint> links = [];

    public StreamFloorPrograms(string workDir, bool tracepoints)
    {
        string objPath = Path.Combine(workDir, "floor.bpf.o");
        if (!File.Exists(objPath))
            Shell.Run("clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", Path.Combine(AppContext.BaseDirectory, "floor.bpf.c"), "-o", objPath);
        LibbpfLog.Install();
        byte[] image = File.ReadAllBytes(objPath);
        fixed (byte* p = image)
            obj = Libbpf.ObjectOpenMem(p, (nuint)image.Length, null);
        if (obj == 0)
            throw new SensorException("cannot open the floor programs");
        try
        {
            if (!tracepoints)
            {
                foreach (string name in TracingPrograms)
                    _ = Libbpf.ProgramSetAutoload(Libbpf.FindProgram(obj, name), false);
            }
            if (Libbpf.ObjectLoad(obj) != 0)
                throw new SensorException("cannot load the floor programs");
            using var root = FileDescriptor.OpenDirectory(KernelMounts.FindCgroup2Root());
            foreach (string name in CgroupPrograms)
                Attached(Libbpf.ProgramAttachCgroup(Libbpf.FindProgram(obj, name), root.Fd), name);
            if (tracepoints)
            {
                foreach (string name in TracingPrograms)
                    Attached(Libbpf.ProgramAttach(Libbpf.FindProgram(obj, name)), name);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void Attached(nint link, string name)
    {
        if (link == 0)
            throw new SensorException($"cannot attach {name}");
        links.Add(link);
    }

    public void Dispose()
    {
        foreach (nint link in links)
            _ = Libbpf.LinkDestroy(link);
        links.Clear();
        Libbpf.ObjectClose(obj);
    }
}
