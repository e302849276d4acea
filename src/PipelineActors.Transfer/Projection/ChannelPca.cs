using MathNet.Numerics.LinearAlgebra;
using PipelineActors.Transfer.Calibration;

namespace PipelineActors.Transfer.Projection;

/// <summary>
/// Accumulates the channel covariance of calibration activations, treating each pixel's channel vector (axis 1 of
/// NCHW) as one sample; sums in double merge exactly across frames. <see cref="Fit"/> gives the <c>pca:K</c> projection.
/// </summary>
public sealed class ChannelCovariance
{
    private readonly double[] _sum;
    private readonly Matrix<double> _outer;

    public ChannelCovariance(int channels)
    {
        if (channels < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "A tensor has at least one channel.");
        }

        Channels = channels;
        _sum = new double[channels];
        _outer = Matrix<double>.Build.Dense(channels, channels);
    }

    public int Channels { get; }

    /// <summary>Channel vectors (pixels) seen.</summary>
    public long Samples { get; private set; }

    /// <summary>Adds one NCHW (or NC...) tensor's pixels.</summary>
    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        var layout = ChannelLayout.Of(shape, 1);
        if (shape.Length < 2 || layout.Channels != Channels || layout.Count != values.Length)
        {
            throw new ArgumentException(
                $"A tensor of shape [{string.Join(",", shape.ToArray())}] does not have {Channels} channels on axis 1.", nameof(shape));
        }

        var pixels = (int)layout.Inner;
        for (long n = 0; n < layout.Outer; n++)
        {
            var block = values.Slice((int)(n * Channels * pixels), Channels * pixels);
            var x = Matrix<double>.Build.Dense(Channels, pixels);
            for (var c = 0; c < Channels; c++)
            {
                for (var p = 0; p < pixels; p++)
                {
                    var v = block[(c * pixels) + p];
                    x[c, p] = v;
                    _sum[c] += v;
                }
            }

            _outer.Add(x.TransposeAndMultiply(x), _outer);
            Samples += pixels;
        }
    }

    /// <summary>Adds the pixels <paramref name="other"/> has seen (the covariance of the same tensor over other frames).</summary>
    public void Merge(ChannelCovariance other)
    {
        if (other.Channels != Channels)
        {
            throw new ArgumentException($"A covariance of {other.Channels} channels cannot merge into one of {Channels}.", nameof(other));
        }

        for (var c = 0; c < Channels; c++)
        {
            _sum[c] += other._sum[c];
        }

        _outer.Add(other._outer, _outer);
        Samples += other.Samples;
    }

    /// <summary>The sums as they serialise beside a split (the upper triangle of the symmetric sum of outer products).</summary>
    public ChannelCovarianceState ToState(string name)
    {
        var upper = new double[Channels * (Channels + 1) / 2];
        for (int i = 0, k = 0; i < Channels; i++)
        {
            for (var j = i; j < Channels; j++)
            {
                upper[k++] = _outer[i, j];
            }
        }

        return new ChannelCovarianceState(name, Channels, Samples, [.. _sum], upper);
    }

    /// <summary>Rebuilds the sums <see cref="ToState"/> wrote; an inconsistent state is an input error naming <paramref name="what"/>.</summary>
    public static ChannelCovariance FromState(ChannelCovarianceState state, string what)
    {
        var channels = state.Channels;
        if (channels < 1 || state.Samples < 0 || state.Sum?.Length != channels || state.Upper?.Length != channels * (channels + 1) / 2
            || state.Sum.Concat(state.Upper).Any(v => !double.IsFinite(v)))
        {
            throw new PipelineActors.Onnx.PipelineInputException(
                $"'{what}' holds an inconsistent channel covariance for '{state.Name}'; run the calibration again.");
        }

        var covariance = new ChannelCovariance(channels) { Samples = state.Samples };
        state.Sum.CopyTo(covariance._sum, 0);
        for (int i = 0, k = 0; i < channels; i++)
        {
            for (var j = i; j < channels; j++, k++)
            {
                covariance._outer[i, j] = state.Upper[k];
                covariance._outer[j, i] = state.Upper[k];
            }
        }

        return covariance;
    }

    /// <summary>The first <paramref name="components"/> principal directions of the channel covariance (by SVD), with the mean.</summary>
    public ChannelProjection Fit(int components)
    {
        if (components < 1 || components > Channels)
        {
            throw new ArgumentOutOfRangeException(nameof(components), components, $"pca:K needs 1 <= K <= {Channels} channels.");
        }

        if (Samples < 2)
        {
            throw new InvalidOperationException("A channel projection needs calibration activations with at least two pixels.");
        }

        var mean = Vector<double>.Build.Dense(_sum).Divide(Samples);
        var covariance = _outer.Divide(Samples) - mean.OuterProduct(mean);
        var svd = covariance.Svd(computeVectors: true);
        var projection = new float[components * Channels];
        for (var k = 0; k < components; k++)
        {
            for (var c = 0; c < Channels; c++)
            {
                projection[(k * Channels) + c] = (float)svd.U[c, k];
            }
        }

        var total = svd.S.Sum();
        var kept = svd.S.Take(components).Sum();
        return new ChannelProjection(Channels, components, projection, [.. mean.Select(v => (float)v)], total <= 0 ? 1 : kept / total);
    }
}

