using System.Collections.Concurrent;
using Akka.Actor;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>A member proved to this node's guard that its certificate grants the roles it runs (published on the local event stream).</summary>
public sealed record RolesProven(Address Member, IReadOnlyList<string> Roles) : INoSerializationVerificationNeeded;

/// <summary>
/// The roles each member has proven to this node's <see cref="CertificateRoleGuard"/>, for the actors that hand out what a
/// role entitles to: the supervisor places stages only on proven workers, and model stores serve stage files only to
/// members with a role that runs them. On a node without TLS nothing can be proven, and nothing is required.
/// </summary>
public sealed class ProvenRoles : IExtension
{
    private readonly ExtendedActorSystem _system;
    private readonly ConcurrentDictionary<Address, IReadOnlyList<string>> _proven = new();

    public ProvenRoles(ExtendedActorSystem system)
    {
        _system = system;
        var config = system.Settings.Config;
        Required = config.HasPath("akka.remote.dot-netty.tcp.enable-ssl") && config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl");
    }

    /// <summary>
    /// True when this node speaks TLS (and so runs a guard): a member's roles then count only once proven. Without TLS every
    /// member is taken at its word, as before; <c>--insecure</c> says so on every start.
    /// </summary>
    public bool Required { get; }

    public static ProvenRoles Get(ActorSystem system) => system.WithExtension<ProvenRoles, ProvenRolesId>();

    /// <summary>Every member proven so far with its roles.</summary>
    public IReadOnlyList<RolesProven> All => _proven.Select(p => new RolesProven(p.Key, p.Value)).ToList();

    /// <summary>The guard's verdict for a member; published so the supervisor can place on it from now on.</summary>
    public void Prove(Address member, IReadOnlyList<string> roles)
    {
        _proven[member] = roles;
        _system.EventStream.Publish(new RolesProven(member, roles));
    }

    /// <summary>The member is gone: a new incarnation at the same address proves itself again.</summary>
    public void Forget(Address member) => _proven.TryRemove(member, out _);

    /// <summary>
    /// Whether the actor at <paramref name="sender"/> may have what one of <paramref name="roles"/> entitles to: always for
    /// actors of this node and without TLS, else only when its member has proven one of them.
    /// </summary>
    public bool Allows(Address sender, params string[] roles)
    {
        if (!Required || sender.Host is null || sender == _system.Provider.DefaultAddress)
        {
            return true;
        }

        return _proven.TryGetValue(sender, out var proven) && proven.Any(roles.Contains);
    }

    /// <summary>True while a remote member has no verdict here yet (TLS on, not proven): its proof may be on its way.</summary>
    public bool Pending(Address sender) =>
        Required && sender.Host is not null && sender != _system.Provider.DefaultAddress && !_proven.ContainsKey(sender);

    /// <summary>True when a role-checked node may place on the member as <paramref name="role"/> (always without TLS).</summary>
    public bool Proven(Address member, string role) =>
        !Required || member.Host is null || (_proven.TryGetValue(member, out var proven) && proven.Contains(role));
}

/// <summary>The extension id of <see cref="ProvenRoles"/>.</summary>
public sealed class ProvenRolesId : ExtensionIdProvider<ProvenRoles>
{
    public override ProvenRoles CreateExtension(ExtendedActorSystem system) => new(system);
}
