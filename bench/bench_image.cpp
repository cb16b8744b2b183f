// Image path micro-benchmarks: decode (PNG / JPEG), PIL-exact bicubic resize
// and full Qwen3-VL preprocessing of large photos, with the peak resident
// memory each step adds (VmHWM after resetting it through clear_refs).
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "engine/image.h"

namespace {

using namespace qvl;

long status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, n, key) == 0) return std::stol(line.substr(n + 1));
  return -1;
}

// Resets the high-water mark to the current RSS; returns the RSS (kB).
long reset_peak() {
  std::ofstream("/proc/self/clear_refs") << "5";
  return status_kb("VmRSS");
}

// Smooth photo-like content (compresses like a photo, not like noise).
Image synthetic(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t((x * 255) / w);
      p[1] = uint8_t((y * 255) / h);
      p[2] = uint8_t(((x ^ y) >> 3) & 0xFF);
    }
  return img;
}

std::vector<uint8_t> encode(const Image& img, bool jpeg) {
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (jpeg)
    stbi_write_jpg_to_func(sink, &out, img.width, img.height, 3, img.rgb.data(), 90);
  else
    stbi_write_png_to_func(sink, &out, img.width, img.height, 3, img.rgb.data(), img.width * 3);
  return out;
}

PreprocessorConfig qwen3vl_config() {
  PreprocessorConfig cfg;  // released Qwen3-VL values
  cfg.min_pixels = 65536;
  cfg.max_pixels = 16777216;
  return cfg;
}

void BM_Decode(benchmark::State& state, bool jpeg) {
  const int w = int(state.range(0)), h = int(state.range(1));
  std::vector<uint8_t> file = encode(synthetic(w, h), jpeg);
  long peak = 0;
  for (auto _ : state) {
    long base = reset_peak();
    Image img = decode_image_memory(file.data(), file.size(), jpeg ? "bench.jpg" : "bench.png");
    benchmark::DoNotOptimize(img.rgb.data());
    peak = std::max(peak, status_kb("VmHWM") - base);
  }
  state.counters["peak_extra_MB"] = double(peak) / 1024.0;
  state.counters["file_MB"] = double(file.size()) / 1e6;
}

void BM_Resize(benchmark::State& state) {
  Image src = synthetic(int(state.range(0)), int(state.range(1)));
  const int ow = int(state.range(2)), oh = int(state.range(3));
  for (auto _ : state) benchmark::DoNotOptimize(resize_bicubic(src, ow, oh).rgb.data());
  state.counters["Mpix_out/s"] =
      benchmark::Counter(double(ow) * oh * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Preprocess(benchmark::State& state, bool single_frame) {
  Image src = synthetic(int(state.range(0)), int(state.range(1)));
  PreprocessorConfig cfg = qwen3vl_config();
  long peak = 0;
  int64_t rows = 0;
  for (auto _ : state) {
    long base = reset_peak();
    PreprocessedImage p = preprocess_image(src, cfg, single_frame);
    benchmark::DoNotOptimize(p.pixels.data());
    rows = p.rows();
    peak = std::max(peak, status_kb("VmHWM") - base);
  }
  state.counters["peak_extra_MB"] = double(peak) / 1024.0;
  state.counters["patches"] = double(rows);
}

BENCHMARK_CAPTURE(BM_Decode, png, false)->Args({4000, 3000})->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, jpeg, true)->Args({4000, 3000})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Resize)
    ->Args({4000, 3000, 4000, 3008})  // smart_resize of 4000x3000: vertical only
    ->Args({6000, 4000, 4992, 3328})  // 6000x4000 photo: downscale to the pixel cap
    ->Args({1920, 1080, 1920, 1088})
    ->Args({150, 233, 224, 320})      // golden case 03 (upscale)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Preprocess, full, false)
    ->Args({4000, 3000})
    ->Args({6000, 4000})
    ->Args({1280, 720})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Preprocess, single_frame, true)->Args({4000, 3000})->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // Fixed mmap threshold: large buffers are always mmapped and returned on
  // free, so each measurement's VmHWM counts only its own allocations.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
