using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>
/// Roles from certificates, not from the joiner's word. On every MemberUp this actor asks the new member to sign a
/// fresh nonce with its certificate's key, and downs the member when the certificate does not chain to the cluster CA,
/// the signature fails, or the certificate lacks a role the member claims; also when no proof comes in time. A member
/// that proves its roles is recorded in <see cref="ProvenRoles"/>: only then is it given stages or stage files.
/// </summary>
/// <remarks>
/// Why a signed proof and not the TLS handshake: the handshake's certificate is known by Akka address only on
/// connections this node dialled. A node that was dialled (a seed, say) answers on the same inbound connection, and
/// Akka names that peer by its TCP source port, so the certificate cannot be tied to a member from the handshake alone.
/// Every node runs a guard under <see cref="Name"/>; a member that runs none cannot answer and is downed.
/// </remarks>
public sealed class CertificateRoleGuard : ReceiveActor, IWithTimers
{
    public const string Name = "certificate-role-guard";

    private readonly ClusterTls _tls;
    private readonly TimeSpan _retryInterval;
    private readonly int _attempts;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, Pending> _pending = [];
    private readonly ProvenRoles _proven = ProvenRoles.Get(Context.System);

    public CertificateRoleGuard(ClusterTls tls, TimeSpan retryInterval, int attempts)
    {
        _tls = tls;
        _retryInterval = retryInterval;
        _attempts = attempts;

        Receive<ClusterEvent.MemberUp>(up => Challenge(up.Member));
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            Forget(removed.Member.Address);
            _proven.Forget(removed.Member.Address);
        });
        Receive<Retry>(OnRetry);
        Receive<ProveRoles>(prove => Sender.Tell(RoleProof.Sign(prove.Nonce, _cluster.SelfAddress.ToString(), _tls.Certificate)));
        Receive<RoleProof>(OnProof);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The guard for a node with <paramref name="tls"/>; a member gets <paramref name="attempts"/> asks, one per interval.</summary>
    public static Props Props(ClusterTls tls, TimeSpan? retryInterval = null, int attempts = 10) =>
        Akka.Actor.Props.Create(() => new CertificateRoleGuard(tls, retryInterval ?? TimeSpan.FromSeconds(1), attempts));

    protected override void PreStart()
    {
        // Say it here, where the operator looks, rather than only in the logs of the members that will down this node.
        var own = CertificateRoles.Check(_cluster.SelfRoles, _tls.Roles);
        if (!own.Allowed)
        {
            _log.Error("This node {0} ({1}); the other members will down it.", own, _tls.Certificate.Subject);
        }
        else
        {
            // This node's own certificate was checked here: its roles count, so a supervisor here may place on it.
            _proven.Prove(_cluster.SelfAddress, _cluster.SelfRoles.ToList());
        }

        _cluster.Subscribe(
            Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));
    }

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Challenge(Member member)
    {
        if (member.Address == _cluster.SelfAddress)
        {
            return;
        }

        _pending[member.Address] = new Pending(member, RandomNumberGenerator.GetBytes(RoleProof.NonceBytes), 0);
        Ask(member.Address);
    }

    private void OnRetry(Retry retry)
    {
        if (!_pending.TryGetValue(retry.Address, out var pending))
        {
            return;
        }

        if (pending.Asked >= _attempts)
        {
            Down(pending.Member, $"it sent no proof of its certificate in {_attempts} asks");
            return;
        }

        Ask(retry.Address);
    }

    private void Ask(Address address)
    {
        var pending = _pending[address];
        _pending[address] = pending with { Asked = pending.Asked + 1 };
        Context.ActorSelection(new RootActorPath(address) / "user" / Name).Tell(new ProveRoles(pending.Nonce));
        Timers.StartSingleTimer(address, new Retry(address), _retryInterval);
    }

    private void OnProof(RoleProof proof)
    {
        var pending = _pending.Values.FirstOrDefault(p => p.Nonce.AsSpan().SequenceEqual(proof.Nonce));
        if (pending is null)
        {
            return; // an answer to an earlier ask, or to nobody: nothing to decide
        }

        var member = pending.Member;
        if (!string.Equals(proof.Address, member.Address.ToString(), StringComparison.Ordinal))
        {
            Down(member, $"it answered with a proof for {proof.Address}");
            return;
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadCertificate(proof.Certificate);
        }
        catch (CryptographicException e)
        {
            Down(member, $"its certificate is unreadable ({e.Message})");
            return;
        }

        using (certificate)
        {
            if (!_tls.Verify(certificate, out var reason))
            {
                Down(member, reason);
                return;
            }

            if (!proof.SignatureHolds(certificate))
            {
                Down(member, $"its signature does not verify with the certificate of {certificate.Subject}");
                return;
            }

            var check = CertificateRoles.Check(member.Roles, ClusterCertificates.RolesOf(certificate));
            if (!check.Allowed)
            {
                Down(member, $"it {check} ({certificate.Subject})");
                return;
            }

            _log.Info("Member {0} proved its roles [{1}] with {2}", member.Address, string.Join(", ", member.Roles), certificate.Subject);
            _proven.Prove(member.Address, member.Roles.ToList());
        }

        Forget(member.Address);
    }

    private void Down(Member member, string reason)
    {
        _log.Warning("Downing member {0} with roles [{1}]: {2}", member.Address, string.Join(", ", member.Roles), reason);
        Forget(member.Address);
        _cluster.Down(member.Address);
    }

    private void Forget(Address address)
    {
        _pending.Remove(address);
        Timers.Cancel(address);
    }

    private sealed record Pending(Member Member, byte[] Nonce, int Asked);

    private sealed record Retry(Address Address);
}
