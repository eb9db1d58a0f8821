using System.Runtime.InteropServices;

namespace Guard.Sensor.Interop;

/// <summary>
/// The one place SIGHUP is handled: a small registry of handlers, each told
/// in turn (a policy reload, a file output's reopen for logrotate). While at
/// least one is registered the signal no longer ends the process. Handlers run
/// on .NET's signal thread: each must only note the request and return (wake a
/// thread of its own); one that throws does not keep the others from hearing.
/// </summary>
public static partial class HangupSignal
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
            if (registration is null)
            {
                Unignore();
                registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal);
            }
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

    /// <summary>
    /// A SIGHUP ignored when the process started (under nohup, or a parent that
    /// ignores it) stays ignored under .NET, registration or not, so a reload
    /// would never be heard: set back to the default just before the handler
    /// goes in (the handler then keeps it from ending the process).
    /// </summary>
    private static unsafe void Unignore()
    {
        const int Sighup = 1;
        const nint SigIgn = 1;
        const int SigactionBytes = 256; // struct sigaction: 152 bytes on x86-64 and arm64 glibc, with room
        byte* current = stackalloc byte[SigactionBytes];
        if (SignalAction(Sighup, null, current) == 0 && *(nint*)current == SigIgn)
            _ = SetSignal(Sighup, 0); // SIG_DFL
    }

    [LibraryImport("libc", EntryPoint = "sigaction")]
    private static unsafe partial int SignalAction(int signal, void* action, void* old);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint SetSignal(int signal, nint handler);

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
