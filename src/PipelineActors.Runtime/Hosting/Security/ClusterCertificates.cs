using System.Formats.Asn1;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PipelineActors.Onnx;

namespace PipelineActors.Runtime.Hosting.Security;

/// <summary>
/// Makes and reads a cluster's certificates: one CA per cluster and one certificate per node, signed by it, that
/// names the node's host and roles. Keys are ECDSA P-256: small, fast to make and to handshake with on small
/// devices, and as strong as RSA 3072; every TLS 1.2 stack this project meets speaks ECDHE-ECDSA.
/// </summary>
/// <remarks>
/// A node certificate carries its roles as subject alternative name URIs, one per role:
/// <c>urn:pipelineactors:role:worker</c>, and its node name as <c>urn:pipelineactors:node:NAME</c>. SANs rather than
/// OUs because a certificate may hold any number of them and no CA software rewrites them.
/// </remarks>
public static class ClusterCertificates
{
    public const string RoleUriPrefix = "urn:pipelineactors:role:";
    public const string NodeUriPrefix = "urn:pipelineactors:node:";

    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";
    public const string NodeCertificateFile = "node.crt";
    public const string NodeKeyFile = "node.key";
    public const string NodePfxFile = "node.pfx";

    /// <summary>The .pfx password; a random one per node, since the key file beside it is as secret.</summary>
    public const string NodePfxPasswordFile = "node.pfx.pass";

    public static readonly TimeSpan DefaultAuthorityValidity = TimeSpan.FromDays(3650);
    public static readonly TimeSpan DefaultNodeValidity = TimeSpan.FromDays(365);

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const string SubjectAltNameOid = "2.5.29.17";

    // Clocks on small devices drift; a certificate made a moment ago must already be valid on a peer.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private static readonly UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private static readonly UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>A new self-signed cluster CA with its private key.</summary>
    public static X509Certificate2 CreateAuthority(string name, TimeSpan? validity = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedName($"CN={Escape(name)}, O=PipelineActors cluster CA");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        // pathLen 0: the CA signs node certificates only, never another CA.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now - ClockSkew, now + (validity ?? DefaultAuthorityValidity));
    }

