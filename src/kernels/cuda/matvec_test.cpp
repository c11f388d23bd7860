// matvec (the decode step's products) and the 8-bit activations it reads, against simple host
// references: quantize_q8 and rms_norm_q8 code for code; the products of F32 and F16 rows against
// ref::matvec of x, those of quantized rows against ref::matvec of x's dequantized codes (the
// __dp4a sums are exact, so only F32 summation order differs; K-quant mins come in through the
// activation blocks' d * sum). Every output mode, one to three matrices a launch, widths that
// split a warp's pass, and rows at a 2-byte offset.
#include <cmath>
#include <cstring>

#include "kernels/cuda/ops.h"
#include "kernels/cuda/test_util.h"
#include "kernels/ref/ops.h"
#include "kernels/ref/quants.h"

namespace pensieve::cuda {
namespace {

// The weight types whose rows multiply x's 8-bit codes.
bool quantized(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_K ||
         type == GgmlType::kQ5_K || type == GgmlType::kQ6_K;
}

bool k_quant(GgmlType type) { return ggml_type_traits(type).block_elements == 256; }

// x in blocks of 32 as quantize_q8 defines them: d = max|x| / 127, codes round(x / d).
struct HostQ8 {
  std::vector<int8_t> qs;
  std::vector<float> d, d_sum;
  std::vector<float> dequantized;  // qs * d
};

HostQ8 host_quantize(const std::vector<float>& x) {
  HostQ8 h;
  h.qs.resize(x.size());
  h.dequantized.resize(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0.0f;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (size_t j = 0; j < 32; ++j) {
      const int q = static_cast<int>(std::round(x[b * 32 + j] * id));
      h.qs[b * 32 + j] = static_cast<int8_t>(q);
      h.dequantized[b * 32 + j] = static_cast<float>(q) * d;
      sum += q;
    }
    h.d.push_back(d);
    h.d_sum.push_back(d * static_cast<float>(sum));
  }
  return h;
}

struct DeviceQ8 {
  explicit DeviceQ8(size_t n) : qs(n), ds(2 * (n / 32)) {}
  Q8Act act() const { return {qs.get(), reinterpret_cast<float2*>(ds.get())}; }
  test::DeviceBuffer<int8_t> qs;
  test::DeviceBuffer<float> ds;
};

void expect_codes(const DeviceQ8& got, const HostQ8& want) {
  const std::vector<int8_t> qs = got.qs.download();
  const std::vector<float> ds = got.ds.download();
  for (size_t i = 0; i < want.qs.size(); ++i) ASSERT_EQ(qs[i], want.qs[i]) << "element " << i;
  for (size_t b = 0; b < want.d.size(); ++b) {
    ASSERT_EQ(ds[2 * b], want.d[b]) << "block " << b;
    ASSERT_NEAR(ds[2 * b + 1], want.d_sum[b], 1e-6 * std::fabs(want.d_sum[b])) << "block " << b;
  }
}

class CudaQuantizeAct : public test::CudaTest {};

TEST_F(CudaQuantizeAct, CodesAndScalesMatchHost) {
  for (int64_t n : {32, 64, 2048, 5632}) {
    for (int64_t n_rows : {1, 3}) {
      SCOPED_TRACE(testing::Message() << "n " << n << " rows " << n_rows);
      std::vector<float> x = test::random_floats(static_cast<size_t>(n * n_rows), 11, 4.0f);
      std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block: d = 0, codes 0
      x[40] = 100.0f;                              // one large value sets its block's scale
      test::DeviceBuffer<float> x_dev(x);
      DeviceQ8 q(x.size());
      quantize_q8(x_dev.get(), n_rows, n, q.act(), nullptr);
      ASSERT_TRUE(test::synchronize());
      expect_codes(q, host_quantize(x));
    }
  }
}

TEST_F(CudaQuantizeAct, RmsNormQ8MatchesReferenceNorm) {
  for (int64_t n : {32, 256, 2048, 4096, 5120, 12288}) {  // every register-tile size
    SCOPED_TRACE(testing::Message() << "n " << n);
    const auto x = test::random_floats(static_cast<size_t>(n), 3, 3.0f);
    const auto weight = test::random_floats(static_cast<size_t>(n), 4);
    test::DeviceBuffer<float> x_dev(x), w_dev(weight), out_dev(x.size());
    DeviceQ8 q(x.size());
    rms_norm_q8(x_dev.get(), w_dev.get(), n, 1e-5f, out_dev.get(), q.act(), nullptr);
    ASSERT_TRUE(test::synchronize());
    const std::vector<float> got = out_dev.download();
    std::vector<float> want(x.size());
    ref::rms_norm(x.data(), weight.data(), n, 1e-5f, want.data());
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 2e-6 * std::fabs(want[i]) + 1e-6) << i;
    }
    expect_codes(q, host_quantize(got));  // the codes are those of the F32 output
  }
}

