// Measurements (CPU shares, link rates) must not run against each other on a 2-core machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
