using System.Runtime.InteropServices;

namespace PipelineActors.Transfer.Codecs;

/// <summary>
/// <c>fp16</c>: each float rounded to the nearest IEEE half (ties to even, as <see cref="Half"/> converts), then the
/// lossless stage. NaN stays NaN and infinities stay infinite; finite values beyond the half range saturate to
/// +-65504 instead of becoming infinite, so a finite activation never turns into an infinity downstream.
/// </summary>
public sealed class Fp16Codec(LosslessMethod method = LosslessMethod.Lz4) : ITensorCodec
{
    /// <summary>The relative error bound in the half's normal range: half a unit in the last of 11 significant bits.</summary>
    public const double RelativeBound = 1.0 / 2048;

    private static readonly Half MaxHalf = Half.MaxValue;

    public string Name => method == LosslessMethod.Zstd ? "fp16+zstd" : "fp16";

    public CodecPromise Promise { get; } = new(false,
        "relative error <= 2^-11 for |x| in [2^-14, 65504]; absolute error <= 2^-25 below; beyond +-65504 saturates; NaN and +-Inf kept");

    public byte[] Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        CodecHeader.CheckShape(shape, values.Length);
        var halves = new Half[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var x = values[i];
            var h = (Half)x;
            if (Half.IsInfinity(h) && float.IsFinite(x))
            {
                h = x > 0 ? MaxHalf : -MaxHalf;
            }

            halves[i] = h;
        }

        var block = LosslessStage.Encode(MemoryMarshal.AsBytes(halves.AsSpan()), 2, method);
        return Lz4Codec.Assemble(CodecId.Fp16, shape, [], block);
    }

    public DecodedTensor Decode(ReadOnlySpan<byte> encoded, DecodeLimits limits)
    {
        var (shape, count, offset) = CodecHeader.Read(encoded, CodecId.Fp16, Name, limits);
        LosslessStage.CheckPlausible(encoded[offset..], count * 2, 2, "fp16 tensor");
        var halves = new Half[count];
        LosslessStage.Decode(encoded[offset..], MemoryMarshal.AsBytes(halves.AsSpan()), 2, "fp16 tensor");
        var values = new float[count];
        for (var i = 0; i < halves.Length; i++)
        {
            values[i] = (float)halves[i];
        }

        return new DecodedTensor(shape, values);
    }
}
