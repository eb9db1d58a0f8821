using Guard.Tests.Support;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace Guard.Tests.Unit;

/// <summary>
/// packaging/kubernetes/guard-daemonset.yaml and the Containerfile: what the
/// sensor needs on a node is there, and nothing it does not use.
/// </summary>
public sealed class DaemonSetManifestTests
{
    private static readonly string[] Capabilities = ["BPF", "PERFMON", "SYS_ADMIN", "KILL", "SYS_PTRACE", "DAC_READ_SEARCH", "DAC_OVERRIDE", "SYS_RESOURCE", "CHOWN", "SYS_NICE"];

    private static readonly string[] UnitCapabilities = [.. Capabilities.Select(c => "CAP_" + c)];

    private static YamlMappingNode DaemonSet()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(RepoPaths.Root, "packaging", "kubernetes", "guard-daemonset.yaml"));
        yaml.Load(reader);
        YamlMappingNode[] documents = [.. yaml.Documents.Select(d => (YamlMappingNode)d.RootNode)];
        Assert.Equal(["Namespace", "ConfigMap", "DaemonSet"], documents.Select(d => Text(d, "kind")));
        return documents.Single(d => Text(d, "kind") == "DaemonSet");
    }

    private static YamlNode At(YamlNode node, params string[] path)
    {
        foreach (string key in path)
            node = ((YamlMappingNode)node).Children[new YamlScalarNode(key)];
        return node;
    }

    private static string Text(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static YamlMappingNode[] Items(YamlNode node, params string[] path) => [.. ((YamlSequenceNode)At(node, path)).Children.Cast<YamlMappingNode>()];

    private static string[] Strings(YamlNode node, params string[] path) => [.. ((YamlSequenceNode)At(node, path)).Children.Select(n => ((YamlScalarNode)n).Value!)];

    [Fact]
    public void ThePodSeesTheHostsProcessesAndIsNeverEvictedFirst()
    {
        YamlNode spec = At(DaemonSet(), "spec", "template", "spec");
        Assert.Equal("true", Text(spec, "hostPID"));
        Assert.Equal("system-node-critical", Text(spec, "priorityClassName"));
        YamlMappingNode[] tolerations = Items(spec, "tolerations");
        Assert.Contains(tolerations, t => t.Children.TryGetValue(new YamlScalarNode("key"), out YamlNode? k) && k.ToString() == "nvidia.com/gpu" && Text(t, "operator") == "Exists");
    }

    [Fact]
    public void TheContainerHasTheCapabilitiesTheSensorUsesAndNoOthers()
    {
        YamlMappingNode container = Items(DaemonSet(), "spec", "template", "spec", "containers").Single();
        YamlNode security = At(container, "securityContext");
        Assert.Equal("false", Text(security, "privileged"));
        Assert.Equal("false", Text(security, "allowPrivilegeEscalation"));
        Assert.Equal("true", Text(security, "readOnlyRootFilesystem"));
        Assert.Equal(["ALL"], Strings(security, "capabilities", "drop"));
        Assert.Equal(Capabilities.Order(), Strings(security, "capabilities", "add").Order());
        // The same set as the systemd unit's bounding set: one sensor, one list of needs.
        string unit = File.ReadAllText(Path.Combine(RepoPaths.Root, "packaging", "systemd", "guard.service"));
        string bounding = unit.Split('\n').Single(l => l.StartsWith("CapabilityBoundingSet=", StringComparison.Ordinal));
        Assert.Equal(UnitCapabilities.Order(), bounding["CapabilityBoundingSet=".Length..].Split(' ').Order());
        Assert.Equal(["watch", "--output", "json", "--policy", "/etc/guard/policy.d/policy.toml"], Strings(container, "args"));
    }

    [Fact]
    public void TheHostPathsTheSensorNeedsAreMounted()
    {
        YamlNode pod = At(DaemonSet(), "spec", "template", "spec");
        YamlMappingNode container = Items(pod, "containers").Single();
        Dictionary<string, YamlMappingNode> volumes = Items(pod, "volumes").ToDictionary(v => Text(v, "name"));
        Dictionary<string, YamlMappingNode> mounts = Items(container, "volumeMounts").ToDictionary(m => Text(m, "mountPath"));

        // mount path, host path, hostPath type, read-only
        (string Mount, string Host, string Type, bool ReadOnly)[] needed =
        [
            ("/sys/fs/bpf", "/sys/fs/bpf", "Directory", false),
            ("/sys/fs/cgroup", "/sys/fs/cgroup", "Directory", false),
            ("/sys/kernel/btf", "/sys/kernel/btf", "Directory", true),
            ("/sys/kernel/tracing", "/sys/kernel/tracing", "Directory", true),
            ("/run/guard", "/run/guard", "DirectoryOrCreate", false),
            ("/var/log/pods", "/var/log/pods", "DirectoryOrCreate", true),
            ("/var/lib/kubelet/pods", "/var/lib/kubelet/pods", "DirectoryOrCreate", true),
            ("/run/nvidia/driver", "/run/nvidia/driver", "DirectoryOrCreate", true),
        ];
        foreach ((string mount, string host, string type, bool readOnly) in needed)
        {
            Assert.True(mounts.TryGetValue(mount, out YamlMappingNode? m), $"{mount} is not mounted");
            YamlMappingNode volume = volumes[Text(m!, "name")];
            Assert.Equal(host, Text(volume, "hostPath", "path"));
            Assert.Equal(type, Text(volume, "hostPath", "type"));
            bool mountedReadOnly = m!.Children.TryGetValue(new YamlScalarNode("readOnly"), out YamlNode? ro) && ro.ToString() == "true";
            Assert.True(readOnly == mountedReadOnly, $"{mount}: readOnly should be {readOnly}");
        }
        // Pins made on the host's bpffs are seen by the next pod and by `guard` on the host.
        Assert.Equal("HostToContainer", Text(mounts["/sys/fs/bpf"], "mountPropagation"));
        Assert.Equal("guard-policy", Text(volumes[Text(mounts["/etc/guard/policy.d"], "name")], "configMap", "name"));
        Assert.Contains(Items(container, "env"), e => Text(e, "name") == "NVIDIA_DRIVER_CAPABILITIES" && Text(e, "value") == "utility");
    }

    [Fact]
    public void TheContainerHasLimitsAndALivenessProbe()
    {
        YamlMappingNode container = Items(DaemonSet(), "spec", "template", "spec", "containers").Single();
        Assert.Equal("256Mi", Text(container, "resources", "limits", "memory"));
        Assert.Equal("96Mi", Text(container, "resources", "requests", "memory"));
        Assert.Equal("1", Text(container, "resources", "limits", "cpu"));
        string[] probe = Strings(container, "livenessProbe", "exec", "command");
        Assert.Equal("/bin/sh", probe[0]);
        Assert.Contains("/usr/bin/guard status -o json", probe[2], StringComparison.Ordinal);
    }

    [Fact]
    public void TheImageIsDebian12SlimWithTheNativeBinary()
    {
        string[] lines = [.. File.ReadLines(Path.Combine(RepoPaths.Root, "packaging", "container", "Containerfile")).Where(l => l.Length > 0 && !l.StartsWith('#'))];
        Assert.Equal("FROM debian:12-slim", lines[0]);
        Assert.Contains("COPY artifacts/guard/guard /usr/bin/guard", lines);
        Assert.Contains("ENTRYPOINT [\"/usr/bin/guard\"]", lines);
        Assert.Contains("CMD [\"watch\", \"--output\", \"json\"]", lines);
    }
}
