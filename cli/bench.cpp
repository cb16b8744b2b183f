// qvl bench — prefill tok/s at each prompt length (random valid ids, no chat
// template), decode tok/s after each prefill (EOS ignored), vision encode time
// of a synthetic square image per side, load time and peak RSS; one warm-up,
// then REPS repetitions (median, min, max). Measures the machine's read
// bandwidth itself (right before the first timed decode) and reports decode
// GB/s = bytes per token × tok/s against it (the decode roofline).
// Refuses to run from a non-Release build.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/run_flags.h"
#include "engine/bandwidth.h"
#include "engine/machine.h"
#include "engine/peaks.h"
#include "engine/ort_bridge.h"
#include "engine/session.h"
#include "kernels/base.h"
#include "kernels/linear.h"
#include "kernels/profiler.h"
#include "loader/config.h"
#include "loader/onnx_file.h"

namespace qvl::cli {

namespace {

using json = nlohmann::json;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Stat {
  double median = 0, min = 0, max = 0;
};

Stat stat_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

std::vector<int64_t> parse_list(const std::string& flag, const std::string& s) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    QVL_CHECK(!item.empty() && *end == '\0' && v > 0, "%s: '%s' is not a positive integer", flag.c_str(),
              item.c_str());
    out.push_back(v);
    i = j + 1;
  }
  return out;
}

// Deterministic ids in [lo, hi): ordinary text tokens of the vocabulary.
std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  int64_t lo = std::min<int64_t>(1000, vocab / 4), hi = std::min<int64_t>(100000, vocab);
  std::vector<int64_t> ids(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& id : ids) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    id = lo + static_cast<int64_t>(x % static_cast<uint64_t>(hi - lo));
  }
  return ids;
}

// A smooth synthetic side × side RGB image as binary PPM (stb reads PNM).
std::string write_test_image(const std::string& dir, int side) {
  std::string path = dir + strfmt("/bench_%d.ppm", side);
  std::ofstream f(path, std::ios::binary);
  QVL_CHECK(f.good(), "%s: cannot write", path.c_str());
  f << "P6\n" << side << " " << side << "\n255\n";
  std::vector<unsigned char> row(3 * side);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      row[3 * x] = (unsigned char)(x * 255 / side);
      row[3 * x + 1] = (unsigned char)(y * 255 / side);
      row[3 * x + 2] = (unsigned char)(((x / 16 + y / 16) & 1) ? 200 : 40);
    }
    f.write(reinterpret_cast<const char*>(row.data()), (std::streamsize)row.size());
  }
  return path;
}

int64_t argmax(const std::vector<float>& v) {
  return std::max_element(v.begin(), v.end()) - v.begin();
}

// Bytes one decode step reads: every text.onnx initializer (decoder weights
// incl. lm_head) plus the K/V cache (kv_bytes per element) at context `ctx`.
double decode_bytes_per_token(const std::string& model_dir, const ModelConfig& cfg, double ctx, int kv_bytes) {
  auto f = OnnxFile::open(model_dir + "/text.onnx");
  double w = 0;
  for (const auto& t : f->tensors()) w += static_cast<double>(t.nbytes);
  const TextConfig& t = cfg.text;
  double kv = 2.0 * t.layers * t.kv_heads * t.head_dim * kv_bytes * ctx;
  return w + kv;
}

struct BenchArgs {
  std::string model, lengths = "128,512,2048", images = "448,896";
  int threads = 0, reps = 3;
  int64_t gen = 128, bw_mb = 0;
  bool json = false, profile = false;
  PrecisionFlags precision;
};

}  // namespace

