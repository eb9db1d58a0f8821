using System.Text;
using Guard.Tests.Support;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Xunit;
using Xunit.Abstractions;

namespace Guard.Tests.Unit;

/// <summary>
/// The sensor's folders follow the flow of a record (README, "How it works"): each
/// namespace may use only those before it in <see cref="Flow"/>. The sources
/// are compiled with Roslyn and every symbol each file binds to is read, so a
/// fully qualified name or a type reached through a parent namespace counts as
/// much as a `using` line.
/// </summary>
public sealed class LayeringTests(ITestOutputHelper output)
{
    /// <summary>Upstream first. The root namespace composes the rest and nothing uses it.</summary>
    private static readonly string[] Flow =
    [
        "Guard.Sensor.Interop",
        "Guard.Sensor.Abi",
        "Guard.Sensor.Gpu",
        "Guard.Sensor.Bpf",
        "Guard.Sensor.Processes",
        "Guard.Sensor.Events",
        "Guard.Sensor.Detection",
        "Guard.Sensor.Response",
        "Guard.Sensor.Output",
        "Guard.Sensor.Pipeline",
        "Guard.Sensor",
    ];

    private static readonly Lazy<Dictionary<string, Dictionary<string, string>>> Graph = new(ReadGraph);

    [Fact]
    public void Every_sensor_namespace_has_a_place_in_the_flow()
    {
        output.WriteLine(Describe(Graph.Value));
        string[] unplaced = [.. Graph.Value.Keys.Where(ns => !Flow.Contains(ns))];
        Assert.True(unplaced.Length == 0, "namespaces not in the flow: " + string.Join(", ", unplaced));
    }

    [Fact]
    public void No_namespace_depends_on_one_downstream_of_it()
    {
        var wrong = new StringBuilder();
        foreach ((string from, Dictionary<string, string> targets) in Graph.Value)
        {
            foreach ((string to, string example) in targets)
            {
                if (Array.IndexOf(Flow, to) >= Array.IndexOf(Flow, from))
                    wrong.AppendLine($"{from} -> {to} ({example})");
            }
        }
        Assert.True(wrong.Length == 0, "upstream depends on downstream:\n" + wrong + "\ngraph:\n" + Describe(Graph.Value));
    }

    [Fact]
    public void No_two_namespaces_depend_on_each_other()
    {
        var cycles = new List<string>();
        foreach ((string from, Dictionary<string, string> targets) in Graph.Value)
        {
            foreach ((string to, string example) in targets)
            {
                if (string.CompareOrdinal(from, to) < 0 && Graph.Value.TryGetValue(to, out var back) && back.TryGetValue(from, out string? backExample))
                    cycles.Add($"{from} <-> {to} ({example}; {backExample})");
            }
        }
        Assert.True(cycles.Count == 0, string.Join("\n", cycles));
    }

    /// <summary>The graph as text, for a closing note or a failure message.</summary>
    private static string Describe(Dictionary<string, Dictionary<string, string>> graph) =>
        string.Join("\n", Flow.Where(graph.ContainsKey).Select(ns =>
            $"{ns} -> {string.Join(", ", graph[ns].Keys.OrderBy(t => Array.IndexOf(Flow, t)))}"));

    /// <summary>namespace -> (namespace it uses -> one place that shows it).</summary>
    private static Dictionary<string, Dictionary<string, string>> ReadGraph()
    {
        string sensor = Path.Combine(RepoPaths.Root, "sensor");
        var parse = new CSharpParseOptions(LanguageVersion.Preview);
        SyntaxTree[] trees = [.. Directory.EnumerateFiles(sensor, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), parse, f))];
        // The sensor's own global usings (ImplicitUsings) and every assembly it can see.
        SyntaxTree globals = CSharpSyntaxTree.ParseText(
            "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; "
            + "global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;", parse);
        MetadataReference[] references = [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Append(typeof(Tomlyn.Syntax.DocumentSyntax).Assembly.Location)
            .Distinct()
            .Select(p => MetadataReference.CreateFromFile(p))];
        CSharpCompilation compilation = CSharpCompilation.Create(
            "LayeringCheck", [.. trees, globals], references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));
        // Source generators (LibraryImport, GeneratedRegex) do not run here: their partial halves are
        // missing, and so their out parameters look unassigned. Any other error (a name not bound) could hide a dependency.
        string[] generatorGaps = ["CS8795", "CS0165", "CS0170", "CS0177"];
        Diagnostic[] errors = [.. compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && !generatorGaps.Contains(d.Id))];
        Assert.True(errors.Length == 0, "the sensor does not compile for the layering check:\n" + string.Join("\n", errors.Take(10)));

        var graph = new Dictionary<string, Dictionary<string, string>>();
        foreach (SyntaxTree tree in trees)
        {
            SemanticModel model = compilation.GetSemanticModel(tree);
            SyntaxNode root = tree.GetRoot();
            foreach (SyntaxNode node in root.DescendantNodes())
            {
                if (node is BaseTypeDeclarationSyntax or DelegateDeclarationSyntax
                    && model.GetDeclaredSymbol(node) is { ContainingNamespace: { } declaredIn })
                {
                    graph.TryAdd(declaredIn.ToDisplayString(), []);
                    continue;
                }
                // At a top-level type's base list or constraints the enclosing symbol is the namespace itself.
                ISymbol? enclosing = model.GetEnclosingSymbol(node.SpanStart);
                string? from = (enclosing as INamespaceSymbol ?? enclosing?.ContainingNamespace)?.ToDisplayString();
                if (from is null || !from.StartsWith("Guard.Sensor", StringComparison.Ordinal))
                    continue;
                var used = new List<ITypeSymbol>();
                ISymbol? symbol = model.GetSymbolInfo(node).Symbol;
                if (symbol is ITypeSymbol t)
                    used.Add(t);
                else if (symbol?.ContainingType is { } containing)
                    used.Add(containing);
                if (model.GetTypeInfo(node).Type is { } type)
                    used.Add(type);
                foreach (string to in used.SelectMany(Namespaces).Distinct())
                {
                    if (to == from || !to.StartsWith("Guard.Sensor", StringComparison.Ordinal))
                        continue;
                    Dictionary<string, string> targets = graph.TryGetValue(from, out var existing) ? existing : graph[from] = [];
                    targets.TryAdd(to, $"{Path.GetRelativePath(sensor, tree.FilePath)}:{node.GetLocation().GetLineSpan().StartLinePosition.Line + 1}: {Shorten(node.ToString())}");
                }
            }
        }
        return graph;
    }

    /// <summary>The namespaces a type names: its own, its element's and its type arguments'.</summary>
    private static IEnumerable<string> Namespaces(ITypeSymbol type)
    {
        switch (type)
        {
            case IArrayTypeSymbol array:
                foreach (string ns in Namespaces(array.ElementType))
                    yield return ns;
                break;
            case IPointerTypeSymbol pointer:
                foreach (string ns in Namespaces(pointer.PointedAtType))
                    yield return ns;
                break;
            case INamedTypeSymbol named:
                if (named.ContainingNamespace is { IsGlobalNamespace: false } ns0)
                    yield return ns0.ToDisplayString();
                foreach (ITypeSymbol argument in named.TypeArguments)
                {
                    foreach (string ns in Namespaces(argument))
                        yield return ns;
                }
                break;
        }
    }

    private static string Shorten(string code)
    {
        string line = code.ReplaceLineEndings(" ");
        return line.Length <= 60 ? line : line[..57] + "...";
    }
}
