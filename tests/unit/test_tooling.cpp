// Unit tests of the measurement tooling: profile aggregation (self time of
// nested zones, per-phase tables, unzoned row), Chrome trace JSON, tensor diff
// statistics and tolerances, golden-name mapping, the bandwidth probe kernel.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/bandwidth.h"
#include "engine/compare.h"
#include "engine/machine.h"
#include "engine/peaks.h"
#include "engine/profile_report.h"
#include "test_util.h"

namespace qvl {
namespace {

prof::Event ev(const char* name, int layer, int64_t t0_us, int64_t t1_us, const char* phase, double flops = 0,
               double bytes = 0, int thread = 0) {
  return prof::Event{name, layer, thread, t0_us * 1000, t1_us * 1000, flops, bytes, phase};
}

TEST(ProfileReport, SelfTimeExcludesNestedZonesAndRowsSumToPhase) {
  std::vector<prof::Event> e = {
      ev("text.attn", 0, 0, 100, "prefill", 2e6, 1e6),  // contains rope 10..30
      ev("text.rope", 0, 10, 30, "prefill"),
      ev("text.mlp", 0, 100, 400, "prefill", 3e9, 3e6),
      ev("text.attn", 1, 400, 450, "prefill"),
      ev("text.mlp", 0, 1000, 1010, "decode"),
      ev("worker", -1, 0, 5000, "prefill", 0, 0, /*thread=*/1),  // ignored in tables
  };
  MachinePeaks p;
  p.threads = 2;
  p.gflops = 500;
  p.gb_s = 10;
  ProfileReport r = build_profile_report(e, p, {{"decode", 20e-6}});
  ASSERT_EQ(r.tables.size(), 2u);
  const ProfileTable& pre = r.tables[0];
  EXPECT_EQ(pre.phase, "prefill");
  EXPECT_NEAR(pre.total_ms, 0.450, 1e-9);  // wall time of the zoned region
  ASSERT_EQ(pre.rows.size(), 4u);
  EXPECT_EQ(pre.rows[0].name, "text.attn");
  EXPECT_NEAR(pre.rows[0].ms, 0.080, 1e-9);  // 100 µs minus the nested 20 µs
  EXPECT_EQ(pre.rows[1].name, "text.rope");
  EXPECT_NEAR(pre.rows[2].gflop_s(), 3e9 / 0.3e-3 * 1e-9, 1e-6);
  EXPECT_NEAR(pre.rows[2].gb_s(), 3e6 / 0.3e-3 * 1e-9, 1e-9);
  double pct = 0;
  for (const auto& row : pre.rows) pct += row.pct;
  EXPECT_NEAR(pct, 100.0, 1e-9);
  // by-zone summary adds layers: attn = 80 + 50 µs
  ASSERT_FALSE(pre.by_zone.empty());
  EXPECT_EQ(pre.by_zone[0].name, "text.mlp");
  EXPECT_EQ(pre.by_zone[1].name, "text.attn");
  EXPECT_EQ(pre.by_zone[1].calls, 2);
  EXPECT_NEAR(pre.by_zone[1].ms, 0.130, 1e-9);
  // decode: 10 µs zoned + 10 µs "(unzoned)" from the 20 µs wall time
  const ProfileTable& dec = r.tables[1];
  EXPECT_EQ(dec.phase, "decode");
  EXPECT_NEAR(dec.total_ms, 0.020, 1e-9);
  EXPECT_EQ(dec.rows.back().name, "(unzoned)");
  std::string text = format_profile_text(r);
  EXPECT_NE(text.find("== prefill"), std::string::npos);
  EXPECT_NE(text.find("text.rope"), std::string::npos);
  nlohmann::json j = profile_to_json(r);
  EXPECT_EQ(j["phases"]["prefill"]["rows"].size(), 4u);
}

TEST(ProfileReport, ChromeTraceHasCompleteEventsInMicroseconds) {
  std::vector<prof::Event> e = {ev("text.qkv", 3, 1000, 1250, "prefill", 10, 20),
                                ev("sampling", -1, 2000, 2001, "decode", 0, 0, 1)};
  nlohmann::json t = chrome_trace(e);
  ASSERT_TRUE(t.contains("traceEvents"));
  int x = 0;
  for (const auto& ev : t["traceEvents"]) {
    if (ev["ph"] != "X") continue;
    ++x;
    EXPECT_TRUE(ev.contains("pid") && ev.contains("tid") && ev.contains("ts") && ev.contains("dur"));
    if (ev["name"] == "text.qkv[3]") {
      EXPECT_DOUBLE_EQ(ev["ts"].get<double>(), 0.0);
      EXPECT_DOUBLE_EQ(ev["dur"].get<double>(), 250.0);
      EXPECT_EQ(ev["args"]["flops"].get<double>(), 10);
      EXPECT_EQ(ev["cat"], "prefill");
    }
  }
  EXPECT_EQ(x, 2);
}

TEST(CompareDiff, StatisticsAndTolerance) {
  std::vector<float> want = {1, -2, 3, 0.5f}, got = {1, -2, 3.002f, 0.5f};
  Tolerance t = tolerance_for("fp32", "ort");
  TensorDiff d = diff_tensors("x", got.data(), {1, 4}, want.data(), {4}, t);
  EXPECT_NEAR(d.max_abs, 0.002, 1e-6);
  EXPECT_EQ(d.worst, 2);
  EXPECT_NEAR(d.max_rel, 0.002 / 3, 1e-6);
  EXPECT_GT(d.cosine, 0.99999);
  EXPECT_FALSE(d.ok);  // 2e-3 > 1e-3 + 1e-5 * 3
  got[2] = 3.0005f;
  EXPECT_TRUE(diff_tensors("x", got.data(), {4}, want.data(), {1, 1, 4}, t).ok);
  EXPECT_FALSE(diff_tensors("x", got.data(), {2, 2}, want.data(), {4}, t).ok);  // shape
  got[1] = NAN;
  EXPECT_FALSE(diff_tensors("x", got.data(), {4}, want.data(), {4}, t).ok);
}

TEST(CompareDiff, ReportMarksFirstFailureAndNeedsOneComparedTensor) {
  CompareReport r;
  EXPECT_FALSE(r.ok());
  std::vector<float> a = {1, 2}, b = {1, 3};
  Tolerance t;
  r.rows.push_back(diff_tensors("ok", a.data(), {2}, a.data(), {2}, t));
  r.rows.push_back(diff_tensors("bad", a.data(), {2}, b.data(), {2}, t));
  r.rows.push_back(diff_tensors("bad2", a.data(), {2}, b.data(), {2}, t));
  EXPECT_EQ(r.first_failure(), 1);
  std::string s = format_compare_text(r);
  EXPECT_NE(s.find("bad   "), std::string::npos);
  EXPECT_EQ(s.find("first past tolerance"), s.rfind("first past tolerance"));
  EXPECT_FALSE(compare_to_json(r)["ok"].get<bool>());
}

TEST(CompareNames, GoldenFilesMapToObserverNamesInPipelineOrder) {
  EXPECT_EQ(golden_to_qvl_name("vision_block_12"), "vision.block.12");
  EXPECT_EQ(golden_to_qvl_name("decoder_layer_1_plus_deepstack"), "text.layer.1.plus_deepstack");
  EXPECT_EQ(golden_to_qvl_name("decoder_layer_3"), "text.layer.3");
  EXPECT_EQ(golden_to_qvl_name("prefill_value_2"), "text.layer.2.value");
  EXPECT_EQ(golden_to_qvl_name("image_embeds"), "vision.merger");
  EXPECT_EQ(golden_to_qvl_name("deepstack_0"), "vision.deepstack.0");
  EXPECT_EQ(golden_to_qvl_name("logits_last"), "logits");
  EXPECT_EQ(golden_to_qvl_name("vision_patch_embed_pos"), "vision.patch_embed_pos");
  EXPECT_EQ(golden_to_qvl_name("gen_top8_ids"), "");
  EXPECT_LT(pipeline_key("vision.block.2"), pipeline_key("vision.block.10"));
  EXPECT_LT(pipeline_key("vision.deepstack.2"), pipeline_key("text.inputs_embeds"));
  EXPECT_LT(pipeline_key("text.layer.1.value"), pipeline_key("text.layer.1"));
  EXPECT_LT(pipeline_key("text.layer.1.plus_deepstack"), pipeline_key("text.layer.2.key"));
  EXPECT_LT(pipeline_key("text.layer.27"), pipeline_key("text.final_norm"));
  EXPECT_LT(pipeline_key("text.final_norm"), pipeline_key("logits"));
}

TEST(Bandwidth, StreamKernelSumsExactlyAndProbeReportsARate) {
  std::vector<float> v(1000 + 37);
  double want = 0;
  for (size_t i = 0; i < v.size(); ++i) want += (v[i] = (float)(i % 5));
  EXPECT_DOUBLE_EQ(qvl::stream_read_sum(v.data(), (int64_t)v.size()), want);
  BandwidthResult r = measure_read_bandwidth(size_t(64) << 20, 1, 2);
  EXPECT_GT(r.gb_s, 0.1);
  EXPECT_GE(r.gb_s, r.median_gb_s);
  EXPECT_EQ(r.bytes, size_t(64) << 20);
}

// The compute probes report plausible rates: positive, below what any core
// could issue (64 fp32 FMA flops and 512 int8 ops per cycle per thread at
// 6 GHz), and more threads never report less than half of one thread.
TEST(ComputePeaks, ProbesReportPlausibleRates) {
  ComputePeaks one = measure_compute_peaks(1, 20);
  EXPECT_EQ(one.threads, 1);
  EXPECT_GT(one.fp32_gflops, 0.5);
  EXPECT_LT(one.fp32_gflops, 64 * 6.0);
#if defined(__AVX512VNNI__)
  EXPECT_GT(one.int8_gops, one.fp32_gflops);  // 4 int8 products per lane vs 1 fp32
  EXPECT_LT(one.int8_gops, 512 * 6.0);
#else
  EXPECT_EQ(one.int8_gops, 0);
#endif
  if (one.amx_int8_gops > 0) {
    EXPECT_GT(one.amx_int8_gops, one.int8_gops);
  }
  ComputePeaks two = measure_compute_peaks(2, 20);
  EXPECT_GT(two.fp32_gflops, 0.5 * one.fp32_gflops);
  nlohmann::json j = peaks_json(two);
  EXPECT_EQ(j["threads"], 2);
  EXPECT_TRUE(j.contains("amx_bf16_gflop_s"));
}

}  // namespace

// The core generation decides the compute peaks (Zen 4 runs 512-bit vectors at
// half Zen 5's rate), so reports name it from CPUID family / model.
TEST(Machine, AmdCoreGenerationFromFamilyAndModel) {
  EXPECT_EQ(amd_core_name(26, 2), "Zen 5");     // Turin
  EXPECT_EQ(amd_core_name(25, 17), "Zen 4");    // Genoa
  EXPECT_EQ(amd_core_name(25, 0x61), "Zen 4");  // Raphael
  EXPECT_EQ(amd_core_name(25, 0xa0), "Zen 4");  // Bergamo
  EXPECT_EQ(amd_core_name(25, 1), "Zen 3");     // Milan
  EXPECT_EQ(amd_core_name(23, 49), "Zen / Zen 2");
  EXPECT_EQ(amd_core_name(6, 143), "");
  EXPECT_NE(cpu_model(), "");
}

}  // namespace qvl
