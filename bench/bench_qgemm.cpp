// Quantized prefill engines without AMX at Qwen3-VL-2B shapes (hidden 2048, MLP 6144),
// Q4 block 32, symmetric weights, fp32 scales:
//   eng 0 / 4: VNNI panel GEMM (linear_q_vnni_gemm, kernels/linear_qgemm.cpp), Int8 / Int16
//   eng 1 / 5: linear_qi8's VNNI register tiles (GEMM and AMX switched off), Int8 / Int16
//   eng 2 / 6: AMX tiles (linear_q_amx), Int8 / Int16 — the CPUs that have it
//   eng 3:     fp32 GEMM engine, weights dequantized while packing (QuantCompute::F32)
// Counter GOP/s = 2·M·N·K / time. The last argument is the thread count. Run (report medians):
//   OMP_WAIT_POLICY=passive build/bench/bench_qgemm --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true --benchmark_min_time=0.2  (one line)
// BM_QGemmThreshold sweeps small M (GEMM vs tiles) to place kVnniGemmMinRows.
// Measured (shared 2-core Xeon, medians of 3, GOP/s from CPU time at 1 thread,
// GEMM / tiles / AMX / fp32): Int8 M 512 K2048→N6144 401 / 137 / 465 / 109,
// K6144→N2048 376 / 144 / 465 / 104; M 128 K2048→N6144 345 / 137 / 433 / 97;
// Int16 GEMM / tiles / AMX at M 512 K2048→N6144: 227 / 97 / 311.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>

#include <random>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"
#include "kernels/linear_qgemm.h"

namespace {

using namespace qvl;

using bench::QW;
using bench::make_q;
using bench::rnd;

// One call of engine `eng` (see the file comment).
void run(int eng, const float* X, int64_t M, const LinearWeight& W, float* Y) {
  const int act = eng >= 4 ? 16 : 8;
  switch (eng % 4) {
    case 0: linear_q_vnni_gemm(X, M, W, Y, act); break;
    case 1:  // linear_qi8 itself (linear_quant would send Int16 at large M to fp32)
      set_amx_enabled(false);
      set_vnni_gemm_enabled(false);
      linear_qi8(X, M, W, Y, act);
      set_vnni_gemm_enabled(true);
      set_amx_enabled(true);
      break;
    case 2: linear_q_amx(X, M, W, Y, act); break;
    default: linear_quant(X, M, W, Y, QuantCompute::F32); break;
  }
}

// args: K, N, bs, M, bits, eng, threads
void BM_QGemm(benchmark::State& st) {
  const int64_t K = st.range(0), N = st.range(1), M = st.range(3);
  const int eng = (int)st.range(5);
  if (eng % 4 == 2 && !amx_available()) {
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
        for (int eng : {0, 1, 2, 3, 4, 5, 6}) b->Args({kn.first, kn.second, 32, M, 4, eng, t});
  // Other formats at the MLP up shape, M = 512, 2 threads: block 128, Q8.
  for (int eng : {0, 1}) {
    b->Args({2048, 6144, 128, 512, 4, eng, 2});
    b->Args({2048, 6144, 32, 512, 8, eng, 2});
  }
}

void Threshold(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (int64_t M : {4, 6, 8, 10, 12, 16, 24, 32})
      for (int eng : {0, 1, 4, 5}) b->Args({2048, 6144, 32, M, 4, eng, t});
}

BENCHMARK(BM_QGemm)
    ->Apply(Shapes)
    ->ArgNames({"K", "N", "bs", "M", "bits", "eng", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QGemm)
    ->Name("BM_QGemmThreshold")
    ->Apply(Threshold)
    ->ArgNames({"K", "N", "bs", "M", "bits", "eng", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