using test::random_matrix;

struct HostMatrix {
  std::vector<uint8_t> bytes;
  size_t row_bytes = 0;
  Matrix host() const { return {type, n_cols, n_rows, row_bytes, bytes.data()}; }
  GgmlType type;
  int64_t n_cols, n_rows;
};

// The reference products of every row of m with x: y[r] and sum |w x| (the tolerance's scale).
void reference(const HostMatrix& m, const std::vector<float>& x, std::vector<float>* y,
               std::vector<double>* magnitude) {
  const Matrix w = m.host();
  y->assign(static_cast<size_t>(m.n_rows), 0.0f);
  magnitude->assign(static_cast<size_t>(m.n_rows), 0.0);
  std::vector<float> row(static_cast<size_t>(m.n_cols));
  ref::matvec(w, x.data(), y->data(), row.data());
  for (int64_t r = 0; r < m.n_rows; ++r) {
    ref::matrix_row(w, r, row.data());
    for (int64_t c = 0; c < m.n_cols; ++c) (*magnitude)[r] += std::fabs(row[c] * x[c]);
  }
}

// n_w matrices of `type`, n_cols wide with row counts from `rows`, `offset` bytes into their
// buffers; one launch in mode `out`, checked against the reference.
void check_matvec(GgmlType type, int64_t n_cols, std::vector<int64_t> rows, MatvecOut out,
                  size_t offset) {
  SCOPED_TRACE(testing::Message() << ggml_type_name(type) << " cols " << n_cols << " rows "
                                  << rows[0] << " matrices " << rows.size() << " mode "
                                  << static_cast<int>(out) << " offset " << offset);
  const int n_w = static_cast<int>(rows.size());
  const std::vector<float> x = test::random_floats(static_cast<size_t>(n_cols), 77, 2.0f);
  const HostQ8 xq_host = quantized(type) ? host_quantize(x) : HostQ8{};
  const std::vector<float>& x_ref = quantized(type) ? xq_host.dequantized : x;
  test::DeviceBuffer<float> x_dev(x);
  DeviceQ8 xq(static_cast<size_t>(n_cols));
  if (quantized(type)) {
    quantize_q8(x_dev.get(), 1, n_cols, xq.act(), nullptr);
  }
  std::vector<HostMatrix> mats;
  std::vector<std::unique_ptr<test::DeviceBuffer<uint8_t>>> w_dev;
  std::vector<std::unique_ptr<test::DeviceBuffer<float>>> y_dev;
  std::vector<Matrix> dev_mats;
  std::vector<std::vector<float>> y_init;
  for (int i = 0; i < n_w; ++i) {
    HostMatrix m{{}, 0, type, n_cols, rows[i]};
    m.bytes = random_matrix(type, rows[i], n_cols, static_cast<uint64_t>(i * 1000 + n_cols),
                            &m.row_bytes);
    std::vector<uint8_t> padded(offset + m.bytes.size());
    std::memcpy(padded.data() + offset, m.bytes.data(), m.bytes.size());
    w_dev.push_back(std::make_unique<test::DeviceBuffer<uint8_t>>(padded));
    dev_mats.push_back(
        test::device_matrix(type, n_cols, rows[i], m.row_bytes, w_dev.back()->get() + offset));
    y_init.push_back(test::random_floats(static_cast<size_t>(rows[i]), 5 + i));
    y_dev.push_back(std::make_unique<test::DeviceBuffer<float>>(y_init.back()));
    mats.push_back(std::move(m));
  }
  MatvecJob job;
  job.n_w = n_w;
  for (int i = 0; i < n_w; ++i) {
    job.w[i] = &dev_mats[i];
    job.y[i] = y_dev[i]->get();
  }
  job.x = x_dev.get();
  job.xq = xq.act();
  job.out = out;
  matvec(job, nullptr);
  ASSERT_TRUE(test::synchronize());

  std::vector<std::vector<float>> want(n_w);
  std::vector<std::vector<double>> magnitude(n_w);
  for (int i = 0; i < n_w; ++i) reference(mats[i], x_ref, &want[i], &magnitude[i]);
  if (out == MatvecOut::kSwiglu) {
    const std::vector<float> got = y_dev[0]->download();
    for (int64_t r = 0; r < rows[0]; ++r) {
      const float g = want[0][r];
      const float u = want[1][r];
      const float expect = g / (1.0f + std::exp(-g)) * u;
      // d(silu(g) u) is at most about |u| dg + |silu(g)| du.
      const double tol = 1e-5 * (magnitude[0][r] * std::fabs(u) + magnitude[1][r] * std::fabs(g)) +
                         1e-6 * std::fabs(expect) + 1e-6;
      ASSERT_NEAR(got[r], expect, tol) << "row " << r;
    }
    return;
  }
  for (int i = 0; i < n_w; ++i) {
    const std::vector<float> got = y_dev[i]->download();
    for (int64_t r = 0; r < rows[i]; ++r) {
      const float base = out == MatvecOut::kAdd ? y_init[i][r] : 0.0f;
      ASSERT_NEAR(got[r], base + want[i][r], 1e-5 * magnitude[i][r] + 1e-6)
          << "matrix " << i << " row " << r;
    }
  }
}

