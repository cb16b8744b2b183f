// bf16 GEMM (gemm::sgemm_bf16: AMX, or AVX512-BF16 vdpbf16ps without AMX; the
// label names the engine) vs qvl's fp32 engine vs OpenBLAS sgemm at the
// Qwen3-VL-2B vision shapes (784 patches = one 448² image, 3136 = one 896²
// image; hidden 1024, qkv 3072, MLP 4096) and a text prefill shape (512 tokens,
// hidden 2048, gate+up 6144), fp32 B [K, N], plus the Q4 weight path of
// linear() (fp32 engine vs BF16 mode vs Int16 activations). GFLOP/s = 2·M·N·K per second.
// The last argument is the thread count (OpenMP and OpenBLAS).
// Run (idle machine):
//   OMP_WAIT_POLICY=passive build/bench/bench_gemm_bf16 --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.3
// bf16 next to fp32, 2 threads only: add --benchmark_filter='BM_(bf16|qvl_f32)/.*/2/'
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"

namespace {

using namespace qvl;

void set_threads(int t) {
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
}

std::vector<float> rnd(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void flops(benchmark::State& st, int64_t M, int64_t N, int64_t K) {
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}

const char* bf16_engine() {
  if (gemm::bf16_amx_available()) return "amx";
  return gemm::bf16_available() ? "avx512-bf16" : "no bf16: fp32 engine";
}

// args: M, K, N, threads
void BM_bf16(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K, 1), B = rnd(K * N, 2);
  std::vector<float> C(M * N);
  gemm::PackF32 pb(B.data(), N, false);
  for (auto _ : st) gemm::sgemm_bf16(M, N, K, A.data(), K, pb, C.data(), N, false);
  flops(st, M, N, K);
  st.SetLabel(bf16_engine());
}

void BM_qvl_f32(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K, 1), B = rnd(K * N, 2);
  std::vector<float> C(M * N);
  gemm::PackF32 pb(B.data(), N, false);
  for (auto _ : st) gemm::sgemm(M, N, K, A.data(), K, pb, C.data(), N, false);
  flops(st, M, N, K);
}

void BM_openblas(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(3));
  auto A = rnd(M * K, 1), B = rnd(K * N, 2);
  std::vector<float> C(M * N);
  for (auto _ : st)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.f, A.data(), (int)K,
                B.data(), (int)N, 0.f, C.data(), (int)N);
  flops(st, M, N, K);
}

// linear() on a Q4 (block 32) weight [N, K]. mode 0: fp32 activations, fp32
// engine; 1: fp32 activations, FloatCompute::BF16 (bf16 engine); 2: Int16
// activations (QuantCompute::Int16, AMX int8 planes where available).
// args: M, K, N, mode, threads
void BM_linear_q4(benchmark::State& st) {
  const int64_t M = st.range(0), K = st.range(1), N = st.range(2);
  set_threads((int)st.range(4));
  std::mt19937 rng(3);
  std::vector<uint8_t> q(N * K / 2);
  for (auto& b : q) b = (uint8_t)rng();
  std::vector<float> s(N * K / 32, 0.01f);
  LinearWeight W{WeightKind::Q4, N, K, false, q.data(), 32, 4, s.data()};
  auto X = rnd(M * K, 1);
  std::vector<float> Y(M * N);
  const int mode = (int)st.range(3);
  ScopedFloatCompute fc(mode == 1 ? FloatCompute::BF16 : FloatCompute::F32);
  const QuantCompute prev = quant_compute();
  set_quant_compute(mode == 2 ? QuantCompute::Int16 : QuantCompute::F32);
  for (auto _ : st) linear(X.data(), M, W, Y.data());
  set_quant_compute(prev);
  flops(st, M, N, K);
  if (mode == 1) st.SetLabel(bf16_engine());
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (int64_t M : {784, 3136}) {
      b->Args({M, 1024, 3072, t});
      b->Args({M, 1024, 1024, t});
      b->Args({M, 1024, 4096, t});
      b->Args({M, 4096, 1024, t});
    }
  for (int t : {1, 2}) b->Args({512, 2048, 6144, t});  // text prefill, gate/up
}

void q4_shapes(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (int bf : {0, 1, 2}) {
      b->Args({784, 1024, 4096, bf, t});
      b->Args({784, 4096, 1024, bf, t});
    }
}

BENCHMARK(BM_bf16)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_qvl_f32)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_openblas)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linear_q4)->Apply(q4_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
