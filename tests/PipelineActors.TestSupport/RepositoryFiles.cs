namespace PipelineActors.TestSupport;

/// <summary>The repository's own files (bundled models, profiles), found from the test binaries upwards.</summary>
public static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string ModelsFolder => Path.Combine(Root, "models");

    public static string Model(string fileName) => Path.Combine(ModelsFolder, fileName);

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "PipelineActors.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("PipelineActors.sln not found above " + AppContext.BaseDirectory);
    }
}