class CudaMatvec : public test::CudaTest, public ::testing::WithParamInterface<GgmlType> {};

TEST_P(CudaMatvec, MatchesReferenceOverShapes) {
  const GgmlType type = GetParam();
  // K-quant rows go in units of 64 per lane: 4 units (most lanes idle), 32 (one pass), 36 and
  // 88 (a second, partial pass).
  const std::vector<int64_t> widths =
      k_quant(type)     ? std::vector<int64_t>{256, 512, 1280, 2048, 2304, 5632}
      : quantized(type) ? std::vector<int64_t>{32, 64, 96, 1056, 2048}
                        : std::vector<int64_t>{1, 7, 8, 33, 256, 1000, 2048};
  for (int64_t n_cols : widths) {
    for (int64_t n_rows : {1, 3, 4, 5, 67}) {
      check_matvec(type, n_cols, {n_rows}, MatvecOut::kStore, 0);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_P(CudaMatvec, ThreeMatricesAddAndSwiglu) {
  const GgmlType type = GetParam();
  for (int64_t n_cols : {k_quant(type) ? int64_t{256} : int64_t{64}, int64_t{4096}}) {
    check_matvec(type, n_cols, {67, 9, 9}, MatvecOut::kStore, 0);  // q, k, v of GQA
    check_matvec(type, n_cols, {5, 70, 1}, MatvecOut::kAdd, 0);
    check_matvec(type, n_cols, {131, 131}, MatvecOut::kSwiglu, 0);
    if (HasFatalFailure()) return;
  }
}

// Row ranges of a fused tensor start 2 bytes into a block-aligned buffer (4 for F32 rows); rows
// that are not 16-byte aligned take the element-wise path (Q4_K, Q5_K: 2-byte loads).
TEST_P(CudaMatvec, UnalignedRows) {
  const GgmlType type = GetParam();
  const size_t offset = type == GgmlType::kF32 ? 4 : 2;
  const int64_t width = k_quant(type) ? 512 : quantized(type) ? 96 : 0;
  check_matvec(type, width != 0 ? width : 33, {5}, MatvecOut::kStore, offset);
  check_matvec(type, width != 0 ? width : 40, {5, 5}, MatvecOut::kSwiglu, offset);
  check_matvec(type, width != 0 ? width : 40, {3, 4, 5}, MatvecOut::kAdd, offset);
}

// Several tokens in one launch give, bit for bit, what one launch per token gives: each row's
// sums per token are the same arithmetic in the same order. Every mode; q/k/v-shaped groups.
TEST_P(CudaMatvec, SeveralTokensEqualOneAtATime) {
  const GgmlType type = GetParam();
  const int64_t n_cols = k_quant(type) ? 512 : 96;
  constexpr int64_t kTokens = 5;
  for (MatvecOut out : {MatvecOut::kStore, MatvecOut::kAdd, MatvecOut::kSwiglu}) {
    SCOPED_TRACE(testing::Message() << "mode " << static_cast<int>(out));
    const std::vector<int64_t> rows =
        out == MatvecOut::kSwiglu ? std::vector<int64_t>{7, 7} : std::vector<int64_t>{9, 3, 3};
    const int n_w = static_cast<int>(rows.size());
    const std::vector<float> x = test::random_floats(static_cast<size_t>(kTokens * n_cols), 9);
    test::DeviceBuffer<float> x_dev(x);
    DeviceQ8 xq(x.size());
    if (quantized(type)) quantize_q8(x_dev.get(), kTokens, n_cols, xq.act(), nullptr);
    std::vector<std::unique_ptr<test::DeviceBuffer<uint8_t>>> w_dev;
    std::vector<Matrix> mats;
    for (int i = 0; i < n_w; ++i) {
      size_t row_bytes = 0;
      w_dev.push_back(std::make_unique<test::DeviceBuffer<uint8_t>>(
          random_matrix(type, rows[i], n_cols, static_cast<uint64_t>(50 + i), &row_bytes)));
      mats.push_back(test::device_matrix(type, n_cols, rows[i], row_bytes, w_dev.back()->get()));
    }
    // y as both ways see it: [kTokens, rows] per matrix, the same starting values.
    std::vector<std::vector<float>> y_init;
    std::vector<std::unique_ptr<test::DeviceBuffer<float>>> all, each;
    for (int i = 0; i < n_w; ++i) {
      y_init.push_back(test::random_floats(static_cast<size_t>(kTokens * rows[i]), 60 + i));
      all.push_back(std::make_unique<test::DeviceBuffer<float>>(y_init.back()));
      each.push_back(std::make_unique<test::DeviceBuffer<float>>(y_init.back()));
    }
    MatvecJob job;
    job.n_w = n_w;
    job.out = out;
    for (int i = 0; i < n_w; ++i) {
      job.w[i] = &mats[i];
      job.y[i] = all[i]->get();
    }
    job.x = x_dev.get();
    job.xq = xq.act();
    job.n_tokens = kTokens;
    matvec(job, nullptr);
    for (int64_t t = 0; t < kTokens; ++t) {
      MatvecJob one = job;
      one.n_tokens = 1;
      one.x = x_dev.get() + t * n_cols;
      one.xq = {xq.act().qs + t * n_cols, xq.act().ds + t * (n_cols / 32)};
      for (int i = 0; i < n_w; ++i) one.y[i] = each[i]->get() + t * rows[i];
      matvec(one, nullptr);
    }
    ASSERT_TRUE(test::synchronize());
    for (int i = 0; i < n_w; ++i) {
      const std::vector<float> got = all[i]->download();
      const std::vector<float> want = each[i]->download();
      for (size_t e = 0; e < want.size(); ++e) {
        ASSERT_EQ(got[e], want[e]) << "matrix " << i << " element " << e;
      }
    }
  }
}

// A residual product can also write its new values times the next norm's weight (norm_out, the
// input of products whose norm the attention kernel ends): y as without it, bit for bit, and the
// weighted values exactly those y times the weight.
TEST_P(CudaMatvec, ResidualAlsoWritesItsValuesTimesTheNormWeight) {
  const GgmlType type = GetParam();
  const int64_t n_cols = k_quant(type) ? 512 : 96;
  constexpr int64_t kTokens = 2;
  constexpr int64_t kRows = 67;
  const std::vector<float> x = test::random_floats(static_cast<size_t>(kTokens * n_cols), 31);
  test::DeviceBuffer<float> x_dev(x);
  DeviceQ8 xq(x.size());
  if (quantized(type)) quantize_q8(x_dev.get(), kTokens, n_cols, xq.act(), nullptr);
  size_t row_bytes = 0;
  test::DeviceBuffer<uint8_t> w_dev(random_matrix(type, kRows, n_cols, 32, &row_bytes));
  const Matrix w = test::device_matrix(type, n_cols, kRows, row_bytes, w_dev.get());
  const std::vector<float> y_init = test::random_floats(static_cast<size_t>(kTokens * kRows), 33);
  const std::vector<float> weight = test::random_floats(static_cast<size_t>(kRows), 34);
  test::DeviceBuffer<float> y_plain(y_init), y_norm(y_init), weight_dev(weight),
      weighted(y_init.size());
  MatvecJob job;
  job.w[0] = &w;
  job.y[0] = y_plain.get();
  job.x = x_dev.get();
  job.xq = xq.act();
  job.out = MatvecOut::kAdd;
  job.n_tokens = kTokens;
  matvec(job, nullptr);
  job.y[0] = y_norm.get();
  job.norm_out.weight = weight_dev.get();
  job.norm_out.weighted = weighted.get();
  matvec(job, nullptr);
  ASSERT_TRUE(test::synchronize());
  const std::vector<float> plain = y_plain.download();
  const std::vector<float> got = y_norm.download();
  const std::vector<float> got_weighted = weighted.download();
  ASSERT_EQ(got, plain);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got_weighted[i], got[i] * weight[i % kRows]) << "element " << i;
  }
}

TEST(CudaMatvecTypes, ReadsQ8ForQuantizedTypes) {
  for (GgmlType type :
       {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    EXPECT_TRUE(matvec_reads_q8(type)) << ggml_type_name(type);
  }
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    EXPECT_FALSE(matvec_reads_q8(type)) << ggml_type_name(type);
  }
}

INSTANTIATE_TEST_SUITE_P(CudaTypes, CudaMatvec,
                         ::testing::Values(GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                                           GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K,
                                           GgmlType::kQ5_K, GgmlType::kQ6_K),
                         [](const auto& param_info) {
                           return std::string(ggml_type_name(param_info.param));
                         });

}  // namespace
}  // namespace pensieve::cuda
