using System.Runtime.Versioning;
using System.Text.Json;
using PipelineActors.TestSupport;
using Xunit.Abstractions;

namespace PipelineActors.Integration.Tests.Publishing;

/// <summary>
/// The archives <c>tools/publish.sh</c> makes for boards, unpacked and used as a user would: the x64 binaries run here
/// with no .NET in their environment, the arm64 ones under qemu-user, and <c>install.sh</c> lays a node out under a prefix.
/// </summary>
[Collection(ClusterCollection.Name)]
[SupportedOSPlatform("linux")]
public sealed class PublishArchiveSpecs(PublishedArchives archives, ITestOutputHelper output) : IClassFixture<PublishedArchives>
{
    // Debian's qemu-user-static and the arm64 C and C++ runtimes of its cross toolchain (libc6-arm64-cross,
    // libstdc++6-arm64-cross, libgcc-s1-arm64-cross): binfmt is not registered in a container, so qemu is called by name.
    private const string Qemu = "qemu-aarch64-static";
    private const string Arm64Sysroot = "/usr/aarch64-linux-gnu";

    // Debian's arm64 libssl3 (.NET hashes model files with OpenSSL), which .ci/run fetches and unpacks here.
    private const string Arm64Libraries = "/opt/pipelineactors-ci/arm64-libs";

    // What a Raspberry Pi 4 (4 x Cortex-A72) says in /proc/cpuinfo, for ONNX Runtime's CPU detection under emulation.
    private const string PiCpuInfo = """
        processor	: 0
        BogoMIPS	: 108.00
        Features	: fp asimd evtstrm crc32 cpuid
        CPU implementer	: 0x41
        CPU architecture: 8
        CPU variant	: 0x0
        CPU part	: 0xd08
        CPU revision	: 3

        processor	: 1
        BogoMIPS	: 108.00
        Features	: fp asimd evtstrm crc32 cpuid
        CPU implementer	: 0x41
        CPU architecture: 8
        CPU variant	: 0x0
        CPU part	: 0xd08
        CPU revision	: 3

        Revision	: c03111
        Model		: Raspberry Pi 4 Model B Rev 1.1

        """;

    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(60);

    [Fact]
    public void Publish_makes_one_archive_per_rid_holding_both_commands_the_models_the_unit_the_env_file_and_install_sh()
    {
        output.WriteLine($"tools/publish.sh --rid all took {archives.PublishTime.TotalSeconds:0} s:\n{archives.PublishOutput}");
        string[] bundled = ["bin/libonnxruntime.so", "bin/models/blazeface-back-256.onnx", "bin/models/blazeface-back-256.profile.json"];
        foreach (var rid in PublishedArchives.Rids)
        {
            Assert.True(File.Exists(archives.Archive(rid)), $"no archive for {rid}");
            var root = archives.Unpacked(rid);
            foreach (var executable in new[] { "bin/pipeline", "bin/pipeline-node", "install.sh" })
            {
                var mode = File.GetUnixFileMode(Path.Combine(root, executable));
                Assert.True(mode.HasFlag(UnixFileMode.UserExecute), $"{rid}: {executable} is not executable ({mode})");
            }

            foreach (var file in bundled)
            {
                Assert.True(File.Exists(Path.Combine(root, file)), $"{rid}: the archive has no {file}");
            }

            foreach (var (shipped, source) in new[]
            {
                ("systemd/pipeline-node.service", "tools/systemd/pipeline-node.service"),
                ("systemd/pipeline-node.env", "tools/systemd/pipeline-node.env"),
                ("hocon/reference.conf", "hocon/reference.conf"),
            })
            {
                Assert.Equal(RepositoryFile(source), File.ReadAllText(Path.Combine(root, shipped)));
            }

            Assert.Contains($"rid={rid}", File.ReadAllText(Path.Combine(root, "VERSION")), StringComparison.Ordinal);
            Assert.Contains($"version={PublishedArchives.Version}", File.ReadAllText(Path.Combine(root, "VERSION")), StringComparison.Ordinal);
        }

        Assert.Empty(Directory.GetFiles(archives.Folder, "*.partial"));
    }

