using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// The one place SIGHUP is handled: a small registry of handlers, each told
/// in turn (a policy reload, a file output's reopen for logrotate). While at
/// least one is registered the signal no longer ends the process. Handlers run
/// on .NET's signal thread: each must only note the request and return (wake a
/// thread of its own); one that throws does not keep the others from hearing.
/// </summary>
public static class HangupSignal
{
    private static readonly object Gate = new();
    private static readonly List<Action> Handlers = [];
    private static PosixSignalRegistration? registration;

    /// <summary>SIGHUPs received while a handler was registered.</summary>
    public static long Received => Interlocked.Read(ref received);

    private static long received;

    /// <summary>Adds <paramref name="handler"/> until the returned handle is disposed.</summary>
    public static IDisposable Add(Action handler)
    {
        lock (Gate)
        {
            Handlers.Add(handler);
            registration ??= PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
        }
        return new Registration(handler);
    }

    /// <summary>Tells every registered handler, as a SIGHUP would (tests, and callers that are asked some other way).</summary>
    public static void Raise()
    {
        Action[] handlers;
        lock (Gate)
            handlers = [.. Handlers];
        Interlocked.Increment(ref received);
        foreach (Action handler in handlers)
        {
            try
            {
                handler();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
            {
                // This handler's request is lost; the others still hear.
            }
        }
    }

    private static void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // handled: SIGHUP's default would end the sensor
        Raise();
    }

    private static void Remove(Action handler)
    {
        lock (Gate)
        {
            Handlers.Remove(handler);
            if (Handlers.Count == 0)
            {
                registration?.Dispose();
                registration = null;
            }
        }
    }

    private sealed class Registration(Action handler) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
                Remove(handler);
        }
    }
}
