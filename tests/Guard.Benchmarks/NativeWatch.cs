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

    public NativeWatch(string guard, string work)
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

    public void Dispose()
    {
        using (Process term = Process.Start("/bin/kill", ["-TERM", watch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            term.WaitForExit();
        if (!watch.WaitForExit(15_000))
            watch.Kill();
        watch.WaitForExit();
        watch.Dispose();
        // It handed its enforcement over on the way out, and left the lineage recorder: the next bare run measures a bare host.
        Guard.Sensor.Bpf.EnforcementKernel.Remove();
        Guard.Sensor.Bpf.LineageKernel.Remove();
    }
}
