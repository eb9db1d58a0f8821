using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Guard.Sensor.Bpf;

/// <summary>
/// libbpf, bound by source-generated P/Invoke. The native AOT binary links
/// Debian's libbpf.a (DirectPInvoke), so hosts need no libbpf of their own;
/// under the JIT (tests) the same names bind to libbpf.so.1.
/// </summary>
internal static unsafe partial class Libbpf
{
    internal const string Library = "libbpf";

    static Libbpf()
    {
        // Only the JIT consults this; the AOT binary calls the linked archive.
        NativeLibrary.SetDllImportResolver(typeof(Libbpf).Assembly, static (name, assembly, path) =>
            name == Library && NativeLibrary.TryLoad("libbpf.so.1", assembly, path, out nint handle) ? handle : 0);
    }

    /// <summary>Makes sure the resolver above is registered before the first call.</summary>
    internal static void EnsureResolver() => RuntimeHelpers.RunClassConstructor(typeof(Libbpf).TypeHandle);

    [LibraryImport(Library, EntryPoint = "libbpf_set_print")]
    internal static partial nint SetPrint(delegate* unmanaged[Cdecl]<int, byte*, nint, int> printer);

    /// <summary>The leading fields of struct bpf_object_open_opts; libbpf reads no further than sz says.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ObjectOpenOptions
    {
        public nuint Size;
        public byte* ObjectName;
        public byte RelaxedMaps;
        public byte* PinRootPath;
    }

    [LibraryImport(Library, EntryPoint = "bpf_object__open_mem", SetLastError = true)]
    internal static partial nint ObjectOpenMem(byte* buffer, nuint size, ObjectOpenOptions* options);

