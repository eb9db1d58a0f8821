using System.Diagnostics;
using System.Text.RegularExpressions;
using Guard.Sensor;
using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Gpu;
using Guard.Tests.Support;
using Xunit;

namespace Guard.Tests.Kernel;

/// <summary>
/// Zero false findings, on the real kernel under the enforcing default policy:
/// every command of the corpus's benign-training.txt is run. A tool this host
/// has (python3, bash, tar, git, curl, pip) runs for real; a tool it lacks
/// (torchrun, deepspeed, accelerate, mpirun, jupyter, ray, tensorboard,
/// nvidia-smi, wandb) is a stand-in that does what the tool does to the
/// kernel: launchers start ranks that open the stand-in GPU and meet on the
/// master port, servers listen on their port and are connected to. Jupyter's
/// 8888 is a pool port in the corpus; its client connects through a private
/// address, from inside a job. All of it in a private network namespace, so
/// the tools that want the internet fail fast instead of reaching it.
/// </summary>
[Collection(KernelTestGroup.Name)]
public sealed partial class BenignWorkloadTests
{
    private static readonly string[] Launchers = ["torchrun", "deepspeed", "accelerate", "mpirun"];
    private static readonly string[] Servers = ["jupyter", "tensorboard", "ray"];

    /// <summary>Commands that need the internet: they may fail here, never be acted on.</summary>
    private static readonly string[] NeedNetwork = ["pip download", "git clone", "curl "];

    private const string Launcher = """
        import os, subprocess, sys
        args = sys.argv[1:]
        at = next(i for i, a in enumerate(args) if a.endswith('.py'))
        n = 2
        for i, a in enumerate(args[:at]):
            if a.startswith('--nproc_per_node='): n = int(a.split('=')[1])
            elif a in ('--num_gpus', '-np', '--nproc_per_node'): n = int(args[i + 1])
        n = min(n, 4)
        env = dict(os.environ, WORLD_SIZE=str(n), MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')
        ranks = [subprocess.Popen([sys.executable] + args[at:], env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in range(n)]
        sys.exit(max(p.wait() for p in ranks))
        """;

    private const string Server = """
        import socket, subprocess, sys
        port = int(next((a.split('=')[1] for a in sys.argv if a.startswith('--port=')), None) or sys.argv[sys.argv.index('--port') + 1])
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(('0.0.0.0', port)); l.listen()
        # Its browser or worker: a python3 (a job root) on the host's private address.
        client = subprocess.Popen([sys.executable, '-c', "import socket, sys; s = socket.create_connection(('10.1.2.3', int(sys.argv[1]))); s.sendall(b'GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'); s.recv(64)", str(port)])
        c, _ = l.accept(); c.recv(1024); c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
        sys.exit(client.wait())
        """;

    private const string Train = """
        import math, os, socket, sys, time
        rank, world = int(os.environ.get('RANK', '0')), int(os.environ.get('WORLD_SIZE', '1'))
        os.close(os.open('/dev/full', os.O_WRONLY))  # the stand-in GPU
        x = sum(math.sin(i) * 1e-3 for i in range(200000))
        if world > 1:
            port = int(os.environ['MASTER_PORT'])
            if rank == 0:
                l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                l.bind(('127.0.0.1', port)); l.listen()
                for c in [l.accept()[0] for _ in range(world - 1)]:
                    c.recv(64); c.sendall(b'ok')
            else:
                for attempt in range(250):
                    try:
                        s = socket.create_connection(('127.0.0.1', port)); break
                    except OSError:
                        time.sleep(0.02)
                s.sendall(b'gradients'); s.recv(2)
        os.makedirs('ckpt', exist_ok=True)
        open(f'ckpt/rank{rank}.pt', 'w').write(str(x))
        """;

    private const string Python = """
        import os, sys
        if sys.argv[1:3] == ['-m', 'torch.distributed.run']:
            os.execv(sys.executable, [sys.executable, os.path.join(os.path.dirname(__file__), 'torchrun')] + sys.argv[3:])
        os.execv(sys.executable, [sys.executable] + sys.argv[1:])
        """;

    private const string NvidiaSmi = """
        import os
        os.close(os.open('/dev/full', os.O_WRONLY))
        print('utilization.gpu [%], memory.used [MiB]\n0 %, 0 MiB')
        """;

    private const string Wandb = "import sys\nprint('synced', sys.argv[-1])\n";

    private const string Pip = "import sys\nprint('stand-in pip', *sys.argv[1:])\nsys.exit(0 if sys.argv[1] == 'install' else 1)\n";

    [GeneratedRegex(@"^rc=(\d+) (.*)$", RegexOptions.Multiline)]
    private static partial Regex ResultLine();

