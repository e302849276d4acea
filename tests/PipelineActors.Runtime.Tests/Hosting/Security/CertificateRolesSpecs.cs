using PipelineActors.Runtime.Hosting;
using PipelineActors.Runtime.Hosting.Security;

namespace PipelineActors.Runtime.Tests.Hosting.Security;

/// <summary>A member may claim only the roles its certificate grants.</summary>
public sealed class CertificateRolesSpecs
{
    [Fact]
    public void Claiming_exactly_the_certified_roles_is_allowed() =>
        Assert.True(CertificateRoles.Check([Roles.Worker, Roles.Ingest], [Roles.Ingest, Roles.Worker]).Allowed);

    [Fact]
    public void Claiming_fewer_roles_than_certified_is_allowed() =>
        Assert.True(CertificateRoles.Check([Roles.Monitor], [Roles.Monitor, Roles.Worker]).Allowed);

    [Fact]
    public void Claiming_no_role_is_allowed_even_with_a_certificate_that_grants_none() =>
        Assert.True(CertificateRoles.Check([], []).Allowed);

    [Fact]
    public void Claiming_a_role_the_certificate_lacks_is_refused_and_names_it()
    {
        var check = CertificateRoles.Check([Roles.Monitor, Roles.Worker], [Roles.Monitor]);

        Assert.False(check.Allowed);
        Assert.Equal([Roles.Worker], check.Missing);
        Assert.Contains("worker", check.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_missing_role_is_named_once_in_order()
    {
        var check = CertificateRoles.Check([Roles.Worker, Roles.Coordinator, Roles.Worker], []);

        Assert.Equal([Roles.Coordinator, Roles.Worker], check.Missing);
    }

    [Fact]
    public void Role_names_compare_exactly() =>
        Assert.Equal(["Worker"], CertificateRoles.Check(["Worker"], [Roles.Worker]).Missing);

    [Fact]
    public void The_roles_in_an_issued_certificate_satisfy_a_claim_of_them()
    {
        using var ca = ClusterCertificates.CreateAuthority("test cluster");
        using var node = ClusterCertificates.IssueNode(ca, "w1", "127.0.0.1", [Roles.Worker]);

        Assert.True(CertificateRoles.Check([Roles.Worker], ClusterCertificates.RolesOf(node)).Allowed);
        Assert.Equal([Roles.Coordinator], CertificateRoles.Check([Roles.Coordinator], ClusterCertificates.RolesOf(node)).Missing);
    }
}
