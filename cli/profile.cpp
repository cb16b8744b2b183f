// qvl profile — runs one request (any input/sampling flag of `qvl run`) with
// the profiler zones on and prints where the time went: one table each for
// vision, prefill and decode (plus tokenizer/preprocess), per layer and per
// zone, with achieved GFLOP/s and GB/s against the machine's peaks (fp32 FMA
// peak constant, read bandwidth measured by a probe in the same run).
//   --trace FILE.json   Chrome trace-event JSON (chrome://tracing, Perfetto)
//   --json              the tables as JSON
#include <omp.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/run_flags.h"
#include "engine/bandwidth.h"
#include "engine/machine.h"
#include "engine/peaks.h"
#include "engine/profile_report.h"
#include "engine/session.h"
#include "kernels/base.h"
#include "kernels/profiler.h"

namespace qvl::cli {

int cmd_profile(int argc, char** argv) {
  RunFlags r;
  std::string trace;
  bool by_zone_only = false;
  int64_t bw_mb = 0;
  Flags f("qvl profile -m MODEL_DIR (-p TEXT [--image PATH]... | --messages FILE) [run options] "
          "[--json] [--trace FILE.json]");
  declare_run_flags(f, r, true);
  f.add("--trace", &trace, "write a Chrome trace-event JSON file (chrome://tracing, Perfetto)");
  f.add("--summary", &by_zone_only, "print only the per-zone summaries (no per-layer rows)");
  f.add("--bandwidth-mb", &bw_mb, "bandwidth probe buffer in MiB (0 = max(1 GiB, 4 x LLC))");
  if (!f.parse(argc, argv)) return 0;
  if (!f.given("-n") && !f.given("--max-tokens")) r.max_tokens = 32;
  SessionOptions so = session_options(r);
  ChatRequest req = input_messages(f, r);
  GenerateOptions g = generate_options(f, r, r.model);

  Session session(so);
  MachinePeaks peaks;
  peaks.threads = r.threads > 0 ? r.threads : omp_get_max_threads();
  ComputePeaks cp = measure_compute_peaks(peaks.threads);
  peaks.gflops = cp.fp32_gflops;
  peaks.gflops_measured = true;
  peaks.int8_gops = cp.int8_gops;
  peaks.amx_int8_gops = cp.amx_int8_gops;
  peaks.amx_bf16_gflops = cp.amx_bf16_gflops;
  BandwidthResult bw = measure_read_bandwidth(bw_mb > 0 ? (size_t)bw_mb << 20 : 0, peaks.threads);
  peaks.gb_s = bw.gb_s;

  prof::reset();
  prof::enable(true);
  GenerateResult res = session.generate(req.messages, g, nullptr, &req.options);
  prof::enable(false);
  std::vector<prof::Event> events = prof::events();
  const Timings& t = res.timings;
  std::map<std::string, double> wall;
  if (t.vision_s > 0) wall["vision"] = t.vision_s;
  if (t.prefill_s > 0) wall["prefill"] = t.prefill_s;
  if (t.decode_s > 0) wall["decode"] = t.decode_s;
  ProfileReport rep = build_profile_report(events, peaks, wall);
  if (!trace.empty()) write_chrome_trace(trace, events);

  if (r.json) {
    nlohmann::json j = profile_to_json(rep);
    j["request"] = {{"prompt_tokens", t.prompt_tokens}, {"image_tokens", t.image_tokens},
                    {"generated_tokens", t.generated_tokens}, {"load_s", t.load_s},
                    {"preprocess_s", t.preprocess_s}, {"vision_s", t.vision_s},
                    {"prefill_s", t.prefill_s}, {"decode_s", t.decode_s},
                    {"prefill_tok_s", t.prefill_tok_s()}, {"decode_tok_s", t.decode_tok_s()}};
    j["bandwidth_probe_mb"] = bw.bytes >> 20;
    j["build"] = build_json(build_info());
    if (!trace.empty()) j["trace"] = trace;
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("qvl profile: %lld prompt tokens (%lld image), %lld generated; load %.2f s, preprocess %.1f ms, "
              "vision %.1f ms, prefill %.1f ms (%.1f tok/s), decode %.1f ms (%.2f tok/s)\n",
              (long long)t.prompt_tokens, (long long)t.image_tokens, (long long)t.generated_tokens, t.load_s,
              t.preprocess_s * 1e3, t.vision_s * 1e3, t.prefill_s * 1e3, t.prefill_tok_s(), t.decode_s * 1e3,
              t.decode_tok_s());
  std::fputs(format_profile_text(rep, !by_zone_only).c_str(), stdout);
  if (!trace.empty()) std::printf("\ntrace: %s (%zu events)\n", trace.c_str(), events.size());
  return 0;
}

}  // namespace qvl::cli