    [Theory]
    [InlineData("linux-x64", "x86-64")]
    [InlineData("linux-arm64", "ARM aarch64")]
    public async Task Each_archive_carries_the_native_libraries_of_its_own_machine(string rid, string machine)
    {
        foreach (var binary in new[] { "pipeline", "pipeline-node", "libonnxruntime.so", "libonnxruntime_providers_shared.so", "libcoreclr.so" })
        {
            var file = await ExternalProcess.Run("file", ["-b", Path.Combine(archives.Unpacked(rid), "bin", binary)], Quick);

            Assert.Equal(0, file.Code);
            output.WriteLine($"{rid} bin/{binary}: {file.Output.Trim()}");
            Assert.Contains("ELF 64-bit", file.Output, StringComparison.Ordinal);
            Assert.Contains(machine, file.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_x64_pipeline_node_prints_its_help_and_refuses_a_bad_port_with_no_dotnet_in_its_environment()
    {
        var node = Path.Combine(archives.Unpacked("linux-x64"), "bin", "pipeline-node");
        var bare = ExternalProcess.BareEnvironment(archives.Folder);

        var help = await ExternalProcess.Run(node, ["--help"], Quick, archives.Folder, bare);
        var badPort = await ExternalProcess.Run(
            node, ["--port", "70000", "--seeds", "akka.tcp://pipeline@127.0.0.1:4053"], Quick, archives.Folder, bare);

        Assert.Equal(0, help.Code);
        Assert.Empty(help.Error.Trim());
        Assert.StartsWith("pipeline-node: one PipelineActors cluster node", help.Output, StringComparison.Ordinal);
        Assert.Contains("--seeds", help.Output, StringComparison.Ordinal);
        Assert.Equal(2, badPort.Code);
        Assert.Contains("70000", Assert.Single(badPort.ErrorLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_arm64_pipeline_node_prints_its_help_and_refuses_a_bad_port_under_qemu_user_emulation()
    {
        AssertQemuInstalled();
        var node = Path.Combine(archives.Unpacked("linux-arm64"), "bin", "pipeline-node");
        var bare = ExternalProcess.BareEnvironment(archives.Folder);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var help = await ExternalProcess.Run(Qemu, ["-L", Arm64Sysroot, node, "--help"], Quick, archives.Folder, bare);
        output.WriteLine($"arm64 pipeline-node --help under qemu: {clock.Elapsed.TotalSeconds:0.0} s");
        var badPort = await ExternalProcess.Run(
            Qemu, ["-L", Arm64Sysroot, node, "--port", "70000", "--seeds", "akka.tcp://pipeline@127.0.0.1:4053"], Quick, archives.Folder, bare);

        Assert.Equal(0, help.Code);
        Assert.StartsWith("pipeline-node: one PipelineActors cluster node", help.Output, StringComparison.Ordinal);
        Assert.Contains("--seeds", help.Output, StringComparison.Ordinal);
        Assert.Equal(2, badPort.Code);
        Assert.Contains("70000", Assert.Single(badPort.ErrorLines), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_arm64_onnx_runtime_runs_a_model_under_qemu_user_given_a_boards_proc_cpuinfo()
    {
        AssertQemuInstalled();
        Assert.True(
            File.Exists(Path.Combine(Arm64Libraries, "libssl.so.3")),
            $"Debian's arm64 libssl3 is not unpacked in {Arm64Libraries} (.ci/run fetches it)");
        var model = Path.Combine(archives.Folder, "tinynet.onnx");
        var zoo = await ExternalProcess.Run(
            Path.Combine(archives.Unpacked("linux-x64"), "bin", "pipeline"), ["zoo", "tinynet", "--out", model, "--seed", "3"], Quick);
        Assert.True(zoo.Code == 0, $"pipeline zoo: {zoo.Error}");

        // Under qemu-user the guest reads the host's x86 /proc/cpuinfo: ONNX Runtime's CPU detection finds no ARM core in
        // it and crashes (SIGSEGV right after reading it). A board's cpuinfo is bound over it in a mount namespace of our own.
        var cpuinfo = Path.Combine(archives.Folder, "cpuinfo-pi4");
        await File.WriteAllTextAsync(cpuinfo, PiCpuInfo);
        var environment = new Dictionary<string, string>(ExternalProcess.BareEnvironment(archives.Folder)) { ["LD_LIBRARY_PATH"] = Arm64Libraries };
        var node = Path.Combine(archives.Unpacked("linux-arm64"), "bin", "pipeline-node");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var loop = await ExternalProcess.Run(
            "unshare",
            ["--mount", "--", "sh", "-c", "mount --bind \"$0\" /proc/cpuinfo && exec \"$@\"", cpuinfo,
             Qemu, "-L", Arm64Sysroot, node, "--bench-loop", model, "--seconds", "0.5"],
            TimeSpan.FromMinutes(4),
            archives.Folder,
            environment);
        output.WriteLine($"arm64 bench loop on tinynet under qemu: {clock.Elapsed.TotalSeconds:0.0} s: {loop.Output.Trim()}");

        Assert.True(loop.Code == 0, $"the arm64 bench loop exited with {loop.Code}: {loop.Error}");
        using var result = JsonDocument.Parse(loop.Output.Trim().Split('\n')[^1]);
        Assert.True(result.RootElement.GetProperty("Frames").GetInt64() >= 1, "the arm64 ONNX Runtime session ran no inference");
    }

    [Fact]
    public async Task The_x64_archive_alone_runs_a_pipeline_of_node_processes_on_its_bundled_model()
    {
        // A folder with no models/ in it: the bundled model must come from the archive's bin/models.
        var workingFolder = Directory.CreateDirectory(Path.Combine(archives.Folder, "run-here")).FullName;
        var pipeline = Path.Combine(archives.Unpacked("linux-x64"), "bin", "pipeline");

        var run = await ExternalProcess.Run(
            pipeline,
            ["run", "--nodes", "2", "--frames", "20", "--fps", "0", "--json"],
            TimeSpan.FromMinutes(3),
            workingFolder,
            ExternalProcess.BareEnvironment(workingFolder));

        Assert.True(run.Code == 0, $"pipeline run exited with {run.Code}: {run.Error}");
        using var report = JsonDocument.Parse(run.Output);
        Assert.Equal("blazeface-back-256.onnx", report.RootElement.GetProperty("model").GetString());
        Assert.Equal(20, report.RootElement.GetProperty("resultsOut").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("failed").GetInt32());
    }

    [Fact]
    public async Task Install_sh_under_a_prefix_lays_out_opt_etc_and_the_user_and_a_second_run_keeps_an_edited_env_file()
    {
        var prefix = Directory.CreateDirectory(Path.Combine(archives.Folder, "root")).FullName;
        Directory.CreateDirectory(Path.Combine(prefix, "etc"));
        foreach (var file in new[] { "passwd", "group", "shadow", "gshadow", "login.defs" })
        {
            File.Copy(Path.Combine("/etc", file), Path.Combine(prefix, "etc", file));
        }

        var install = Path.Combine(archives.Unpacked("linux-x64"), "install.sh");
        var first = await ExternalProcess.Run("bash", [install, "--prefix", prefix], Quick);
        Assert.True(first.Code == 0, $"install.sh exited with {first.Code}: {first.Output}{first.Error}");

        var opt = Path.Combine(prefix, "opt", "pipelineactors");
        var env = Path.Combine(prefix, "etc", "pipelineactors", "pipeline-node.env");
        var unit = Path.Combine(prefix, "etc", "systemd", "system", "pipeline-node.service");
        Assert.True(File.Exists(Path.Combine(opt, "bin", "pipeline-node")));
        Assert.True(File.Exists(Path.Combine(opt, "bin", "libonnxruntime.so")));
        Assert.Equal(RepositoryFile("tools/systemd/pipeline-node.service"), await File.ReadAllTextAsync(unit));
        Assert.Equal(RepositoryFile("tools/systemd/pipeline-node.env"), await File.ReadAllTextAsync(env));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(env));
        var user = Assert.Single(await File.ReadAllLinesAsync(Path.Combine(prefix, "etc", "passwd")), IsPipelineUser);
        Assert.EndsWith(":/var/lib/pipelineactors:/usr/sbin/nologin", user, StringComparison.Ordinal);

        // The link in usr/local/bin is relative, so it resolves inside the prefix as it will under /.
        var linked = await ExternalProcess.Run(Path.Combine(prefix, "usr", "local", "bin", "pipeline-node"), ["--help"], Quick);
        Assert.Equal(0, linked.Code);
        Assert.Contains("--seeds", linked.Output, StringComparison.Ordinal);

        await File.AppendAllTextAsync(env, "PIPELINE_ROLES=worker,coordinator\n");
        var edited = await File.ReadAllTextAsync(env);
        var second = await ExternalProcess.Run("bash", [install, "--prefix", prefix], Quick);
        Assert.True(second.Code == 0, $"install.sh exited with {second.Code} the second time: {second.Output}{second.Error}");
        Assert.Equal(edited, await File.ReadAllTextAsync(env));
        Assert.Equal(RepositoryFile("tools/systemd/pipeline-node.env"), await File.ReadAllTextAsync(env + ".new"));
        Assert.Single(await File.ReadAllLinesAsync(Path.Combine(prefix, "etc", "passwd")), IsPipelineUser);
        Assert.False(Directory.Exists(opt + ".new") || Directory.Exists(opt + ".old"), "install.sh left its swap folders behind");

        // systemd's own parser on the installed unit, its paths moved into the prefix: no unknown key, no bad value.
        var verifyFolder = Directory.CreateDirectory(Path.Combine(archives.Folder, "verify")).FullName;
        var prefixed = (await File.ReadAllTextAsync(unit))
            .Replace("/opt/pipelineactors", opt, StringComparison.Ordinal)
            .Replace("/etc/pipelineactors", Path.Combine(prefix, "etc", "pipelineactors"), StringComparison.Ordinal);
        var verifiedUnit = Path.Combine(verifyFolder, "pipeline-node.service");
        await File.WriteAllTextAsync(verifiedUnit, prefixed);
        var verify = await ExternalProcess.Run("systemd-analyze", ["verify", verifiedUnit], Quick);
        Assert.True(verify.Code == 0 && verify.Error.Trim().Length == 0, $"systemd-analyze verify: {verify.Code} {verify.Error}");

        // The hardening holds: exposure 3.3 of 10 when written (the unit before it: 9.2, "UNSAFE"); above 4.0 fails.
        var security = await ExternalProcess.Run("systemd-analyze", ["security", "--offline=yes", "--threshold=40", verifiedUnit], Quick);
        Assert.True(security.Code == 0, $"systemd-analyze security rates the unit above 4.0:\n{security.Output}");
    }

    [Fact]
    public async Task Bad_arguments_to_publish_sh_and_install_sh_are_one_sentence_and_exit_code_2()
    {
        var publish = Path.Combine(RepositoryFiles.Root, "tools", "publish.sh");
        var cases = new (string Script, string[] Arguments, string Named)[]
        {
            (publish, ["--rid", "linux-sparc"], "linux-sparc"),
            (publish, ["--out"], "--out"),
            (publish, ["--frobnicate"], "--frobnicate"),
            (Path.Combine(archives.Unpacked("linux-x64"), "install.sh"), ["--frobnicate"], "--frobnicate"),
            (Path.Combine(archives.Unpacked("linux-x64"), "install.sh"), ["--prefix"], "--prefix"),
            // Outside an archive there is nothing to install.
            (Path.Combine(RepositoryFiles.Root, "tools", "install.sh"), [], "unpacked archive"),
        };

        foreach (var (script, arguments, named) in cases)
        {
            var result = await ExternalProcess.Run("bash", [script, .. arguments], Quick);

            Assert.Equal(2, result.Code);
            Assert.Contains(named, Assert.Single(result.ErrorLines), StringComparison.Ordinal);
        }
    }

    private static void AssertQemuInstalled() =>
        Assert.True(
            File.Exists($"/usr/bin/{Qemu}") && File.Exists(Path.Combine(Arm64Sysroot, "lib", "ld-linux-aarch64.so.1")),
            $"{Qemu} or the arm64 runtime libraries are missing: apt-get install qemu-user-static libc6-arm64-cross "
            + "libstdc++6-arm64-cross libgcc-s1-arm64-cross (.ci/run does)");

    private static bool IsPipelineUser(string passwdLine) => passwdLine.StartsWith("pipeline:", StringComparison.Ordinal);

    private static string RepositoryFile(string relativePath) => File.ReadAllText(Path.Combine(RepositoryFiles.Root, relativePath));
}
