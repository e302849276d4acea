namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>The outcome of comparing the roles a member claims with the roles its certificate grants.</summary>
public sealed record RoleCheck(IReadOnlyList<string> Missing)
{
    /// <summary>True when the certificate grants every claimed role.</summary>
    public bool Allowed => Missing.Count == 0;

    public override string ToString() =>
        Allowed ? "every claimed role is certified" : $"claims {string.Join(", ", Missing)} without a certificate for it";
}

/// <summary>
/// Roles from certificates, not from the joiner's word: a member may claim only roles its certificate grants.
/// Holding a role it does not claim is fine (a node may run fewer roles than it is allowed).
/// </summary>
public static class CertificateRoles
{
    /// <summary>Compares claimed with certified roles; names compare exactly (roles are lower-case ASCII words).</summary>
    public static RoleCheck Check(IEnumerable<string> claimed, IEnumerable<string> certified)
    {
        var granted = certified.ToHashSet(StringComparer.Ordinal);
        var missing = claimed
            .Where(r => !granted.Contains(r))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        return new RoleCheck(missing);
    }
}
