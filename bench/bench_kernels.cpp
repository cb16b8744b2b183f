// Kernel micro-benchmarks at Qwen3-VL-2B shapes (hidden 2048, MLP 6144,
// vocab 151936, 16 query / 8 KV heads of 128):
//   Q4 GEMV (decode, M=1) → GB/s of weight bytes streamed (LinearWeight::bytes),
//   from DRAM: decode-shaped benchmarks rotate over ≥ 768 MiB of weight copies;
//   Q4 / Q8 / F16 prefill GEMM (M=512) → GFLOP/s;
//   fp32 GEMM: qvl linear (F32) vs plain OpenBLAS cblas_sgemm;
//   attention decode at 4096 context.
// The last argument of every benchmark is the thread count (OpenMP and OpenBLAS).
// "%peak" is against the machine's peak measured at start for that thread count:
// read bandwidth for GEMV / decode attention, else the fp32 FMA or int8 (VNNI
// or AMX, whichever the kernel runs) dot-product peak.
// "act" selects the activation precision of quantized weights: 8 (QuantCompute::Int8),
// 16 (Int16, split planes) or 32 (F32).
// Run (idle machine; passive waiting avoids barrier spin when cores are shared):
//   OMP_WAIT_POLICY=passive build/bench/bench_kernels --benchmark_repetitions=3
//     --benchmark_report_aggregates_only=true --benchmark_min_time=0.3   (one command line)
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "engine/bandwidth.h"
#include "engine/peaks.h"
#include "bench/bench_util.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "kernels/linear_qamx.h"

namespace {

using namespace qvl;

void set_threads(int t) {
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
}

using bench::QW;
using bench::make_q;
using bench::rnd;

// The machine's peaks for a thread count, measured once per count with the
// engine's probes (engine/peaks.h, engine/bandwidth.h).
struct Peaks {
  ComputePeaks compute;
  double gb_s = 0;
};
const Peaks& peaks_for(int threads) {
  static std::map<int, Peaks> cache;
  auto it = cache.find(threads);
  if (it == cache.end()) {
    Peaks p;
    p.compute = measure_compute_peaks(threads);
    p.gb_s = measure_read_bandwidth(0, threads).gb_s;
    it = cache.emplace(threads, p).first;
  }
  return it->second;
}

// What bounds a benchmark: memory (GEMV), fp32 FMA, or int8 dot products
// (AMX when the kernel takes it, else VNNI).
enum class Bound { Memory, Fp32, Int8Vnni, Int8Amx };

// Sets GFLOP/s and GB/s (per iteration flops / bytes) and "%peak" against the
// bound's measured peak for `threads`.
void rates(benchmark::State& st, double flops, double bytes, Bound bound, int threads) {
  const auto n = (double)st.iterations();
  st.counters["GFLOP/s"] = benchmark::Counter(flops * n / 1e9, benchmark::Counter::kIsRate);
  if (bytes > 0) st.counters["GB/s"] = benchmark::Counter(bytes * n / 1e9, benchmark::Counter::kIsRate);
  const Peaks& pk = peaks_for(threads);
  double peak = bound == Bound::Memory     ? pk.gb_s * 1e9
                : bound == Bound::Fp32     ? pk.compute.fp32_gflops * 1e9
                : bound == Bound::Int8Amx  ? pk.compute.amx_int8_gops * 1e9
                                           : pk.compute.int8_gops * 1e9;
  double work = bound == Bound::Memory ? bytes : flops;
  if (peak > 0) st.counters["%peak"] = benchmark::Counter(100.0 * work * n / peak, benchmark::Counter::kIsRate);
}

// Bound of a quantized linear with M rows in `mode`.
Bound quant_bound(int64_t M, QuantCompute mode) {
  if (M <= 4) return Bound::Memory;
  if (mode == QuantCompute::F32) return Bound::Fp32;
  return amx_available() && amx_enabled() ? Bound::Int8Amx : Bound::Int8Vnni;
}

// Copies of a buffer so that memory-bound benchmarks stream from DRAM: the
// iterations rotate over ≥ kColdBytes of copies (more than any last-level
// cache), so no iteration finds its data in cache. The copies sit in one
// anonymous arena with 2 MiB pages where the kernel grants them, as the
// engine's weight mappings do (loader/onnx_file.cpp).
constexpr size_t kColdBytes = size_t(768) << 20;
template <class T>
class ColdCopies {
 public:
  ColdCopies() = default;
  ColdCopies(const std::vector<T>& v, size_t total_bytes) {
    n_ = std::max<size_t>(1, (kColdBytes + total_bytes - 1) / std::max<size_t>(1, total_bytes));
    stride_ = (v.size() * sizeof(T) + 4095) / 4096 * 4096;
    bytes_ = n_ * stride_ + (size_t(2) << 20);
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(p);
    char* a = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base_) + (size_t(2) << 20) - 1) &
                                      ~((uintptr_t(2) << 20) - 1));
    madvise(a, n_ * stride_, MADV_HUGEPAGE);
    first_ = a;
    for (size_t i = 0; i < n_; ++i) std::memcpy(first_ + i * stride_, v.data(), v.size() * sizeof(T));
  }
  ColdCopies(const ColdCopies&) = delete;
  ColdCopies& operator=(const ColdCopies&) = delete;
  ColdCopies(ColdCopies&& o) noexcept { *this = std::move(o); }
  ColdCopies& operator=(ColdCopies&& o) noexcept {
    std::swap(base_, o.base_), std::swap(first_, o.first_), std::swap(bytes_, o.bytes_);
    std::swap(stride_, o.stride_), std::swap(n_, o.n_);
    return *this;
  }
  ~ColdCopies() {
    if (base_) munmap(base_, bytes_);
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  const T* operator[](size_t i) const { return reinterpret_cast<const T*>(first_ + i * stride_); }

 private:
  char *base_ = nullptr, *first_ = nullptr;
  size_t bytes_ = 0, stride_ = 0, n_ = 0;
};

