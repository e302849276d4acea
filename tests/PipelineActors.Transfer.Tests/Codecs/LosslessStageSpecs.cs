using PipelineActors.Transfer.Codecs;

namespace PipelineActors.Transfer.Tests.Codecs;

/// <summary>The lossless stage compresses only where it pays, picks the smaller form, and gives back every byte.</summary>
public sealed class LosslessStageSpecs
{
    [Fact]
    public void Random_bytes_stay_raw_behind_a_five_byte_prefix()
    {
        var raw = new byte[10_000];
        new Random(1).NextBytes(raw);

        var block = LosslessStage.Encode(raw, 4);

        Assert.Equal(0, block[0]);
        Assert.Equal(raw.Length + LosslessStage.PrefixBytes, block.Length);
        Assert.Equal(raw, RoundTrip(block, raw.Length, 4));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Sparse_elements_take_the_zero_elided_form_and_come_back_exactly(int size)
    {
        var random = new Random(2);
        var raw = new byte[size * 9_999]; // not a multiple of 8 elements: the bitmap's last byte is partial
        for (var i = 0; i < raw.Length / size; i++)
        {
            if (random.NextDouble() < 0.3)
            {
                random.NextBytes(raw.AsSpan(i * size, size));
                raw[i * size] |= 1;
            }
        }

        var block = LosslessStage.Encode(raw, size);

        Assert.Equal(2, block[0]);
        Assert.True(block.Length < raw.Length * 0.75, $"{block.Length} of {raw.Length} bytes");
        Assert.Equal(raw, RoundTrip(block, raw.Length, size));
    }

    [Fact]
    public void A_repeating_pattern_without_zeros_takes_plain_lz4()
    {
        var raw = Enumerable.Range(0, 40_000).Select(i => (byte)(1 + (i % 7))).ToArray();

        var block = LosslessStage.Encode(raw, 1);

        Assert.Equal(1, block[0]);
        Assert.True(block.Length < 1_000, $"{block.Length} bytes");
        Assert.Equal(raw, RoundTrip(block, raw.Length, 1));
    }

    [Fact]
    public void A_zero_elided_block_whose_bitmap_disagrees_with_its_count_is_a_codec_error()
    {
        // 1000 four-byte elements: a bitmap marking three where the count says two, and planes for two.
        var elided = new byte[125 + 8];
        elided[0] = 0b1011;
        var packed = new byte[K4os.Compression.LZ4.LZ4Codec.MaximumOutputSize(elided.Length)];
        var length = K4os.Compression.LZ4.LZ4Codec.Encode(elided, packed);
        var block = new byte[LosslessStage.PrefixBytes + 4 + length];
        block[0] = 2;
        BitConverter.TryWriteBytes(block.AsSpan(1), 4 + length);
        BitConverter.TryWriteBytes(block.AsSpan(LosslessStage.PrefixBytes), 2);
        packed.AsSpan(0, length).CopyTo(block.AsSpan(LosslessStage.PrefixBytes + 4));

        var error = Assert.Throws<TensorCodecException>(() => RoundTrip(block, 4_000, 4));
        Assert.Contains("bitmap marks 3 elements where 2 are declared", error.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void With_zstd_sparse_elements_take_its_zero_elided_form_come_back_exactly_and_end_smaller_than_with_lz4(int size)
    {
        var random = new Random(3);
        var raw = new byte[size * 20_001];
        for (var i = 0; i < raw.Length / size; i++)
        {
            if (random.NextDouble() < 0.3)
            {
                // Few distinct values, as quantised codes are: an entropy coder gains over LZ4 there.
                raw[i * size] = (byte)(1 + random.Next(12));
            }
        }

        var zstd = LosslessStage.Encode(raw, size, LosslessMethod.Zstd);
        var lz4 = LosslessStage.Encode(raw, size, LosslessMethod.Lz4);

        Assert.Equal(4, zstd[0]);
        Assert.Equal(raw, RoundTrip(zstd, raw.Length, size));
        Assert.True(zstd.Length < lz4.Length, $"zstd {zstd.Length} bytes, lz4 {lz4.Length}");
    }

    [Fact]
    public void With_zstd_a_repeating_pattern_takes_plain_zstd_and_random_bytes_stay_raw()
    {
        var pattern = Enumerable.Range(0, 40_000).Select(i => (byte)(1 + (i % 7))).ToArray();
        var noise = new byte[10_000];
        new Random(4).NextBytes(noise);

        var packed = LosslessStage.Encode(pattern, 1, LosslessMethod.Zstd);
        var raw = LosslessStage.Encode(noise, 4, LosslessMethod.Zstd);

        Assert.Equal(3, packed[0]);
        Assert.True(packed.Length < 1_000, $"{packed.Length} bytes");
        Assert.Equal(pattern, RoundTrip(packed, pattern.Length, 1));
        Assert.Equal(0, raw[0]);
        Assert.Equal(noise, RoundTrip(raw, noise.Length, 4));
    }

    [Fact]
    public void A_corrupt_or_truncated_zstd_payload_is_a_codec_error_naming_zstd()
    {
        var raw = Enumerable.Range(0, 40_000).Select(i => (byte)(1 + (i % 7))).ToArray();
        var block = LosslessStage.Encode(raw, 1, LosslessMethod.Zstd);
        var truncated = block[..^3];
        BitConverter.TryWriteBytes(truncated.AsSpan(1), truncated.Length - LosslessStage.PrefixBytes);
        var scrambled = (byte[])block.Clone();
        for (var i = LosslessStage.PrefixBytes; i < scrambled.Length; i++)
        {
            scrambled[i] ^= 0x5A;
        }

        Assert.Contains("zstd payload is corrupt", Assert.Throws<TensorCodecException>(() => RoundTrip(truncated, raw.Length, 1)).Message);
        Assert.Contains("zstd payload is corrupt", Assert.Throws<TensorCodecException>(() => RoundTrip(scrambled, raw.Length, 1)).Message);
    }

    private static byte[] RoundTrip(byte[] block, int length, int size)
    {
        var back = new byte[length];
        LosslessStage.Decode(block, back, size, "test block");
        return back;
    }
}
