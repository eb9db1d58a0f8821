using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Response;

namespace Guard.Sensor;

/// <summary>
/// A policy read and checked for a reload, off the draining thread: either the
/// whole new policy with what the kernel is to judge and its SHA-256, or the
/// errors that refuse it (file:line:key: reason).
/// </summary>
internal sealed record PreparedReload(Policy? Policy, InKernelRules? Rules, string Sha256, IReadOnlyList<string> Errors);

/// <summary>
/// Policy reloads, asked for by SIGHUP (<see cref="HangupSignal"/>; <c>guard
/// policy reload</c> sends one): a thread of its own reads and checks the
/// policy whole (a file, /etc/passwd, the allowed executables' inodes: nothing
/// the draining thread may wait on), hands it to the draining thread, which
/// alone swaps what it judges with and writes the kernel maps
/// (<see cref="Take"/>, <see cref="Complete"/>), then writes the answer a
/// <c>guard policy reload</c> waits for and tells <c>OnReload</c>. Requests
/// that come while one is under way are served by one more reload.
/// </summary>
internal sealed class PolicyReloader : IDisposable
{
    /// <summary>How long the draining thread has to take a prepared policy before the reload is refused as stalled.</summary>
    private static readonly TimeSpan TakeTimeout = TimeSpan.FromSeconds(5);

    private readonly Func<(Policy Policy, string Sha256)> load;
    private readonly Action wake;
    private readonly Action<string>? say;
    private readonly Thread thread;
    private readonly SemaphoreSlim requests = new(0);
    private readonly ManualResetEventSlim completed = new();
    private readonly IDisposable hangup;
    private int requested;
    private PreparedReload? pending;
    private (bool Applied, string Sha256, IReadOnlyList<string> Lines) outcome;
    private long generation;
    private volatile bool stopping;

    /// <summary>
    /// Reloads with <paramref name="load"/> (which throws <see cref="PolicyException"/>
    /// for a bad policy) on each SIGHUP; <paramref name="wake"/> wakes the
    /// draining thread; <paramref name="say"/> gets one line per outcome (stderr).
    /// </summary>
    public PolicyReloader(Func<(Policy Policy, string Sha256)> load, Action wake, Action<string>? say)
    {
        this.load = load;
        this.wake = wake;
        this.say = say;
        thread = new Thread(Work) { IsBackground = true, Name = "guard policy reload" };
        thread.Start();
        hangup = HangupSignal.Add(Request);
    }

    /// <summary>Reloads finished so far (applied or refused).</summary>
    public long Generation => Interlocked.Read(ref generation);

    /// <summary>Asks for a reload; returns at once (called on the signal thread).</summary>
    public void Request()
    {
        if (Interlocked.Exchange(ref requested, 1) == 0)
            requests.Release();
    }

    /// <summary>The prepared reload waiting for the draining thread, taken; null when none waits. The taker must call <see cref="Complete"/>.</summary>
    public PreparedReload? Take() => Interlocked.Exchange(ref pending, null);

    /// <summary>The draining thread's outcome of the reload it took: applied or not, the policy in force after it, and what to say.</summary>
    public void Complete(bool applied, string sha256, IReadOnlyList<string> lines)
    {
        outcome = (applied, sha256, lines);
        completed.Set();
    }

    private void Work()
    {
        while (true)
        {
            requests.Wait();
            if (stopping)
                return;
            Interlocked.Exchange(ref requested, 0);
            PreparedReload prepared = Prepare();
            completed.Reset();
            Volatile.Write(ref pending, prepared);
            wake();
            if (!completed.Wait(TakeTimeout) && Interlocked.CompareExchange(ref pending, null, prepared) == prepared)
                outcome = (false, "", ["the sensor's draining thread did not take the policy within 5 s (stalled); the running policy stays"]);
            else
                completed.Wait(); // taken: the draining thread finishes what it started
            if (stopping)
                return;
            Answer();
        }
    }

    private PreparedReload Prepare()
    {
        try
        {
            (Policy policy, string sha256) = load();
            return new PreparedReload(policy, KernelRules.From(policy), sha256, []);
        }
        catch (PolicyException e)
        {
            return new PreparedReload(null, null, "", e.Errors.Count > 0 ? [.. e.Errors.Select(x => x.ToString())] : [e.Message]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SensorException)
        {
            return new PreparedReload(null, null, "", [e.Message]);
        }
    }

    private void Answer()
    {
        long n = Interlocked.Increment(ref generation);
        (bool applied, string sha256, IReadOnlyList<string> lines) = outcome;
        try
        {
            PolicyReloads.WriteAnswer(new PolicyReloadAnswer(n, applied, sha256, lines));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            say?.Invoke($"guard watch: warning: cannot write the reload's answer for guard policy reload: {e.Message}");
        }
        foreach (string line in lines)
        {
            try
            {
                say?.Invoke(line);
            }
            catch (IOException)
            {
                // stderr gone: the event and the answer file still say it.
            }
        }
    }

    /// <summary>Stops listening for SIGHUP and ends the thread (a reload under way is abandoned).</summary>
    public void Dispose()
    {
        hangup.Dispose();
        stopping = true;
        requests.Release();
        completed.Set();
        thread.Join(TimeSpan.FromSeconds(2));
    }
}
