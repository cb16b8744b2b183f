// Kernel micro-benchmarks at Qwen3-VL-2B shapes (hidden 2048, MLP 6144,
// vocab 151936, 16 query / 8 KV heads of 128):
//   Q4 GEMV (decode, M=1) → GB/s of weight bytes streamed (LinearWeight::bytes);
//   Q4 / Q8 / F16 prefill GEMM (M=512) → GFLOP/s;
//   fp32 GEMM: qvl linear (F32) vs plain OpenBLAS cblas_sgemm;
//   attention decode at 4096 context.
// The last argument of every benchmark is the thread count (OpenMP and OpenBLAS).
// "act" selects the activation precision of quantized weights: 8 (QuantCompute::Int8),
// 16 (Int16, split planes) or 32 (F32).
// Run (idle machine; passive waiting avoids barrier spin when cores are shared):
//   OMP_WAIT_POLICY=passive build/bench/bench_kernels --benchmark_repetitions=3 \
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.3
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"

namespace {

using namespace qvl;

void set_threads(int t) {
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
}

// Random MatMulNBits weight (symmetric, fp32 scales) kept alive per shape.
struct QW {
  std::vector<uint8_t> B;
  std::vector<float> s;
  LinearWeight W;
};

QW make_q(int bits, int64_t N, int64_t K, int bs) {
  QW q;
  std::mt19937 rng(1);
  int64_t kb = (K + bs - 1) / bs;
  q.B.resize(N * kb * bs * bits / 8);
  for (auto& b : q.B) b = (uint8_t)rng();
  q.s.resize(N * kb);
  for (auto& s : q.s) s = 0.01f * (float)(rng() % 100) / 100.f;
  q.W.kind = bits == 4 ? WeightKind::Q4 : WeightKind::Q8;
  q.W.N = N;
  q.W.K = K;
  q.W.bits = bits;
  q.W.block_size = bs;
  q.W.data = q.B.data();
  q.W.scales = q.s.data();
  return q;
}

std::vector<float> rnd(size_t n) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

QuantCompute act_mode(int64_t bits) {
  return bits == 32 ? QuantCompute::F32 : bits == 16 ? QuantCompute::Int16 : QuantCompute::Int8;
}

// args: K, N, block, M, act (8, 16 or 32 bits), threads
void BM_Q4Linear(benchmark::State& st) {
  const int64_t K = st.range(0), N = st.range(1), M = st.range(3);
  const QuantCompute mode = act_mode(st.range(4));
  set_threads((int)st.range(5));
  QW q = make_q(4, N, K, (int)st.range(2));
  auto X = rnd(M * K);
  std::vector<float> Y(M * N);
  for (auto _ : st) {
    linear_quant(X.data(), M, q.W, Y.data(), mode);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((double)q.W.bytes() * st.iterations() / 1e9,
                                           benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

void BM_Q8Linear(benchmark::State& st) {
  const int64_t K = st.range(0), N = st.range(1), M = st.range(3);
  const QuantCompute mode = act_mode(st.range(4));
  set_threads((int)st.range(5));
  QW q = make_q(8, N, K, (int)st.range(2));
  auto X = rnd(M * K);
  std::vector<float> Y(M * N);
  for (auto _ : st) {
    linear_quant(X.data(), M, q.W, Y.data(), mode);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((double)q.W.bytes() * st.iterations() / 1e9,
                                           benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// args: K, N, M, kind (0 f32, 1 f16, 2 bf16), transposed, threads
void BM_FloatLinear(benchmark::State& st) {
  const int64_t K = st.range(0), N = st.range(1), M = st.range(2);
  const int kind = (int)st.range(3);
  set_threads((int)st.range(5));
  std::vector<float> wf = rnd(N * K);
  std::vector<uint16_t> wh(kind ? N * K : 0);
  for (size_t i = 0; i < wh.size(); ++i) wh[i] = kind == 1 ? f32_to_f16(wf[i]) : f32_to_bf16(wf[i]);
  LinearWeight W;
  W.kind = kind == 0 ? WeightKind::F32 : kind == 1 ? WeightKind::F16 : WeightKind::BF16;
  W.N = N;
  W.K = K;
  W.transposed = st.range(4) != 0;
  W.data = kind ? (const void*)wh.data() : (const void*)wf.data();
  auto X = rnd(M * K);
  std::vector<float> Y(M * N);
  for (auto _ : st) {
    linear(X.data(), M, W, Y.data());
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter((double)W.bytes() * st.iterations() / 1e9,
                                           benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Plain OpenBLAS, B = [K, N] (ONNX MatMul layout). args: M, K, N, threads
void BM_OpenBLAS(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K), B = rnd(K * N);
  std::vector<float> C(M * N);
  for (auto _ : st) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.f, A.data(), K, B.data(), N,
                0.f, C.data(), N);
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// qvl's own AVX-512 sgemm engine, B = [K, N]. args: M, K, N, threads
void BM_QvlSgemm(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K), B = rnd(K * N);
  std::vector<float> C(M * N);
  gemm::PackF32 pb(B.data(), N, false);
  for (auto _ : st) {
    gemm::sgemm(M, N, K, A.data(), K, pb, C.data(), N, false);
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// qvl fp32 linear with [K, N] weight. args: M, K, N, threads
void BM_LinearF32(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K), B = rnd(K * N);
  std::vector<float> C(M * N);
  LinearWeight W;
  W.N = N;
  W.K = K;
  W.transposed = true;
  W.data = B.data();
  for (auto _ : st) {
    linear(A.data(), M, W, C.data());
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

// Decode attention: S=1 over ctx cached positions. args: ctx, threads
void BM_AttentionDecode(benchmark::State& st) {
  const int64_t ctx = st.range(0);
  const int Hq = 16, Hkv = 8, D = 128;
  set_threads((int)st.range(1));
  auto q = rnd(Hq * D), k = rnd(Hkv * ctx * D), v = rnd(Hkv * ctx * D);
  std::vector<float> out(Hq * D);
  for (auto _ : st) {
    attention_causal(q.data(), Hq * D, 1, Hq, Hkv, D, k.data(), v.data(), ctx, ctx - 1,
                     1.f / std::sqrt((float)D), out.data(), Hq * D);
    benchmark::ClobberMemory();
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * Hkv * ctx * D * 4 * st.iterations() / 1e9,
                                           benchmark::Counter::kIsRate);
}

// Prefill attention: S new tokens, no past. args: S, threads
void BM_AttentionPrefill(benchmark::State& st) {
  const int64_t S = st.range(0);
  const int Hq = 16, Hkv = 8, D = 128;
  set_threads((int)st.range(1));
  auto q = rnd(S * Hq * D), k = rnd(Hkv * S * D), v = rnd(Hkv * S * D);
  std::vector<float> out(S * Hq * D);
  for (auto _ : st) {
    attention_causal(q.data(), Hq * D, S, Hq, Hkv, D, k.data(), v.data(), S, 0,
                     1.f / std::sqrt((float)D), out.data(), Hq * D);
    benchmark::ClobberMemory();
  }
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * 2 * Hq * D * S * S / 2 * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

void ThreadArgs(benchmark::internal::Benchmark* b, std::vector<std::vector<int64_t>> shapes) {
  for (int t : {1, 2})
    for (auto s : shapes) {
      s.push_back(t);
      b->Args(s);
    }
}

BENCHMARK(BM_Q4Linear)
    ->Apply([](auto* b) {
      std::vector<std::vector<int64_t>> shapes;
      for (int act : {8, 16, 32}) {  // decode GEMV at every precision
        for (auto s : std::vector<std::vector<int64_t>>{{2048, 6144, 32, 1}, {6144, 2048, 32, 1},
                                                        {2048, 151936, 32, 1}, {2048, 6144, 128, 1},
                                                        {2048, 6144, 32, 4}}) {
          s.push_back(act);
          shapes.push_back(s);
        }
        shapes.push_back({2048, 6144, 32, 512, act});
      }
      shapes.push_back({6144, 2048, 32, 512, 8});
      shapes.push_back({2048, 6144, 128, 512, 8});
      ThreadArgs(b, shapes);
    })
    ->ArgNames({"K", "N", "bs", "M", "act", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Q8Linear)
    ->Apply([](auto* b) { ThreadArgs(b, {{2048, 6144, 32, 1, 8}, {2048, 6144, 32, 1, 16}, {2048, 6144, 32, 512, 8}, {2048, 6144, 32, 1, 32}}); })
    ->ArgNames({"K", "N", "bs", "M", "act", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FloatLinear)
    ->Apply([](auto* b) {
      ThreadArgs(b, {{2048, 6144, 1, 0, 0}, {2048, 6144, 1, 0, 1}, {2048, 6144, 1, 1, 0},
                     {2048, 6144, 1, 1, 1}, {2048, 6144, 1, 2, 1}, {2048, 6144, 512, 1, 1}});
    })
    ->ArgNames({"K", "N", "M", "kind", "tr", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_OpenBLAS)
    ->Apply([](auto* b) { ThreadArgs(b, {{512, 2048, 6144}, {784, 1024, 4096}, {512, 6144, 2048}}); })
    ->ArgNames({"M", "K", "N", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QvlSgemm)
    ->Apply([](auto* b) { ThreadArgs(b, {{512, 2048, 6144}, {784, 1024, 4096}, {512, 6144, 2048}}); })
    ->ArgNames({"M", "K", "N", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LinearF32)
    ->Apply([](auto* b) { ThreadArgs(b, {{512, 2048, 6144}, {784, 1024, 4096}, {512, 6144, 2048}}); })
    ->ArgNames({"M", "K", "N", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttentionDecode)
    ->Apply([](auto* b) { ThreadArgs(b, {{4096}}); })
    ->ArgNames({"ctx", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AttentionPrefill)
    ->Apply([](auto* b) { ThreadArgs(b, {{512}}); })
    ->ArgNames({"S", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