int cmd_bench(int argc, char** argv) {
  BenchArgs a;
  Flags fl("qvl bench -m MODEL_DIR [-t N] [-r REPS] [--prompt-lengths 128,512,2048] [--gen 128] "
           "[--images 448,896] [--vision-bf16] [--json] [--profile]");
  fl.add("-m", &a.model, "model folder");
  fl.alias("--model");
  fl.add("-t", &a.threads, "threads (0 = physical cores)");
  fl.alias("--threads");
  fl.add("-r", &a.reps, "timed repetitions after one warm-up (median, min, max)");
  fl.alias("--reps");
  fl.add("--prompt-lengths", &a.lengths, "prefill lengths in tokens, comma separated");
  fl.add("--gen", &a.gen, "decode tokens after each prefill (EOS ignored)");
  fl.add("--images", &a.images, "vision: synthetic square image sides in pixels ('' = none)");
  fl.add("--bandwidth-mb", &a.bw_mb, "bandwidth probe buffer in MiB (0 = max(1 GiB, 4 x LLC))");
  fl.add("--profile", &a.profile, "keep profiler zones on while measuring (shows their overhead)");
  declare_precision_flags(fl, a.precision);
  fl.add("--json", &a.json, "print one JSON object");
  if (!fl.parse(argc, argv)) return 0;
  BuildInfo build = build_info();
  QVL_CHECK(is_release_build(), "bench: this is a %s build%s; benchmark numbers need -DCMAKE_BUILD_TYPE=Release",
            build.type.empty() ? "unknown" : build.type.c_str(),
            build.optimized ? "" : " without optimization");
  QVL_CHECK(!a.model.empty(), "bench: -m MODEL_DIR is required");
  QVL_CHECK(a.reps >= 1, "-r: must be >= 1");
  QVL_CHECK(a.gen >= 1, "--gen: must be >= 1");
  std::vector<int64_t> lengths = parse_list("--prompt-lengths", a.lengths);
  QVL_CHECK(!lengths.empty(), "--prompt-lengths: give at least one length (decode is measured after each prefill)");
  std::vector<int64_t> sides = a.images.empty() ? std::vector<int64_t>{} : parse_list("--images", a.images);
  for (int64_t s : sides) QVL_CHECK(s % 32 == 0, "--images: %lld is not a multiple of 32", (long long)s);

  ModelConfig cfg = read_model_config(a.model);
  SessionOptions so;
  so.model_dir = a.model;
  so.threads = a.threads;
  apply_precision_flags(a.precision, &so);
  so.context = *std::max_element(lengths.begin(), lengths.end()) + a.gen + 8;
  double t0 = now_s();
  Session sess(so);
  double load_s = now_s() - t0;
  int threads = a.threads > 0 ? a.threads : omp_get_max_threads();
  const QuantCompute qc = quant_compute();  // what the session selected (after CPU fallback)
  const char* act_name = qc == QuantCompute::Int8 ? "int8" : qc == QuantCompute::Int16 ? "int16" : "fp32";
  prof::enable(a.profile);

  std::map<int64_t, Stat> prefill, decode_by_len;
  std::vector<double> decode_all;
  BandwidthResult bw;
  ComputePeaks peaks;
  double rss_before_probe = 0;
  bool rss_reset = false;
  for (size_t li = 0; li < lengths.size(); ++li) {
    int64_t L = lengths[li];
    std::vector<int64_t> ids = random_ids(L, cfg.text.vocab, (uint64_t)L);
    std::vector<double> pre, dec;
    for (int r = -1; r < a.reps; ++r) {  // r = -1: warm-up
      sess.reset();
      prof::reset();
      double p0 = now_s();
      std::vector<float> logits = sess.prefill_ids(ids);
      double p1 = now_s();
      if (li == 0 && r == 0) {  // bandwidth right before the first timed decode
        rss_before_probe = peak_rss_mb();
        bw = measure_read_bandwidth(a.bw_mb > 0 ? (size_t)a.bw_mb << 20 : 0, threads);
        peaks = measure_compute_peaks(threads);
        rss_reset = reset_peak_rss();
      }
      int64_t steps = r < 0 ? std::min<int64_t>(a.gen, 4) : a.gen;
      double d0 = now_s();
      for (int64_t g = 0; g < steps; ++g) logits = sess.decode_one(argmax(logits));
      double d1 = now_s();
      if (r < 0) continue;
      pre.push_back(L / (p1 - p0));
      dec.push_back(steps / (d1 - d0));
      decode_all.push_back(steps / (d1 - d0));
    }
    prefill[L] = stat_of(pre);
    decode_by_len[L] = stat_of(dec);
  }

  std::map<int64_t, Stat> vision;
  if (!sides.empty()) {
    std::string dir = make_scratch_dir("bench");
    for (int64_t s : sides) {
      std::string img = write_test_image(dir, (int)s);
      std::vector<double> ms;
      for (int r = -1; r < a.reps; ++r) {
        sess.reset();
        prof::reset();
        double v0 = now_s();
        sess.encode_images({img});
        double v1 = now_s();
        if (r >= 0) ms.push_back((v1 - v0) * 1e3);
      }
      vision[s] = stat_of(ms);
    }
    remove_tree(dir);
  }
  prof::enable(false);
  prof::reset();

  double avg_ctx = 0;
  for (int64_t L : lengths) avg_ctx += L + a.gen / 2.0;
  avg_ctx /= lengths.size();
  const int kv_bytes = so.kv_dtype == DType::F16 ? 2 : 4;
  double bytes_tok = decode_bytes_per_token(a.model, cfg, avg_ctx, kv_bytes);
  Stat dec = stat_of(decode_all);
  double dec_gb_s = bytes_tok * dec.median * 1e-9;
  // Roofline of the decode after a prefill of L tokens: weights + K/V at its
  // mean context L + gen/2, against the probed bandwidth.
  auto roof_pct = [&](int64_t L) {
    double b = decode_bytes_per_token(a.model, cfg, L + a.gen / 2.0, kv_bytes);
    return bw.gb_s > 0 ? 100.0 * b * decode_by_len[L].median * 1e-9 / bw.gb_s : 0.0;
  };
  double peak_rss = rss_reset ? std::max(rss_before_probe, peak_rss_mb()) : peak_rss_mb();

  json j;
  j["model"] = a.model;
  j["threads"] = threads;
  j["reps"] = a.reps;
  j["gen"] = a.gen;
  j["profile_zones"] = a.profile;
  j["activations"] = act_name;
  j["vision_precision"] = vision_precision(so);
  j["kv_type"] = a.precision.kv_type;
  j["load_s"] = load_s;
  for (auto& [L, s] : prefill) {
    j["prefill_tok_s"][std::to_string(L)] = s.median;
    j["prefill_tok_s_min"][std::to_string(L)] = s.min;
    j["prefill_tok_s_max"][std::to_string(L)] = s.max;
    j["decode_tok_s_by_length"][std::to_string(L)] = decode_by_len[L].median;
    j["decode_roofline_pct_by_length"][std::to_string(L)] = roof_pct(L);
  }
  j["decode_tok_s"] = dec.median;
  j["decode_tok_s_min"] = dec.min;
  j["decode_tok_s_max"] = dec.max;
  j["vision_ms"] = json::object();
  for (auto& [s, v] : vision) {
    j["vision_ms"][std::to_string(s)] = v.median;
    j["vision_ms_min"][std::to_string(s)] = v.min;
    j["vision_ms_max"][std::to_string(s)] = v.max;
  }
  j["peak_rss_mb"] = peak_rss;
  const MappingStats ms = weight_mapping_stats();
  j["weights_resident_mb"] = ms.resident / 1048576.0;
  j["weights_huge_pages_pct"] = ms.resident ? 100.0 * ms.huge / ms.resident : 0.0;
  j["peak_rss_note"] = rss_reset ? "bandwidth probe buffer excluded" : "includes the bandwidth probe buffer";
  j["bandwidth_gb_s"] = bw.gb_s;
  j["bandwidth_probe_mb"] = bw.bytes >> 20;
  j["decode_bytes_per_token"] = bytes_tok;
  j["decode_avg_context"] = avg_ctx;
  j["decode_gb_s"] = dec_gb_s;
  j["decode_roofline_pct"] = bw.gb_s > 0 ? 100.0 * dec_gb_s / bw.gb_s : 0.0;
  j["peaks"] = peaks_json(peaks);
  j["build"] = build_json(build);
  j["cpu"] = cpu_model();
  if (a.json) {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("qvl bench: %s, %d threads, %s activations, vision %s, %d reps (median [min..max]), %s\n",
              a.model.c_str(), threads, act_name, vision_precision(so), a.reps,
              a.profile ? "profiler zones ON" : "profiler zones off");
  std::printf("build: %s (optimized, NDEBUG), %s, flags '%s', isa %s; cpu %s\n", build.type.c_str(),
              build.compiler.c_str(), build.flags.c_str(), build.isa.c_str(), cpu_model().c_str());
  std::printf("load %.2f s, peak RSS %.0f MiB; weight mappings %.0f MiB resident, %.0f%% in 2 MiB pages%s\n",
              load_s, peak_rss, ms.resident / 1048576.0, ms.resident ? 100.0 * ms.huge / ms.resident : 0.0,
              ms.resident && ms.huge < ms.resident / 2 ? " (file cached as small pages: see README)" : "");
  std::printf("compute peaks (measured, %d threads): fp32 %.0f GFLOP/s, int8 VNNI %.0f GOP/s, AMX int8 %.0f GOP/s, "
              "AMX bf16 %.0f GFLOP/s\n",
              peaks.threads, peaks.fp32_gflops, peaks.int8_gops, peaks.amx_int8_gops, peaks.amx_bf16_gflops);
  for (auto& [L, s] : prefill)
    std::printf("prefill %6lld tok: %9.1f tok/s [%.1f..%.1f]; decode after it %.2f tok/s (%.1f%% of roofline)\n",
                (long long)L, s.median, s.min, s.max, decode_by_len[L].median, roof_pct(L));
  std::printf("decode (%lld tok after each prefill): %.2f tok/s [%.2f..%.2f]\n", (long long)a.gen, dec.median,
              dec.min, dec.max);
  for (auto& [s, v] : vision)
    std::printf("vision %lldx%lld: %.1f ms [%.1f..%.1f]\n", (long long)s, (long long)s, v.median, v.min, v.max);
  std::printf("read bandwidth %.1f GB/s (%zu MiB probe, %d threads); decode reads %.1f MB/token (avg ctx %.0f) "
              "-> %.1f GB/s = %.1f%% of roofline\n",
              bw.gb_s, bw.bytes >> 20, bw.threads, bytes_tok * 1e-6, avg_ctx, dec_gb_s,
              bw.gb_s > 0 ? 100.0 * dec_gb_s / bw.gb_s : 0.0);
  return 0;
}

}  // namespace qvl::cli
