using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Guard.Benchmarks;

/// <summary>
/// The published native `guard watch` (built-in policy, JSON lines to nowhere)
/// for the length of one timed run: what ships, with no JIT warming up beside
/// the storm. Started, waited for READY=1 (sd_notify on a socket of ours, as a
/// Type=notify unit sees it) and half a second more, so the storm meets a
/// sensor past its start (seeding, judging what already ran); stopped by
/// SIGTERM on dispose, and the enforcement it hands over removed.
/// </summary>
internal sealed class NativeWatch : IDisposable
{
    private readonly Process watch;

    /// <param name="guard">The native binary.</param>
    /// <param name="work">A directory for the notify socket.</param>
    /// <param name="ringSize">--ring-size, e.g. "256M"; null: the default (16 MiB).</param>
    public NativeWatch(string guard, string work, string? ringSize = null)
    {
        string path = Path.Combine(work, "notify-connect");
        File.Delete(path);
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        notify.ReceiveTimeout = 30_000;
        var info = new ProcessStartInfo(guard) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["NOTIFY_SOCKET"] = path;
        foreach (string a in new[] { "watch", "--output", "json", "--duration", "600s" })
            info.ArgumentList.Add(a);
        if (ringSize is not null)
        {
            info.ArgumentList.Add("--ring-size");
            info.ArgumentList.Add(ringSize);
        }
        watch = Process.Start(info)!;
        _ = watch.StandardOutput.BaseStream.CopyToAsync(Stream.Null);
        _ = watch.StandardError.BaseStream.CopyToAsync(Stream.Null);
        var buffer = new byte[256];
        var clock = Stopwatch.StartNew();
        while (true)
        {
            int n = notify.Receive(buffer); // throws SocketException after 30 s without a datagram
            if (Encoding.ASCII.GetString(buffer, 0, n).Split('\n').Contains("READY=1"))
                break;
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new InvalidOperationException("the native guard watch sent no READY=1 within 30 s");
        }
        Thread.Sleep(500);
    }

    /// <summary>
    /// Stops (SIGSTOP) or continues (SIGCONT) the sensor's process: stopped, its
    /// programs still run in the kernel and their records wait in the ring.
    /// </summary>
    public bool Paused
    {
        set => Signal(value ? "-STOP" : "-CONT");
    }

    private void Signal(string signal)
    {
        using Process kill = Process.Start("/bin/kill", [signal, watch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public void Dispose()
    {
        Signal("-CONT");
        Signal("-TERM");
        if (!watch.WaitForExit(15_000))
            watch.Kill();
        watch.WaitForExit();
        watch.Dispose();
        // It handed its enforcement over on the way out, and left the lineage recorder: the next bare run measures a bare host.
        Guard.Sensor.Bpf.EnforcementKernel.Remove();
        Guard.Sensor.Bpf.LineageKernel.Remove();
    }
}