// Rotating cold copies for decode-sized M, else the buffer itself.
template <class T>
struct Weights {
  const std::vector<T>* hot = nullptr;
  ColdCopies<T> cold;
  const T* at(size_t it) const { return cold.empty() ? hot->data() : cold[it % cold.size()]; }
};
template <class T>
Weights<T> weights_for(bool cold, const std::vector<T>& v, size_t total_bytes) {
  Weights<T> w;
  w.hot = &v;
  if (cold) w.cold = ColdCopies<T>(v, total_bytes);
  return w;
}

QuantCompute act_mode(int64_t bits) {
  return bits == 32 ? QuantCompute::F32 : bits == 16 ? QuantCompute::Int16 : QuantCompute::Int8;
}

// One quantized linear of `bits` (K, N, block, M, activation mode, threads).
void run_quant_linear(benchmark::State& st, int bits, int64_t K, int64_t N, int bs, int64_t M,
                      QuantCompute mode, int threads, bool hot = false) {
  set_threads(threads);
  QW q = make_q(bits, N, K, bs);
  auto X = rnd(M * K);
  std::vector<float> Y(M * N);
  // Decode shapes stream from DRAM (rotating copies); prefill reuses one copy.
  const size_t total = (size_t)q.W.bytes();
  auto Bs = weights_for(M <= 4 && !hot, q.B, total);
  auto Ss = weights_for(M <= 4 && !hot, q.s, total);
  size_t it = 0;
  for (auto _ : st) {
    q.W.data = Bs.at(it);
    q.W.scales = Ss.at(it);
    ++it;
    linear_quant(X.data(), M, q.W, Y.data(), mode);
    benchmark::ClobberMemory();
  }
  rates(st, 2.0 * M * N * K, (double)q.W.bytes(), quant_bound(M, mode), threads);
}

// args: K, N, block, M, act (8, 16 or 32 bits), threads
void BM_Q4Linear(benchmark::State& st) {
  run_quant_linear(st, 4, st.range(0), st.range(1), (int)st.range(2), st.range(3), act_mode(st.range(4)),
                   (int)st.range(5));
}

void BM_Q8Linear(benchmark::State& st) {
  run_quant_linear(st, 8, st.range(0), st.range(1), (int)st.range(2), st.range(3), act_mode(st.range(4)),
                   (int)st.range(5));
}

// Int8-activation Q4 decode GEMV with an explicit row order (1 = 8-row tiles,
// 2 = one row after the other; DecodeRowOrder), block 32. args: K, N, order, threads
void BM_Q4DecodeRowOrder(benchmark::State& st) {
  set_decode_row_order(st.range(2) == 2 ? DecodeRowOrder::Stream : DecodeRowOrder::Tiles);
  run_quant_linear(st, 4, st.range(0), st.range(1), 32, 1, QuantCompute::Int8, (int)st.range(3));
  set_decode_row_order(DecodeRowOrder::Auto);
}

// Int8/Int16 Q4 decode GEMV on one cache-resident weight (no rotating copies):
// the kernel's compute rate, to set against the cold (DRAM) rows of BM_Q4Linear.
// args: K, N, act, threads
void BM_Q4DecodeHot(benchmark::State& st) {
  run_quant_linear(st, 4, st.range(0), st.range(1), 32, 1, act_mode(st.range(2)), (int)st.range(3), true);
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
  auto Fs = weights_for(M <= 4 && !kind, wf, W.bytes());
  auto Hs = weights_for(M <= 4 && kind, wh, W.bytes());
  size_t it = 0;
  for (auto _ : st) {
    W.data = kind ? (const void*)Hs.at(it) : (const void*)Fs.at(it);
    ++it;
    linear(X.data(), M, W, Y.data());
    benchmark::ClobberMemory();
  }
  rates(st, 2.0 * M * N * K, (double)W.bytes(), M <= 4 ? Bound::Memory : Bound::Fp32, (int)st.range(5));
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
  rates(st, 2.0 * M * N * K, 0, Bound::Fp32, (int)st.range(3));
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
  rates(st, 2.0 * M * N * K, 0, Bound::Fp32, (int)st.range(3));
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
  rates(st, 2.0 * M * N * K, 0, Bound::Fp32, (int)st.range(3));
}

