namespace PipelineActors.Harness.Emulation;

/// <summary>
/// Removes what an earlier run left when it crashed or was killed: namespaces, veth pairs and cgroups with our prefix whose
/// owner pid (part of the name) is no longer running. A live run's names are never touched.
/// </summary>
public static class StaleEmulation
{
    /// <summary>Removes stale names; returns those removed. Without root there is nothing it may remove, so it returns none.</summary>
    public static IReadOnlyList<string> Remove()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return [];
        }

        var removed = new List<string>();
        foreach (var veth in OurInterfaces().Where(EmulationNames.IsStale))
        {
            EmulatedNetwork.Delete(veth, null);
            removed.Add(veth);
        }

        foreach (var ns in OurNamespaces().Where(EmulationNames.IsStale))
        {
            EmulatedNetwork.Delete(null, ns);
            removed.Add(ns);
        }

        if (CgroupCpu.TryFindRoot() is { } root)
        {
            foreach (var group in OurCgroups(root).Where(EmulationNames.IsStale))
            {
                CpuQuota.Remove(Path.Combine(root, group));
                removed.Add(group);
            }
        }

        return removed;
    }

    /// <summary>Our names among the root namespace's interfaces (only the root ends are there; the peers go with them).</summary>
    public static IReadOnlyList<string> OurInterfaces() =>
        Directory.Exists("/sys/class/net") ? Ours(Directory.GetFileSystemEntries("/sys/class/net")) : [];

    /// <summary>Our names among the named network namespaces (<c>ip netns</c> keeps them in /run/netns).</summary>
    public static IReadOnlyList<string> OurNamespaces() =>
        Directory.Exists("/run/netns") ? Ours(Directory.GetFiles("/run/netns")) : [];

    /// <summary>Our names among the cpu controller's top-level cgroups (none where there is no controller).</summary>
    public static IReadOnlyList<string> OurCgroups() => CgroupCpu.TryFindRoot() is { } root ? OurCgroups(root) : [];

    private static List<string> OurCgroups(string root) => Ours(Directory.GetDirectories(root));

    private static List<string> Ours(IEnumerable<string> paths) =>
        paths.Select(Path.GetFileName).OfType<string>().Where(n => EmulationNames.OwnerOf(n) is not null).ToList();
}
