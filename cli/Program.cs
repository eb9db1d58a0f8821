using System.Runtime.InteropServices;
using Guard.Cli;

// SIGINT and SIGTERM become one cancellation: the sensor detaches and prints its summary.
using var stop = new CancellationTokenSource();
using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
return GuardCli.Run(args, SystemConsole.Instance, stop.Token);

void Cancel(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}
