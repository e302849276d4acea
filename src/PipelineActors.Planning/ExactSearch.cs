using System.Numerics;
using System.Runtime.CompilerServices;

namespace PipelineActors.Planning;

/// <summary>
/// The exact search over a selection of devices (the source among them). A state is (set of devices
/// used, last device, blocks done); each device is used at most once, so the order is part of the
/// search. A pass visits the sets in increasing order; from each state a frame hops to an unused
/// device (its best previous device kept per cut) and that device computes up to any later cut that
/// keeps compute and memory within limits. The throughput objective takes two passes: the least
/// period (values are the largest stage or link time so far, a bottleneck path), then the least
/// latency among plans within that period (values are sums). A replicated stage is a tail: a group
/// of devices that runs every block from some cut to the end, priced as <see cref="PlanEvaluator"/>
/// documents. Work per pass: 2^m * m * n^2 / 2 steps for m devices and n blocks.
/// </summary>
internal sealed class ExactSearch
{
    private readonly int[] _global;
    private readonly int _m;
    private readonly int _n;
    private readonly int _source;
    private readonly double[][] _cum;
    private readonly int[][] _memoryEnd;
    private readonly bool[,] _hasLink;
    private readonly double[][][] _transfer;
    private readonly double[][][] _hop;
    private readonly double[] _sinkTransfer;
    private readonly double[] _sinkHop;
    private readonly int[] _groups;
    private readonly double[][][] _groupNeed;
    private readonly double[][][] _groupLatency;
    private readonly int[][] _ends;

    public ExactSearch(PlanProblem problem, IReadOnlyList<int> devices, int maxReplicas)
    {
        _global = [.. devices];
        _m = _global.Length;
        _n = problem.BlockCount;
        _source = Array.IndexOf(_global, problem.SourceIndex);
        if (_source < 0 || _m > 20)
        {
            throw new ArgumentException("The selection must hold the source and at most 20 devices.", nameof(devices));
        }

        _cum = new double[_m][];
        _memoryEnd = new int[_m][];
        _ends = new int[_m][];
        for (var l = 0; l < _m; l++)
        {
            var d = _global[l];
            // The problem's own prefix sums, so a stage costs here exactly what the evaluator charges.
            _cum[l] = new double[_n + 1];
            for (var k = 0; k <= _n; k++)
            {
                _cum[l][k] = problem.ComputeMs(d, 0, k);
            }

            // A range that fits stays fitting when it starts later, so one pointer walks forward.
            _memoryEnd[l] = new int[_n + 1];
            var end = 0;
            for (var k = 0; k <= _n; k++)
            {
                end = Math.Max(end, k);
                while (end < _n && problem.Fits(d, k, end + 1))
                {
                    end++;
                }

                _memoryEnd[l][k] = end;
            }

            _ends[l] = new int[_n + 1];
        }

        _hasLink = new bool[_m, _m];
        _transfer = new double[_m][][];
        _hop = new double[_m][][];
        for (var a = 0; a < _m; a++)
        {
            _transfer[a] = new double[_m][];
            _hop[a] = new double[_m][];
            for (var b = 0; b < _m; b++)
            {
                _hasLink[a, b] = problem.Link(_global[a], _global[b]) is not null;
                _transfer[a][b] = new double[_n + 1];
                _hop[a][b] = new double[_n + 1];
                for (var k = 0; k <= _n; k++)
                {
                    var price = problem.Hop(_global[a], _global[b], k);
                    _transfer[a][b][k] = price?.TransferMs ?? double.PositiveInfinity;
                    _hop[a][b][k] = price?.HopMs ?? double.PositiveInfinity;
                }
            }
        }

        // The results' hop to the sink: none from the sink itself, or when no sink is named.
        _sinkTransfer = new double[_m];
        _sinkHop = new double[_m];
        for (var l = 0; l < _m; l++)
        {
            if (problem.SinkIndex >= 0 && _global[l] != problem.SinkIndex)
            {
                var price = problem.Hop(_global[l], problem.SinkIndex, _n);
                _sinkTransfer[l] = price?.TransferMs ?? double.PositiveInfinity;
                _sinkHop[l] = price?.HopMs ?? double.PositiveInfinity;
            }
        }

        var groups = new List<int>();
        for (var g = 1; g < 1 << _m; g++)
        {
            var size = BitOperations.PopCount((uint)g);
            if ((g & (1 << _source)) == 0 && size >= 2 && size <= maxReplicas)
            {
                groups.Add(g);
            }
        }

        _groups = [.. groups];
        _groupNeed = new double[_m][][];
        _groupLatency = new double[_m][][];
        for (var l = 0; l < _m; l++)
        {
            _groupNeed[l] = new double[_groups.Length][];
            _groupLatency[l] = new double[_groups.Length][];
            for (var gi = 0; gi < _groups.Length; gi++)
            {
                _groupNeed[l][gi] = new double[_n];
                _groupLatency[l][gi] = new double[_n];
                for (var k = 0; k < _n; k++)
                {
                    (_groupNeed[l][gi][k], _groupLatency[l][gi][k]) = GroupTail(l, _groups[gi], k);
                }
            }
        }
    }

