// Quantized prefill GEMM engines at Qwen3-VL-2B shapes (hidden 2048, MLP 6144):
//   eng 0: AMX tiles, Int8 activations (linear_q_amx, kernels/linear_qamx.cpp)
//   eng 1: AVX-512 VNNI, Int8 activations (linear_qi8 with AMX switched off: the register
//          tiles, or from kVnniGemmMinRows rows the panel GEMM of linear_qgemm.cpp)
//   eng 2: fp32 GEMM engine, weights dequantized while packing (QuantCompute::F32)
//   eng 3 / 4: AMX / VNNI with Int16 activations
//   eng 5 / 6 / 7: AMX bf16 with split operands, 2 / 3 / 1 products (linear_q_split,
//          kernels/linear_qsplit.cpp: no activation quantization)
// Counter GOP/s = 2·M·N·K / time. Symmetric weights (default zero point), fp32
// scales. The last argument is the thread count. Run (report medians):
//   OMP_WAIT_POLICY=passive build/bench/bench_amx --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.3  (one line)
// BM_AmxThreshold sweeps small M (AMX vs VNNI) to place the M cut-over.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qsplit.h"

namespace {

using namespace qvl;

using bench::QW;
using bench::make_q;
using bench::rnd;

// One call of engine `eng` (see the file comment).
void run(int eng, const float* X, int64_t M, const LinearWeight& W, float* Y) {
  switch (eng) {
    case 0: linear_q_amx(X, M, W, Y, 8); break;
    case 3: linear_q_amx(X, M, W, Y, 16); break;
    case 2: linear_quant(X, M, W, Y, QuantCompute::F32); break;
    case 5: linear_q_split(X, M, W, Y, 2); break;
    case 6: linear_q_split(X, M, W, Y, 3); break;
    case 7: linear_q_split(X, M, W, Y, 1); break;
    default:  // the VNNI kernel itself (linear_quant would send Int16 at large M to fp32)
      set_amx_enabled(false);
      linear_qi8(X, M, W, Y, eng == 4 ? 16 : 8);
      set_amx_enabled(true);
  }
}

// args: K, N, bs, M, bits, eng, threads
void BM_QuantGemm(benchmark::State& st) {
  const int64_t K = st.range(0), N = st.range(1), M = st.range(3);
  const int eng = (int)st.range(5);
  if ((eng == 0 || eng == 3 || eng == 5 || eng == 6 || eng == 7) && !amx_available()) {
    st.SkipWithError("AMX not available");
    return;
  }
  omp_set_num_threads((int)st.range(6));
  openblas_set_num_threads((int)st.range(6));
  QW q = make_q((int)st.range(4), N, K, (int)st.range(2));
  auto X = rnd(M * K);
  std::vector<float> Y(M * N);
  for (auto _ : st) {
    run(eng, X.data(), M, q.W, Y.data());
    benchmark::ClobberMemory();
  }
  st.counters["GOP/s"] = benchmark::Counter(2.0 * M * N * K * st.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (int64_t M : {128, 512})
      for (auto kn : {std::pair<int64_t, int64_t>{2048, 6144}, {6144, 2048}, {2048, 2048}})
        for (int eng : {0, 1, 2, 3, 5, 6, 7}) b->Args({kn.first, kn.second, 32, M, 4, eng, t});
  // Other formats at the MLP up shape, M = 512, 2 threads: block 128, Q8, Int16.
  for (int eng : {0, 1}) {
    b->Args({2048, 6144, 128, 512, 4, eng, 2});
    b->Args({2048, 6144, 32, 512, 8, eng, 2});
  }
  b->Args({2048, 6144, 32, 512, 4, 4, 2});
}

void Threshold(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (int64_t M : {5, 6, 8, 10, 12, 16, 24, 32, 48, 64})
      for (int eng : {0, 1, 3, 4, 5, 6, 7}) b->Args({2048, 6144, 32, M, 4, eng, t});
}

BENCHMARK(BM_QuantGemm)
    ->Apply(Shapes)
    ->ArgNames({"K", "N", "bs", "M", "bits", "eng", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QuantGemm)
    ->Name("BM_AmxThreshold")
    ->Apply(Threshold)
    ->ArgNames({"K", "N", "bs", "M", "bits", "eng", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
