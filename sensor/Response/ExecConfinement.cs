using Guard.Sensor.Abi;
using Guard.Sensor.Bpf;
using Guard.Sensor.Detection;
using Guard.Sensor.Interop;
using Guard.Sensor.Processes;

namespace Guard.Sensor.Response;

/// <summary>
/// The exec and GPU parts of the [[confine]] sections as the kernel takes
/// them: each section's denied and allowed classes, the files its paths name
/// (resolved to inodes now), the class programs found on this host by name
/// and resolved to inodes (so a rename or a hard link of /bin/bash is still a
/// shell: the kernel compares the file, not its name), and the GPUs each
/// section may open. Resolved at start; a file made later is judged by its
/// name, its place (memfd, world-writable tree) and, by the sensor, its hash.
/// </summary>
public sealed class ExecConfinement
{
    /// <summary>Where the class programs are looked for, in PATH order.</summary>
    public static readonly string[] SystemDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>Files a glob path rule may expand to at start, per rule: a bound on the walk.</summary>
    public const int GlobFileLimit = 4096;

    /// <summary>
    /// Program names of each class: as exec sees them (the file's name, or the comm it
    /// runs under); a trailing '*' also takes versioned names found in the directories (gcc-12, pip3.11).
    /// </summary>
    public static readonly IReadOnlyDictionary<ExecClass, string[]> ClassPrograms = new Dictionary<ExecClass, string[]>
    {
        [ExecClass.Shells] = ["sh", "bash", "rbash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "yash", "fish", "csh", "tcsh", "busybox", "pwsh"],
        [ExecClass.PackageManagers] =
        [
            "pip", "pip3", "pip3.*", "pipx", "uv", "poetry", "easy_install", "conda", "mamba", "micromamba", "apt", "apt-get", "aptitude", "dpkg",
            "dnf", "yum", "rpm", "zypper", "apk", "pacman", "npm", "npx", "yarn", "pnpm", "gem", "bundle", "cargo", "go", "snap", "flatpak", "brew",
            "nix-env", "spack",
        ],
        [ExecClass.Compilers] =
        [
            "cc", "c++", "cpp", "gcc", "gcc-*", "g++", "g++-*", "clang", "clang-*", "clang++", "tcc", "ld", "ld.bfd", "ld.gold", "ld.lld", "as",
            "gfortran", "gfortran-*", "rustc", "go", "nvcc", "zig", "javac", "x86_64-linux-gnu-*", "aarch64-linux-gnu-*",
        ],
        [ExecClass.Downloaders] =
        [
            "curl", "wget", "wget2", "aria2c", "axel", "lftp", "ftp", "tftp", "scp", "sftp", "rsync", "nc", "ncat", "netcat", "nc.openbsd",
            "nc.traditional", "socat", "rclone", "gsutil",
        ],
        [ExecClass.Interpreters] =
        [
            "python", "python2", "python2.*", "python3", "python3.*", "pypy", "pypy3", "perl", "perl5.*", "ruby", "ruby3.*", "node", "nodejs",
            "deno", "bun", "lua", "lua5.*", "luajit", "php", "php8.*", "tclsh", "tclsh8.*", "wish", "expect", "Rscript", "julia", "guile",
        ],
    };

    /// <summary>
    /// The dynamic loader's names. Run as a program (`/lib64/ld-linux-x86-64.so.2 /bin/bash`)
    /// it maps and runs whatever file it is given, which the kernel never execs: so it is
    /// every program class at once, denied wherever a section denies any of them.
    /// </summary>
    public static readonly string[] LoaderPrograms = ["ld-linux*", "ld-musl-*", "ld64.so*", "ld.so"];

    /// <summary>Where the dynamic loader is looked for (the PT_INTERP paths of glibc and musl on x86-64 and arm64).</summary>
    public static readonly string[] LoaderDirectories =
        ["/lib64", "/lib", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"];

    /// <summary>The classes a program can be: what the loader is all at once.</summary>
    public const ExecClassBits ProgramClasses =
        ExecClassBits.Shells | ExecClassBits.PackageManagers | ExecClassBits.Compilers | ExecClassBits.Downloaders | ExecClassBits.Interpreters;

    private ExecConfinement(
        IReadOnlyList<GuardConfineExecRules> rules, IReadOnlyList<ConfineExecFile> files, IReadOnlyDictionary<string, uint> names,
        IReadOnlyList<GuardConfineGpu> gpus)
    {
        Rules = rules;
        Files = files;
        Names = names;
        Gpus = gpus;
    }

    /// <summary>Each section's exec rules, in section order (rule set = index + 1).</summary>
    public IReadOnlyList<GuardConfineExecRules> Rules { get; }

    /// <summary>The class programs found (set 0) and each section's own files.</summary>
    public IReadOnlyList<ConfineExecFile> Files { get; }

    /// <summary>Class program names (cut to the kernel's 15 bytes when written), with their class bits.</summary>
    public IReadOnlyDictionary<string, uint> Names { get; }

    /// <summary>Each section's GPUs, in section order.</summary>
    public IReadOnlyList<GuardConfineGpu> Gpus { get; }

    /// <summary>The kernel bit of a class.</summary>
    public static ExecClassBits BitOf(ExecClass c) => c switch
    {
        ExecClass.Shells => ExecClassBits.Shells,
        ExecClass.PackageManagers => ExecClassBits.PackageManagers,
        ExecClass.Compilers => ExecClassBits.Compilers,
        ExecClass.Downloaders => ExecClassBits.Downloaders,
        ExecClass.Interpreters => ExecClassBits.Interpreters,
        ExecClass.WorldWritable => ExecClassBits.WorldWritable,
        ExecClass.Memfd => ExecClassBits.Memfd,
        _ => ExecClassBits.None,
    };

    /// <summary>
    /// Reads the sections of <paramref name="sections"/> and resolves what they name:
    /// class programs in <paramref name="directories"/> (<see cref="SystemDirectories"/> and, for the
    /// loader, <see cref="LoaderDirectories"/> when null), path rules in the sensor's mount namespace.
    /// Nothing is written to the kernel.
    /// </summary>
    public static ExecConfinement Resolve(IReadOnlyList<ConfineSection> sections, IReadOnlyList<string>? directories = null)
    {
        MountTable mounts = MountTable.Read("self");
        var names = new Dictionary<string, uint>(StringComparer.Ordinal);
        var classFiles = new Dictionary<FileId, uint>();
        foreach ((ExecClass c, string[] programs) in ClassPrograms)
        {
            uint bit = (uint)BitOf(c);
            foreach (string program in programs.Where(p => !p.EndsWith('*')))
                names[program] = names.GetValueOrDefault(program) | bit;
        }
        foreach (string loader in LoaderPrograms.Where(p => !p.EndsWith('*')))
            names[loader] = (uint)ProgramClasses;
        // The class directories take every class name; the library directories (thousands of files) only the loader's.
        IEnumerable<(string Directory, bool LoaderOnly)> where = directories is null
            ? [.. SystemDirectories.Select(d => (d, false)), .. LoaderDirectories.Select(d => (d, true))]
            : directories.Select(d => (d, false));
        foreach ((string dir, bool loaderOnly) in where)
        {
            IEnumerable<string> entries;
            try
            {
                entries = Directory.EnumerateFileSystemEntries(dir).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (string path in entries)
            {
                string name = Path.GetFileName(path);
                uint bits = loaderOnly ? (Matches(LoaderPrograms, name) ? (uint)ProgramClasses : 0) : ClassesOfName(name);
                if (bits == 0)
                    continue;
                names[name] = names.GetValueOrDefault(name) | bits;
                if (IdOf(path, mounts) is { } id)
                    classFiles[id] = classFiles.GetValueOrDefault(id) | bits;
            }
        }
        var files = classFiles.Select(f => new ConfineExecFile(f.Key, 0, f.Value)).ToList();
        var rules = new List<GuardConfineExecRules>();
        var gpus = new List<GuardConfineGpu>();
        for (int i = 0; i < sections.Count; i++)
        {
            ConfineSection s = sections[i];
            uint set = (uint)i + 1;
            var r = new GuardConfineExecRules();
            if (s.Exec is { } exec)
            {
                foreach (ExecRule rule in exec.Deny)
                    r.Deny |= rule.Class is { } c ? (uint)BitOf(c) : (uint)ExecClassBits.File;
                foreach (ExecRule rule in exec.Allow)
                    r.Allow |= rule.Class is { } c ? (uint)BitOf(c) : 0;
                // Allow after deny: a file both lists name is allowed.
                foreach ((ExecRule rule, uint value) in exec.Deny.Select(d => (d, GuardConfineExecRules.FileDeny)).Concat(exec.Allow.Select(a => (a, GuardConfineExecRules.FileAllow))))
                {
                    if (rule.PathGlob is not { } glob)
                        continue;
                    foreach (FileId id in Expand(glob, mounts))
                        files.Add(new ConfineExecFile(id, set, value));
                }
            }
            rules.Add(r);
            var gpu = new GuardConfineGpu();
            if (s.Gpu is { } g)
            {
                gpu.Limited = 1;
                foreach (int minor in g.Devices)
                    gpu.Minors[minor / 8] |= (byte)(1 << (minor % 8));
            }
            gpus.Add(gpu);
        }
        // The last word per file and set: allow, written after deny, wins.
        files = [.. files.GroupBy(f => (f.File, f.Set)).Select(g => g.Last())];
        return new ExecConfinement(rules, files, names, gpus);
    }

    /// <summary>The class bits a program name has (exact, or a versioned name of a '*' entry).</summary>
    public static uint ClassesOfName(string name)
    {
        if (Matches(LoaderPrograms, name))
            return (uint)ProgramClasses;
        uint bits = 0;
        foreach ((ExecClass c, string[] programs) in ClassPrograms)
        {
            if (Matches(programs, name))
                bits |= (uint)BitOf(c);
        }
        return bits;
    }

    /// <summary>Whether <paramref name="name"/> is one of <paramref name="programs"/> (a trailing '*': that prefix and more).</summary>
    private static bool Matches(string[] programs, string name) =>
        programs.Any(p => p.EndsWith('*') ? name.StartsWith(p[..^1], StringComparison.Ordinal) && name.Length > p.Length - 1 : p == name);

    /// <summary>Writes it all into the pinned maps. Throws <see cref="SensorException"/> when the kernel refuses.</summary>
    public void WriteTo(ConfineKernel kernel)
    {
        kernel.ReplaceExecNames(Names);
        kernel.ReplaceExecFiles(Files);
        for (int i = 0; i < Rules.Count; i++)
        {
            kernel.WriteExecRules((uint)i + 1, Rules[i]);
            kernel.WriteGpu((uint)i + 1, Gpus[i]);
        }
    }

    /// <summary>The files a path rule names now: itself, or what its glob matches ('*' any run, '?' one character, '/' included).</summary>
    private static IEnumerable<FileId> Expand(string glob, MountTable mounts)
    {
        int wild = glob.IndexOfAny(['*', '?']);
        if (wild < 0)
        {
            if (IdOf(glob, mounts) is { } id)
                yield return id;
            yield break;
        }
        string root = glob[..(glob.LastIndexOf('/', wild) + 1)];
        IEnumerable<string> found;
        try
        {
            found = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, MaxRecursionDepth = 16 })
                .Where(p => ConfineParser.GlobMatches(glob, p)).Take(GlobFileLimit).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        foreach (string path in found)
        {
            if (IdOf(path, mounts) is { } id)
                yield return id;
        }
    }

    /// <summary>The file <paramref name="path"/> names, links followed as exec follows them, as the kernel names it (superblock device, inode); null when none.</summary>
    private static FileId? IdOf(string path, MountTable mounts)
    {
        using FileDescriptor? file = FileDescriptor.OpenPathOnly(path, out _);
        if (file?.Status(out _, cachedOnly: true) is not { IsRegular: true } status)
            return null;
        return new FileId(mounts.Find(status.MountId)?.Device ?? status.Device, status.Inode);
    }
}