    /// <summary>
    /// A replicated tail after device <paramref name="previous"/> ends at cut <paramref name="k"/>: the least
    /// period cap it keeps within (infinite if it cannot run) and the latency it adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private (double Need, double Latency) GroupTail(int previous, int group, int k)
    {
        if ((group & (1 << previous)) != 0)
        {
            return (double.PositiveInfinity, double.PositiveInfinity);
        }

        Span<double> times = stackalloc double[_m];
        Span<int> members = stackalloc int[_m];
        var count = 0;
        for (var b = 0; b < _m; b++)
        {
            if ((group & (1 << b)) != 0)
            {
                if (_memoryEnd[b][k] < _n || !_hasLink[previous, b] || double.IsInfinity(_sinkTransfer[b]))
                {
                    return (double.PositiveInfinity, double.PositiveInfinity);
                }

                members[count] = b;
                times[count++] = _cum[b][_n] - _cum[b][k];
            }
        }

        Span<double> shares = stackalloc double[count];
        var need = CostModel.Shares(times[..count], shares);
        double slowest = 0, hopIn = 0, hopOut = 0;
        for (var j = 0; j < count; j++)
        {
            var b = members[j];
            need = Math.Max(need, Math.Max(shares[j] * _transfer[previous][b][k], shares[j] * _sinkTransfer[b]));
            slowest = Math.Max(slowest, times[j]);
            hopIn = Math.Max(hopIn, _hop[previous][b][k]);
            hopOut = Math.Max(hopOut, _sinkHop[b]);
        }

        return (need, hopIn + slowest + hopOut);
    }

    /// <summary>For each device and start cut, the last cut a stage may end at within the cap (compute and memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ComputeEnds(double cap)
    {
        for (var l = 0; l < _m; l++)
        {
            var cum = _cum[l];
            var ends = _ends[l];
            var end = 0;
            for (var k = 0; k <= _n; k++)
            {
                end = Math.Max(end, k);
                while (end < _n && CostModel.Within(cum[end + 1] - cum[k], cap))
                {
                    end++;
                }

                ends[k] = Math.Min(end, _memoryEnd[l][k]);
            }
        }
    }

    private int Index(int set, int last) => (set * _m) + last;

    /// <summary>The plan of least period (the bottleneck: max of stage compute and link occupancy), or null if none runs.</summary>
    /// <param name="bound">The period of some plan that runs, or infinity: no stage or link slower than it is tried.</param>
    public Plan? MinPeriod(double bound = double.PositiveInfinity) => Search(bound, bottleneck: true, double.PositiveInfinity);

    /// <summary>The plan of least one-frame latency among those whose period keeps within the cap, or null if none does.</summary>
    /// <param name="bound">The latency of some plan within the cap, or infinity: no partial plan slower than it is extended.</param>
    public Plan? MinLatency(double cap, double bound = double.PositiveInfinity) => Search(cap, bottleneck: false, bound);

