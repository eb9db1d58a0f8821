using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Guard.Benchmarks;

/// <summary>A Prometheus stand-in: GET /metrics every <c>interval</c> on a thread of its own, counting whole answers.</summary>
internal sealed class MetricsScraper : IDisposable
{
    private readonly IPEndPoint endpoint;
    private readonly TimeSpan interval;
    private readonly Thread thread;
    private volatile bool stopping;
    private long answered;
    private long bytes;

    public MetricsScraper(IPEndPoint endpoint, TimeSpan interval)
    {
        this.endpoint = endpoint;
        this.interval = interval;
        thread = new Thread(Scrape) { IsBackground = true, Name = "scraper" };
        thread.Start();
    }

    /// <summary>Scrapes answered 200 in full.</summary>
    public long Answered => Interlocked.Read(ref answered);

    /// <summary>Bytes of the last answer.</summary>
    public long LastBytes => Interlocked.Read(ref bytes);

    private void Scrape()
    {
        byte[] request = Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n");
        var answer = new MemoryStream();
        while (!stopping)
        {
            using (var client = new TcpClient())
            {
                client.Connect(endpoint);
                NetworkStream stream = client.GetStream();
                stream.Write(request);
                answer.SetLength(0);
                stream.CopyTo(answer);
            }
            if (answer.Length > 12 && Encoding.ASCII.GetString(answer.GetBuffer(), 9, 3) == "200")
            {
                Interlocked.Increment(ref answered);
                Interlocked.Exchange(ref bytes, answer.Length);
            }
            Thread.Sleep(interval);
        }
    }

    public void Dispose()
    {
        stopping = true;
        thread.Join();
    }
}