    [LibraryImport(Library, EntryPoint = "bpf_object__load")]
    internal static partial int ObjectLoad(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__close")]
    internal static partial void ObjectClose(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__find_map_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint FindMap(nint obj, string name);

    [LibraryImport(Library, EntryPoint = "bpf_object__find_program_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint FindProgram(nint obj, string name);

    [LibraryImport(Library, EntryPoint = "bpf_map__fd")]
    internal static partial int MapFd(nint map);

    [LibraryImport(Library, EntryPoint = "bpf_map__set_max_entries")]
    internal static partial int MapSetMaxEntries(nint map, uint maxEntries);

    [LibraryImport(Library, EntryPoint = "bpf_map__initial_value")]
    internal static partial void* MapInitialValue(nint map, out nuint size);

    [LibraryImport(Library, EntryPoint = "bpf_program__set_autoload")]
    internal static partial int ProgramSetAutoload(nint program, [MarshalAs(UnmanagedType.U1)] bool autoload);

    [LibraryImport(Library, EntryPoint = "bpf_program__attach", SetLastError = true)]
    internal static partial nint ProgramAttach(nint program);

    [LibraryImport(Library, EntryPoint = "bpf_program__attach_cgroup", SetLastError = true)]
    internal static partial nint ProgramAttachCgroup(nint program, int cgroupFd);

    [LibraryImport(Library, EntryPoint = "bpf_program__fd")]
    internal static partial int ProgramFd(nint program);

    /// <summary>BPF_LINK_CREATE of a loaded program at a cgroup (opts NULL); the link's descriptor, or a negative errno.</summary>
    [LibraryImport(Library, EntryPoint = "bpf_link_create")]
    internal static partial int LinkCreate(int programFd, int targetFd, int attachType, void* options);

    /// <summary>BPF_OBJ_PIN: 0, or a negative errno.</summary>
    [LibraryImport(Library, EntryPoint = "bpf_obj_pin", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjectPin(int fd, string path);

    /// <summary>BPF_PROG_QUERY of a cgroup: the programs of one attach type (flags 1, BPF_F_QUERY_EFFECTIVE: those that run there, the ancestors' included).</summary>
    [LibraryImport(Library, EntryPoint = "bpf_prog_query")]
    internal static partial int ProgramQuery(int targetFd, int attachType, uint queryFlags, uint* attachFlags, uint* programIds, uint* count);

    [LibraryImport(Library, EntryPoint = "bpf_link__pin", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int LinkPin(nint link, string path);

    /// <summary>BPF_LINK_DETACH: detaches now, where dropping the last reference would detach a moment later.</summary>
    [LibraryImport(Library, EntryPoint = "bpf_link_detach")]
    internal static partial int LinkDetach(int linkFd);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjectGet(string path);

    [LibraryImport(Library, EntryPoint = "bpf_link__destroy")]
    internal static partial int LinkDestroy(nint link);

    [LibraryImport(Library, EntryPoint = "bpf_map__value_size")]
    internal static partial uint MapValueSize(nint map);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_elem")]
    internal static partial int MapLookup(int fd, void* key, void* value);

    [LibraryImport(Library, EntryPoint = "bpf_map_update_elem")]
    internal static partial int MapUpdate(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Library, EntryPoint = "bpf_map_get_next_key")]
    internal static partial int MapNextKey(int fd, void* key, void* nextKey);

    /// <summary>
    /// Every (key, value) of a hash map or trie, in the kernel's order; entries
    /// deleted meanwhile are skipped. The kernel answers "the next key after one
    /// that is gone" with the first key (hashtab.c, lpm_trie.c), so a walk whose
    /// last key was deleted under it (a process exited, an LRU eviction) starts
    /// again from the top: it stops there, and at most <see cref="WalkLimit"/>
    /// keys are read, so a map that churns can never hold the caller in a loop
    /// that grows the list without end.
    /// </summary>
    internal static List<(TKey Key, TValue Value)> Entries<TKey, TValue>(int fd)
        where TKey : unmanaged
        where TValue : unmanaged
    {
        var entries = new List<(TKey, TValue)>();
        TKey key = default, next = default, first = default;
        TValue value = default;
        TKey* previous = null;
        for (int walked = 0; walked < WalkLimit && MapNextKey(fd, previous, &next) == 0; walked++)
        {
            if (previous == null)
                first = next;
            else if (new ReadOnlySpan<byte>(&next, sizeof(TKey)).SequenceEqual(new ReadOnlySpan<byte>(&first, sizeof(TKey))))
                break; // started again from the top: every key has been seen once
            if (MapLookup(fd, &next, &value) == 0)
                entries.Add((next, value));
            key = next;
            previous = &key;
        }
        return entries;
    }

    /// <summary>The most keys one walk of a map reads (2^20: sixteen times the largest map Guard makes, 65,536 entries).</summary>
    private const int WalkLimit = 1 << 20;

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_batch")]
    private static partial int MapLookupBatch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, void* options);

    /// <summary>
    /// Every (key, value) of a hash map, read 1024 at a time (BPF_MAP_LOOKUP_BATCH,
    /// Linux 5.6): a few syscalls for a big map where <see cref="Entries"/> makes
    /// two per entry. Falls back to <see cref="Entries"/> where batches are refused.
    /// </summary>
    internal static List<(TKey Key, TValue Value)> EntriesInBatches<TKey, TValue>(int fd)
        where TKey : unmanaged
        where TValue : unmanaged
    {
        const int Batch = 1024;
        const int Enoent = 2;
        var entries = new List<(TKey, TValue)>();
        var keys = new TKey[Batch];
        var values = new TValue[Batch];
        ulong position = 0, next = 0; // the kernel's batch token: a bucket index for a hash map
        bool first = true;
        while (true)
        {
            uint count = Batch;
            int rc;
            fixed (TKey* k = keys)
            fixed (TValue* v = values)
                rc = MapLookupBatch(fd, first ? null : &position, &next, k, v, &count, null);
            if (rc != 0 && rc != -Enoent)
                return Entries<TKey, TValue>(fd);
            for (int i = 0; i < count; i++)
                entries.Add((keys[i], values[i]));
            if (rc == -Enoent)
                return entries;
            position = next;
            first = false;
        }
    }

    [LibraryImport(Library, EntryPoint = "bpf_map_delete_elem")]
    internal static partial int MapDelete(int fd, void* key);

    [LibraryImport(Library, EntryPoint = "bpf_prog_get_next_id")]
    internal static partial int ProgramNextId(uint start, out uint next);

    [LibraryImport(Library, EntryPoint = "bpf_prog_get_fd_by_id")]
    internal static partial int ProgramFdById(uint id);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get_info_by_fd")]
    internal static partial int ObjectInfo(int fd, void* info, ref uint length);

    [LibraryImport(Library, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int PossibleCpus();
}