// Decode attention: S=1 over ctx cached positions. args: ctx, threads
void BM_AttentionDecode(benchmark::State& st) {
  const int64_t ctx = st.range(0);
  const int Hq = 16, Hkv = 8, D = 128;
  set_threads((int)st.range(1));
  auto q = rnd(Hq * D), k = rnd(Hkv * ctx * D), v = rnd(Hkv * ctx * D);
  std::vector<float> out(Hq * D);
  auto Ks = weights_for(true, k, 2 * k.size() * sizeof(float)), Vs = weights_for(true, v, 2 * v.size() * sizeof(float));
  size_t it = 0;
  for (auto _ : st) {  // one layer's cache per iteration, from DRAM (rotating copies)
    const float* kc = Ks.at(it);
    const float* vc = Vs.at(it);
    ++it;
    attention_causal(q.data(), Hq * D, 1, Hq, Hkv, D, kc, vc, ctx, ctx - 1, 1.f / std::sqrt((float)D),
                     out.data(), Hq * D);
    benchmark::ClobberMemory();
  }
  rates(st, 4.0 * Hq * ctx * D, 2.0 * Hkv * ctx * D * 4, Bound::Memory, (int)st.range(1));
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
  rates(st, 2.0 * 2 * Hq * D * S * S / 2, 0, Bound::Fp32, (int)st.range(1));
}

// Vision attention of one image (Qwen3-VL ViT: 16 heads of 64 over the packed
// qkv rows), fp32 (bf=0) or bf16 products (bf=1).
void BM_AttentionVision(benchmark::State& st) {
  const int64_t N = st.range(0);
  const int H = 16, D = 64;
  set_threads((int)st.range(2));
  ScopedFloatCompute fc(st.range(1) ? FloatCompute::BF16 : FloatCompute::F32);
  auto qkv = rnd(N * 3 * H * D);
  std::vector<float> out(N * H * D);
  const int64_t cu[2] = {0, N};
  for (auto _ : st) {
    attention_segments(qkv.data(), qkv.data() + H * D, qkv.data() + 2 * H * D, 3 * H * D, N, H, D, cu, 1,
                       0.125f, out.data());
    benchmark::ClobberMemory();
  }
  rates(st, 4.0 * H * D * N * N, 0, Bound::Fp32, (int)st.range(2));
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
        for (auto s : std::vector<std::vector<int64_t>>{{2048, 6144, 32, 1}, {6144, 2048, 32, 1}, {2048, 2048, 32, 1}, {2048, 16, 32, 1}, {2048, 256, 32, 1},
                                                        {2048, 151936, 32, 1}, {2048, 6144, 128, 1},
                                                        {2048, 6144, 32, 4}}) {
          s.push_back(act);
          shapes.push_back(s);
        }
        shapes.push_back({2048, 6144, 32, 512, act});
      }
      shapes.push_back({6144, 2048, 32, 512, 8});
      shapes.push_back({2048, 6144, 128, 512, 8});
      for (int act : {8, 16}) {  // vision (448x448: 784 patches): patch embedding, fc1
        shapes.push_back({1536, 1024, 32, 784, act});
        shapes.push_back({1024, 4096, 32, 784, act});
      }
      ThreadArgs(b, shapes);
    })
    ->ArgNames({"K", "N", "bs", "M", "act", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Q4DecodeRowOrder)
    ->Apply([](auto* b) { ThreadArgs(b, {{2048, 6144, 1}, {2048, 6144, 2}, {6144, 2048, 1}, {6144, 2048, 2}}); })
    ->ArgNames({"K", "N", "order", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Q4DecodeHot)
    ->Apply([](auto* b) { ThreadArgs(b, {{2048, 512, 8}, {2048, 512, 16}, {2048, 2048, 8}}); })
    ->ArgNames({"K", "N", "act", "thr"})
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
                     {2048, 6144, 1, 1, 1}, {2048, 6144, 1, 2, 1}, {2048, 1024, 1, 1, 1},
                     {6144, 2048, 1, 1, 1}, {2048, 6144, 512, 1, 1}});
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

BENCHMARK(BM_AttentionVision)
    ->Apply([](auto* b) { ThreadArgs(b, {{784, 0}, {784, 1}, {3136, 0}, {3136, 1}}); })
    ->ArgNames({"N", "bf16", "thr"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

// Peaks are measured before any benchmark runs: measured after an OpenBLAS call they
// would share the cores with OpenBLAS's worker threads, which keep spinning
// (sched_yield) for a while after each call (the 2-thread fp32 peak read ≈ half).
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (int t : {1, 2}) peaks_for(t);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