    /// <summary>
    /// A node certificate with its private key, signed by <paramref name="authority"/> (which must hold its key),
    /// valid for TLS server and client use, naming <paramref name="host"/> (an IP address or DNS name) and the roles.
    /// </summary>
    public static X509Certificate2 IssueNode(
        X509Certificate2 authority, string nodeName, string host, IReadOnlyCollection<string> roles, TimeSpan? validity = null)
    {
        CheckNodeName(nodeName);
        foreach (var role in roles)
        {
            CheckRole(role);
        }

        var san = new SubjectAlternativeNameBuilder();
        if (IPAddress.TryParse(host, out var ip))
        {
            san.AddIpAddress(ip);
        }
        else if (Uri.CheckHostName(host) == UriHostNameType.Dns)
        {
            san.AddDnsName(host);
        }
        else
        {
            throw new PipelineInputException($"'{host}' is neither an IP address nor a DNS name; give the host the node listens on.");
        }

        san.AddUri(new Uri(NodeUriPrefix + nodeName));
        foreach (var role in roles.Distinct(StringComparer.Ordinal))
        {
            san.AddUri(new Uri(RoleUriPrefix + role));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedName($"CN={Escape(nodeName)}, O=PipelineActors node");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid), new Oid(ClientAuthOid)], false));
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));

        var now = DateTimeOffset.UtcNow;
        var notAfter = now + (validity ?? DefaultNodeValidity);
        // A node certificate cannot outlive the CA that vouches for it.
        var authorityEnd = new DateTimeOffset(authority.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter > authorityEnd)
        {
            notAfter = authorityEnd;
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive serial number, as RFC 5280 asks
        using var signed = request.Create(authority, now - ClockSkew, notAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>The roles a certificate grants: its <c>urn:pipelineactors:role:*</c> SAN URIs, in certificate order.</summary>
    public static IReadOnlyList<string> RolesOf(X509Certificate2 certificate) =>
        SanUris(certificate)
            .Where(u => u.StartsWith(RoleUriPrefix, StringComparison.Ordinal))
            .Select(u => u[RoleUriPrefix.Length..])
            .Distinct(StringComparer.Ordinal)
            .ToList();

    /// <summary>The node name a certificate was issued for, or null when it names none.</summary>
    public static string? NodeNameOf(X509Certificate2 certificate) =>
        SanUris(certificate)
            .Where(u => u.StartsWith(NodeUriPrefix, StringComparison.Ordinal))
            .Select(u => u[NodeUriPrefix.Length..])
            .FirstOrDefault();

    /// <summary>True when the certificate's extended key usage allows both TLS server and TLS client use.</summary>
    public static bool AllowsServerAndClientAuth(X509Certificate2 certificate)
    {
        var usage = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (usage is null)
        {
            return false;
        }

        var oids = usage.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).ToHashSet(StringComparer.Ordinal);
        return oids.Contains(ServerAuthOid) && oids.Contains(ClientAuthOid);
    }

    /// <summary>Writes a CA (ca.crt, ca.key) into a new folder, whole or not at all.</summary>
    public static void WriteAuthority(X509Certificate2 authority, string folder, bool force)
    {
        if (File.Exists(Path.Combine(folder, CaCertificateFile)) && !force)
        {
            throw new PipelineInputException($"{folder} already holds a CA; replacing it locks every node out, so pass --force if you mean it.");
        }

        using var key = authority.GetECDsaPrivateKey()
            ?? throw new ArgumentException("The CA certificate has no ECDSA private key.", nameof(authority));
        WriteFolder(folder, force, temp =>
        {
            WriteText(Path.Combine(temp, CaCertificateFile), authority.ExportCertificatePem(), secret: false);
            WriteText(Path.Combine(temp, CaKeyFile), key.ExportPkcs8PrivateKeyPem(), secret: true);
        });
    }

    /// <summary>Reads a CA written by <see cref="WriteAuthority"/>, with its private key, to sign node certificates.</summary>
    public static X509Certificate2 ReadAuthority(string folder)
    {
        var certificate = Path.Combine(folder, CaCertificateFile);
        var key = Path.Combine(folder, CaKeyFile);
        if (!File.Exists(certificate) || !File.Exists(key))
        {
            throw new PipelineInputException(
                $"{folder} holds no CA ({CaCertificateFile} and {CaKeyFile}); make one with 'pipeline certs init --out {folder}'.");
        }

        try
        {
            var authority = X509Certificate2.CreateFromPemFile(certificate, key);
            if (!IsAuthority(authority))
            {
                authority.Dispose();
                throw new PipelineInputException($"{certificate} is not a CA certificate (basicConstraints CA:TRUE with keyCertSign).");
            }

            return authority;
        }
        catch (CryptographicException e)
        {
            throw new PipelineInputException($"{folder} holds an unreadable CA ({e.Message}); make a new one with 'pipeline certs init'.");
        }
    }

    /// <summary>Writes a node's TLS folder (ca.crt, node.crt, node.key, node.pfx, node.pfx.pass), whole or not at all.</summary>
    public static void WriteNode(X509Certificate2 authority, X509Certificate2 node, string folder, bool force)
    {
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any() && !force)
        {
            throw new PipelineInputException($"{folder} is not empty; choose another --out or pass --force to replace it.");
        }

        using var key = node.GetECDsaPrivateKey() ?? throw new ArgumentException("The node certificate has no ECDSA private key.", nameof(node));
        // Letters and digits only, so the password needs no escaping anywhere it is written (HOCON, shells).
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        WriteFolder(folder, force, temp =>
        {
            WriteText(Path.Combine(temp, CaCertificateFile), authority.ExportCertificatePem(), secret: false);
            WriteText(Path.Combine(temp, NodeCertificateFile), node.ExportCertificatePem(), secret: false);
            WriteText(Path.Combine(temp, NodeKeyFile), key.ExportPkcs8PrivateKeyPem(), secret: true);
            WriteBytes(Path.Combine(temp, NodePfxFile), node.ExportPkcs12(Pkcs12ExportPbeParameters.Pbes2Aes256Sha256, password), secret: true);
            WriteText(Path.Combine(temp, NodePfxPasswordFile), password, secret: true);
        });
    }

    /// <summary>Reads the CA certificate (no key) that a TLS or CA folder holds.</summary>
    public static X509Certificate2 ReadCaCertificate(string folder)
    {
        var path = Path.Combine(folder, CaCertificateFile);
        if (!File.Exists(path))
        {
            throw new PipelineInputException($"{folder} holds no {CaCertificateFile}; make the folder with 'pipeline certs issue'.");
        }

        try
        {
            return X509CertificateLoader.LoadCertificateFromFile(path);
        }
        catch (CryptographicException e)
        {
            throw new PipelineInputException($"{path} is not a readable certificate ({e.Message}).");
        }
    }

    /// <summary>Reads a node's certificate with its private key from a TLS folder (node.pfx, else node.crt and node.key).</summary>
    public static X509Certificate2 ReadNodeCertificate(string folder)
    {
        var pfx = Path.Combine(folder, NodePfxFile);
        var passwordFile = Path.Combine(folder, NodePfxPasswordFile);
        try
        {
            if (File.Exists(pfx))
            {
                var password = File.Exists(passwordFile) ? File.ReadAllText(passwordFile).Trim() : null;
                return X509CertificateLoader.LoadPkcs12FromFile(pfx, password, X509KeyStorageFlags.DefaultKeySet);
            }

            var certificate = Path.Combine(folder, NodeCertificateFile);
            var key = Path.Combine(folder, NodeKeyFile);
            if (File.Exists(certificate) && File.Exists(key))
            {
                return X509Certificate2.CreateFromPemFile(certificate, key);
            }
        }
        catch (CryptographicException e)
        {
            throw new PipelineInputException(
                $"{folder} holds an unreadable node certificate ({e.Message}); issue a new one with 'pipeline certs issue'.");
        }

        throw new PipelineInputException(
            $"{folder} holds no node certificate ({NodePfxFile}, or {NodeCertificateFile} and {NodeKeyFile}); "
            + "make one with 'pipeline certs issue'.");
    }

    /// <summary>Checks a node name: 1 to 64 letters, digits, '.', '_' or '-', so it fits a URN and a file name.</summary>
    public static void CheckNodeName(string name)
    {
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new PipelineInputException($"Node name '{name}' must be 1 to 64 letters, digits, '.', '_' or '-'.");
        }
    }

    /// <summary>Checks that a role is one the pipeline knows.</summary>
    public static void CheckRole(string role)
    {
        if (!Roles.All.Contains(role, StringComparer.Ordinal))
        {
            throw new PipelineInputException($"Unknown role '{role}'; roles are {string.Join(", ", Roles.All)}.");
        }
    }

    private static bool IsAuthority(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority)
        && certificate.Extensions.OfType<X509KeyUsageExtension>().Any(k => k.KeyUsages.HasFlag(X509KeyUsageFlags.KeyCertSign));

    private static List<string> SanUris(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions.Cast<X509Extension>().FirstOrDefault(e => e.Oid?.Value == SubjectAltNameOid);
        var uris = new List<string>();
        if (extension is null)
        {
            return uris;
        }

        // .NET reads DNS and IP SANs but not URIs, so walk the GeneralNames (RFC 5280 4.2.1.6): a URI is [6] IA5String.
        var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
        var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
        while (names.HasData)
        {
            if (names.PeekTag() == uriTag)
            {
                uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
            }
            else
            {
                names.ReadEncodedValue();
            }
        }

        return uris;
    }

    // Distinguished names treat ',', '+', '=', quotes and friends as syntax; names here never need them.
    private static string Escape(string name) => new(name.Where(c => c is not (',' or '+' or '=' or '"' or '\\' or '<' or '>' or ';')).ToArray());

    /// <summary>
    /// Fills a private temp folder beside <paramref name="folder"/>, then renames it into place, so a reader never
    /// sees half a folder and a failure leaves nothing behind.
    /// </summary>
    private static void WriteFolder(string folder, bool replace, Action<string> fill)
    {
        var full = Path.GetFullPath(folder);
        var parent = Path.GetDirectoryName(full) ?? throw new PipelineInputException($"{folder} has no parent folder.");
        if (!Directory.Exists(parent))
        {
            throw new PipelineInputException($"The folder {parent} does not exist; create it first.");
        }

        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.partial-{Guid.NewGuid():N}");
        CreatePrivateFolder(temp);
        try
        {
            fill(temp);
            if (Directory.Exists(full))
            {
                if (!replace && Directory.EnumerateFileSystemEntries(full).Any())
                {
                    throw new PipelineInputException($"{folder} is not empty; choose another folder or pass --force.");
                }

                // Move the old folder aside first: a rename cannot replace a non-empty folder.
                var old = Path.Combine(parent, $".{Path.GetFileName(full)}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
                Directory.Move(temp, full);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(temp, full);
            }
        }
        catch
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }

            throw;
        }
    }

    private static void CreatePrivateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, OwnerOnlyFolder);
        }
    }

    private static void WriteText(string path, string text, bool secret) => WriteBytes(path, System.Text.Encoding.ASCII.GetBytes(text), secret);

    private static void WriteBytes(string path, byte[] bytes, bool secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            // Created with its final mode: a key is never readable by others, not even for a moment.
            options.UnixCreateMode = secret ? OwnerOnlyFile : OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        }

        using var stream = new FileStream(path, options);
        stream.Write(bytes);
        stream.Flush(flushToDisk: true);
    }
}