    private static string Tool(string bin, string name, string source)
    {
        string path = Path.Combine(bin, name);
        File.WriteAllText(path, $"#!{Run.Python}\n{source}");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static bool Installed(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    /// <summary>Stand-ins for the tools this host lacks, in a directory that is not world-writable (no staging evidence).</summary>
    private static string StandIns(TempDir dir)
    {
        string bin = Directory.CreateDirectory(Path.Combine(dir.Path, "bin")).FullName;
        foreach (string launcher in Launchers)
            Tool(bin, launcher, Launcher);
        foreach (string server in Servers)
            Tool(bin, server, Server);
        Tool(bin, "python", Python);
        Tool(bin, "nvidia-smi", NvidiaSmi);
        Tool(bin, "wandb", Wandb);
        if (!Installed("pip"))
            Tool(bin, "pip", Pip);
        return bin;
    }

    private static void Workspace(TempDir dir)
    {
        dir.File("train.py", Train);
        dir.File("eval.py", "import sys\nprint('evaluated', sys.argv[-1])\n");
        dir.File("ds_config.json", "{\"train_batch_size\": 8}\n");
        dir.File("requirements.txt", "");
        foreach (string sub in new[] { "ckpt", "runs", "wandb/offline-run", "tmp/dataset", "data" })
            Directory.CreateDirectory(Path.Combine(dir.Path, sub));
        dir.File("ckpt/step_1000.pt", "weights");
        dir.File("tmp/dataset/part-0", "rows");
        Run.Complete("tar", "czf", Path.Combine(dir.Path, "tmp", "data.tar.gz"), "-C", Path.Combine(dir.Path, "tmp"), "dataset");
    }

    [Fact]
    public void TheBenignCorpusAJupyterOn8888AndMultiRankJobsGiveNoFinding()
    {
        using var dir = new TempDir();
        string bin = StandIns(dir);
        Workspace(dir);
        string[] commands = [.. File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus", "benign-training.txt"))
            .Where(l => l.Trim().Length > 0 && !l.StartsWith('#'))];
        Assert.Contains(commands, c => c.StartsWith("jupyter lab --port 8888", StringComparison.Ordinal));
        Assert.Contains(commands, c => c.StartsWith("torchrun --nproc_per_node", StringComparison.Ordinal));

        var lines = new List<string> { "ip link set lo up", "ip addr add 10.1.2.3/32 dev lo", $"cd '{dir.Path}'", $"export PATH='{bin}':$PATH" };
        foreach (string command in commands)
        {
            // The corpus's scratch paths, inside this test's directory.
            string local = command.Replace("/tmp/", $"{dir.Path}/tmp/", StringComparison.Ordinal).Replace(" /data", $" {dir.Path}/data", StringComparison.Ordinal);
            lines.Add($"timeout 60 {local} >/dev/null 2>&1 </dev/null; echo \"rc=$? {command.Replace("\"", "", StringComparison.Ordinal)}\"");
        }
        var options = new SensorOptions
        {
            Policy = PolicyLoader.BuiltIn,
            Kernel = new KernelOptions { GpuDevices = [new GpuDevice(1, 7, GpuRole.ResourceManager)] },
        };
        using SensorHarness sensor = SensorHarness.Start(options);

        using Process ns = Run.Start("unshare", "--net", "/bin/sh", "-c", string.Join("\n", lines));
        string output = ns.StandardOutput.ReadToEnd();
        Assert.True(ns.WaitForExit(300_000), "the benign workload did not finish in 5 minutes");
        Thread.Sleep(500); // the last records through the ring

        var results = ResultLine().Matches(output).ToDictionary(m => m.Groups[2].Value, m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(commands.Length, results.Count);
        foreach ((string command, int rc) in results)
        {
            Assert.True(rc != 137, $"'{command}' was killed");
            if (!NeedNetwork.Any(n => command.StartsWith(n, StringComparison.Ordinal)))
                Assert.True(rc == 0, $"'{command}' exited {rc}: the workload itself is broken, so it proves nothing");
        }
        RecordedEvent[] findings = [.. sensor.Events.Where(e => e.Json.GetProperty("event").GetProperty("kind").GetString() == "alert" || e.Json.GetProperty("event").GetProperty("dataset").GetString() == "guard.response")];
        Assert.True(findings.Length == 0, "false findings:\n" + string.Join("\n", findings.Select(f => f.ToString())));
        // The workload was seen: ranks met on the master port, jupyter's client reached 8888.
        Assert.Contains(sensor.Events, e => e.Action == "connect" && e.Json.GetProperty("destination").GetProperty("port").GetInt32() == 29500);
        Assert.Contains(sensor.Events, e => e.Action == "connect" && e.Json.GetProperty("destination").GetProperty("port").GetInt32() == 8888
            && e.Json.GetProperty("destination").GetProperty("ip").GetString() == "10.1.2.3");
        Assert.False(QuarantineKernel.Pinned);
    }
}
