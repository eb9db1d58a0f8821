using System.Buffers.Binary;
using System.Text;
using Guard.Sensor.Bpf;
using Xunit.Sdk;

namespace Guard.Tests.Support;

/// <summary>What a BPF object holds by name, as libbpf finds it: its programs and its maps.</summary>
public sealed record BpfObject(string Name, IReadOnlySet<string> Programs, IReadOnlySet<string> Maps);

/// <summary>
/// The BPF objects the sensor carries as resources, read as ELF files (64-bit,
/// little-endian, as clang -target bpf writes on x86): nothing is loaded into
/// the kernel. A program is a function in an executable section other than
/// .text (where subprograms live); a map is an object in .maps, or one of the
/// sections libbpf makes a map of (.rodata, .data, .bss and their .NAME kin).
/// </summary>
public static class BpfObjects
{
    public static readonly string[] Embedded = ["guard.bpf.o", "quarantine.bpf.o", "enforce.bpf.o", "lineage.bpf.o", "confine.bpf.o"];

    private static readonly byte[] Magic = [0x7F, (byte)'E', (byte)'L', (byte)'F'];

    private const uint SymbolTable = 2;
    private const ulong Executable = 4;
    private const int Function = 2;
    private const int DataObject = 1;

    public static BpfObject Read(string name)
    {
        using Stream stream = typeof(BpfProgramNames).Assembly.GetManifestResourceStream(name)
            ?? throw new XunitException($"the sensor assembly carries no {name}");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Parse(name, copy.ToArray());
    }

    public static BpfObject Parse(string name, byte[] elf)
    {
        if (elf.Length < 64 || !elf.AsSpan(0, 4).SequenceEqual(Magic) || elf[4] != 2 || elf[5] != 1)
            throw new XunitException($"{name} is not a 64-bit little-endian ELF object");
        ReadOnlySpan<byte> e = elf;
        ulong sectionsAt = BinaryPrimitives.ReadUInt64LittleEndian(e[0x28..]);
        int sectionSize = BinaryPrimitives.ReadUInt16LittleEndian(e[0x3A..]);
        int sectionCount = BinaryPrimitives.ReadUInt16LittleEndian(e[0x3C..]);
        int namesIndex = BinaryPrimitives.ReadUInt16LittleEndian(e[0x3E..]);
        var sections = new Section[sectionCount];
        for (int i = 0; i < sectionCount; i++)
        {
            ReadOnlySpan<byte> h = e[(int)(sectionsAt + (ulong)(i * sectionSize))..];
            sections[i] = new Section(
                BinaryPrimitives.ReadUInt32LittleEndian(h), BinaryPrimitives.ReadUInt32LittleEndian(h[4..]), BinaryPrimitives.ReadUInt64LittleEndian(h[8..]),
                (int)BinaryPrimitives.ReadUInt64LittleEndian(h[0x18..]), (int)BinaryPrimitives.ReadUInt64LittleEndian(h[0x20..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(h[0x28..]));
        }
        string[] sectionNames = [.. sections.Select(s => Text(elf, sections[namesIndex].Offset + (int)s.NameAt))];

        var programs = new HashSet<string>(StringComparer.Ordinal);
        var maps = new HashSet<string>(sectionNames.Where(IsDataMap), StringComparer.Ordinal);
        foreach (Section table in sections.Where(s => s.Type == SymbolTable))
        {
            int strings = sections[table.Link].Offset;
            for (int at = table.Offset; at + 24 <= table.Offset + table.Size; at += 24)
            {
                ReadOnlySpan<byte> symbol = e[at..];
                int type = symbol[4] & 0xF;
                int index = BinaryPrimitives.ReadUInt16LittleEndian(symbol[6..]);
                if (index == 0 || index >= sectionCount)
                    continue;
                string symbolName = Text(e, strings + (int)BinaryPrimitives.ReadUInt32LittleEndian(symbol));
                if (type == Function && (sections[index].Flags & Executable) != 0 && sectionNames[index] != ".text")
                    programs.Add(symbolName);
                else if (type == DataObject && sectionNames[index] == ".maps")
                    maps.Add(symbolName);
            }
        }
        return new BpfObject(name, programs, maps);
    }

    private static bool IsDataMap(string section) =>
        section is ".rodata" or ".data" or ".bss" || section.StartsWith(".rodata.", StringComparison.Ordinal) || section.StartsWith(".data.", StringComparison.Ordinal);

    private static string Text(ReadOnlySpan<byte> elf, int at)
    {
        int end = elf[at..].IndexOf((byte)0);
        return Encoding.ASCII.GetString(elf.Slice(at, end));
    }

    private readonly record struct Section(uint NameAt, uint Type, ulong Flags, int Offset, int Size, int Link);
}