/// <summary>A <see cref="ChannelCovariance"/>'s sums as JSON carries them: per-channel sums and the upper triangle, row by row.</summary>
public sealed record ChannelCovarianceState(string Name, int Channels, long Samples, double[] Sum, double[] Upper);

/// <summary>
/// A <c>pca:K</c> projection: y = P (x - mean) with P the K x C matrix of the top K principal directions (orthonormal
/// rows), and its inverse x = P^T y + mean. As ONNX these are two 1x1 convolutions.
/// </summary>
/// <param name="Projection">P, K rows of C values.</param>
/// <param name="ExplainedVariance">Share of the calibration variance the K directions keep.</param>
public sealed record ChannelProjection(int Channels, int Components, float[] Projection, float[] Mean, double ExplainedVariance)
{
    /// <summary>Bias of the projecting convolution: -P mean.</summary>
    public float[] ProjectionBias()
    {
        var bias = new float[Components];
        for (var k = 0; k < Components; k++)
        {
            double sum = 0;
            for (var c = 0; c < Channels; c++)
            {
                sum += Projection[(k * Channels) + c] * (double)Mean[c];
            }

            bias[k] = (float)-sum;
        }

        return bias;
    }

    /// <summary>Weight of the inverse convolution, P^T as C rows of K values.</summary>
    public float[] InverseWeight()
    {
        var inverse = new float[Channels * Components];
        for (var k = 0; k < Components; k++)
        {
            for (var c = 0; c < Channels; c++)
            {
                inverse[(c * Components) + k] = Projection[(k * Channels) + c];
            }
        }

        return inverse;
    }

    /// <summary>Applies P (x - mean) per pixel of an NCHW tensor, as the ONNX rewrite does.</summary>
    public float[] Project(ReadOnlySpan<float> values, ReadOnlySpan<long> shape) =>
        Apply(values, shape, Projection, ProjectionBias(), Channels, Components);

    /// <summary>Applies P^T y + mean per pixel of an NKHW tensor.</summary>
    public float[] Reconstruct(ReadOnlySpan<float> values, ReadOnlySpan<long> shape) =>
        Apply(values, shape, InverseWeight(), Mean, Components, Channels);

    private static float[] Apply(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, float[] weight, float[] bias, int from, int to)
    {
        var layout = ChannelLayout.Of(shape, 1);
        if (shape.Length < 2 || layout.Channels != from || layout.Count != values.Length)
        {
            throw new ArgumentException($"The tensor does not have {from} channels on axis 1.", nameof(shape));
        }

        var pixels = (int)layout.Inner;
        var result = new float[layout.Outer * to * pixels];
        for (long n = 0; n < layout.Outer; n++)
        {
            var input = values.Slice((int)(n * from * pixels), from * pixels);
            var output = result.AsSpan((int)(n * to * pixels), to * pixels);
            for (var o = 0; o < to; o++)
            {
                for (var p = 0; p < pixels; p++)
                {
                    double sum = bias[o];
                    for (var i = 0; i < from; i++)
                    {
                        sum += weight[(o * from) + i] * (double)input[(i * pixels) + p];
                    }

                    output[(o * pixels) + p] = (float)sum;
                }
            }
        }

        return result;
    }
}