    /// <summary>
    /// One pass over the states in order of their device sets. A state's value is the latency so far
    /// (a sum) or, for the period, the largest stage or link time so far (a max: a bottleneck path,
    /// which the same recurrence finds exactly).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Plan? Search(double cap, bool bottleneck, double bound)
    {
        // Figures only grow along a plan, so a partial plan past the bound cannot end below it.
        bound += bound * 1e-9;
        ComputeEnds(cap);
        var width = _n + 1;
        var states = (1 << _m) * _m * width;
        var best = new double[states];
        var cameFrom = new int[states];
        var previous = new sbyte[states];
        Array.Fill(best, double.PositiveInfinity);
        var start = 1 << _source;
        for (var k = 0; k <= _ends[_source][0]; k++)
        {
            best[(Index(start, _source) * width) + k] = _cum[_source][k];
        }

        var arrive = new double[_n];
        var arriveFrom = new sbyte[_n];
        var bestValue = double.PositiveInfinity;
        (int Set, int Last, int Cut, int Group) end = (-1, -1, -1, -1);
        for (var set = start; set < 1 << _m; set++)
        {
            if ((set & start) == 0)
            {
                continue;
            }

            for (var l = 0; l < _m; l++)
            {
                if ((set & (1 << l)) == 0)
                {
                    continue;
                }

                var row = Index(set, l) * width;
                var done = best[row + _n];
                var total = bottleneck ? Math.Max(done, _sinkTransfer[l]) : done + _sinkHop[l];
                if (total < bestValue && CostModel.Within(_sinkTransfer[l], cap))
                {
                    bestValue = total;
                    end = (set, l, _n, -1);
                }

                for (var gi = 0; gi < _groups.Length; gi++)
                {
                    if ((_groups[gi] & set) != 0)
                    {
                        continue;
                    }

                    var need = _groupNeed[l][gi];
                    var latency = _groupLatency[l][gi];
                    for (var k = 0; k < _n; k++)
                    {
                        total = bottleneck ? Math.Max(best[row + k], need[k]) : best[row + k] + latency[k];
                        if (total < bestValue && CostModel.Within(need[k], cap))
                        {
                            bestValue = total;
                            end = (set, l, k, gi);
                        }
                    }
                }
            }

            for (var next = 0; next < _m; next++)
            {
                if ((set & (1 << next)) != 0)
                {
                    continue;
                }

                // Arrive at the next device with k blocks done: the best last device and hop.
                Array.Fill(arrive, double.PositiveInfinity);
                var any = false;
                for (var l = 0; l < _m; l++)
                {
                    if ((set & (1 << l)) == 0 || !_hasLink[l, next])
                    {
                        continue;
                    }

                    var from = best.AsSpan(Index(set, l) * width, _n);
                    var transfer = _transfer[l][next];
                    var hop = _hop[l][next];
                    for (var k = 0; k < from.Length; k++)
                    {
                        var v = bottleneck ? Math.Max(from[k], transfer[k]) : from[k] + hop[k];
                        if (v < arrive[k] && CostModel.Within(transfer[k], cap))
                        {
                            arrive[k] = v;
                            arriveFrom[k] = (sbyte)l;
                            any = true;
                        }
                    }
                }

                if (!any)
                {
                    continue;
                }

                var here = Index(set, next) * width;
                var target = Index(set | (1 << next), next) * width;
                var into = best.AsSpan(target, width);
                var came = cameFrom.AsSpan(target, width);
                var cum = _cum[next];
                var ends = _ends[next];
                for (var k = 0; k < _n; k++)
                {
                    previous[here + k] = arriveFrom[k];
                    var v0 = arrive[k];
                    if (double.IsPositiveInfinity(v0))
                    {
                        continue;
                    }

                    var c0 = cum[k];
                    var stop = ends[k];
                    if (bottleneck)
                    {
                        for (var k2 = k + 1; k2 <= stop; k2++)
                        {
                            var v = Math.Max(v0, cum[k2] - c0);
                            if (v < into[k2])
                            {
                                into[k2] = v;
                                came[k2] = k;
                            }
                        }
                    }
                    else
                    {
                        for (var k2 = k + 1; k2 <= stop; k2++)
                        {
                            var v = v0 + (cum[k2] - c0);
                            if (v > bound)
                            {
                                break;
                            }

                            if (v < into[k2])
                            {
                                into[k2] = v;
                                came[k2] = k;
                            }
                        }
                    }
                }
            }
        }

        return end.Set < 0 ? null : Rebuild(end, cameFrom, previous);
    }

    private Plan Rebuild((int Set, int Last, int Cut, int Group) end, int[] cameFrom, sbyte[] previous)
    {
        var stages = new List<PlanStage>();
        if (end.Group >= 0)
        {
            var members = Enumerable.Range(0, _m).Where(b => (_groups[end.Group] & (1 << b)) != 0).Select(b => _global[b]).ToList();
            stages.Add(new PlanStage(members, end.Cut, _n - end.Cut));
        }

        var (set, last, cut) = (end.Set, end.Last, end.Cut);
        while (set != 1 << _source)
        {
            var first = cameFrom[(Index(set, last) * (_n + 1)) + cut];
            stages.Add(new PlanStage([_global[last]], first, cut - first));
            set &= ~(1 << last);
            last = previous[(Index(set, last) * (_n + 1)) + first];
            cut = first;
        }

        stages.Add(new PlanStage([_global[_source]], 0, cut));
        stages.Reverse();
        return new Plan(stages);
    }
}
