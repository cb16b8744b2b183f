// Aggregation of profiler zone events into per-phase tables, their text and
// JSON forms, and the Chrome trace-event export (see profile_report.h).
#include "engine/profile_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "kernels/base.h"

namespace qvl {

namespace {

// Phase label of an event: the profiler's phase string, "other" when unset.
std::string phase_of(const prof::Event& e) {
  return (e.phase && *e.phase) ? std::string(e.phase) : std::string("other");
}

// Self time (ns) of each event: its duration minus the durations of the
// events directly nested in it on the same thread.
std::vector<int64_t> self_times(const std::vector<prof::Event>& ev) {
  std::vector<size_t> order(ev.size());
  for (size_t i = 0; i < ev.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (ev[a].thread != ev[b].thread) return ev[a].thread < ev[b].thread;
    if (ev[a].t0_ns != ev[b].t0_ns) return ev[a].t0_ns < ev[b].t0_ns;
    return ev[a].t1_ns > ev[b].t1_ns;  // the enclosing zone first
  });
  std::vector<int64_t> self(ev.size());
  for (size_t i = 0; i < ev.size(); ++i) self[i] = ev[i].t1_ns - ev[i].t0_ns;
  std::vector<size_t> stack;
  int thread = -1;
  for (size_t idx : order) {
    const prof::Event& e = ev[idx];
    if (e.thread != thread) {
      stack.clear();
      thread = e.thread;
    }
    while (!stack.empty() && ev[stack.back()].t1_ns <= e.t0_ns) stack.pop_back();
    if (!stack.empty() && e.t1_ns <= ev[stack.back()].t1_ns) self[stack.back()] -= e.t1_ns - e.t0_ns;
    stack.push_back(idx);
  }
  for (auto& s : self) s = std::max<int64_t>(s, 0);
  return self;
}

// Display order = the order a request runs them: tokenizer (no phase),
// image preprocessing, vision, prefill, decode; unknown phases last.
int phase_rank(const std::string& p) {
  if (p == "other") return 0;
  if (p == "preprocess") return 1;
  if (p == "vision") return 2;
  if (p == "prefill") return 3;
  if (p == "decode") return 4;
  return 5;
}

// Sums rows over layers, keyed by zone name, sorted by time descending.
std::vector<ProfileRow> summarize_by_zone(const std::vector<ProfileRow>& rows, double total_ms) {
  std::vector<ProfileRow> out;
  std::map<std::string, size_t> at;
  for (const auto& r : rows) {
    auto it = at.find(r.name);
    if (it == at.end()) {
      at[r.name] = out.size();
      ProfileRow s = r;
      s.layer = -1;
      out.push_back(s);
      continue;
    }
    ProfileRow& s = out[it->second];
    s.ms += r.ms;
    s.calls += r.calls;
    s.flops += r.flops;
    s.bytes += r.bytes;
  }
  for (auto& s : out) s.pct = total_ms > 0 ? 100.0 * s.ms / total_ms : 0;
  std::stable_sort(out.begin(), out.end(),
                   [](const ProfileRow& a, const ProfileRow& b) { return a.ms > b.ms; });
  return out;
}

}  // namespace

ProfileReport build_profile_report(const std::vector<prof::Event>& events, const MachinePeaks& peaks,
                                   const std::map<std::string, double>& wall_s) {
  ProfileReport rep;
  rep.peaks = peaks;
  std::vector<size_t> order(events.size());
  for (size_t i = 0; i < events.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return events[a].t0_ns < events[b].t0_ns; });
  std::vector<int64_t> self = self_times(events);

  std::map<std::string, ProfileTable> tables;
  std::map<std::string, std::map<std::pair<std::string, int>, size_t>> index;
  for (size_t idx : order) {
    const prof::Event& e = events[idx];
    if (e.thread != 0) continue;  // worker-thread zones: trace only
    std::string ph = phase_of(e);
    ProfileTable& t = tables[ph];
    t.phase = ph;
    auto key = std::make_pair(std::string(e.name ? e.name : "?"), e.layer);
    auto& ix = index[ph];
    auto it = ix.find(key);
    if (it == ix.end()) {
      it = ix.emplace(key, t.rows.size()).first;
      ProfileRow r;
      r.name = key.first;
      r.layer = key.second;
      t.rows.push_back(r);
    }
    ProfileRow& r = t.rows[it->second];
    r.ms += self[idx] * 1e-6;
    r.calls += 1;
    r.flops += e.flops;
    r.bytes += e.bytes;
  }
  for (const auto& [ph, secs] : wall_s) {
    ProfileTable& t = tables[ph];
    t.phase = ph;
    double zoned = 0;
    for (const auto& r : t.rows) zoned += r.ms;
    double rest = secs * 1e3 - zoned;
    if (rest > 0) {
      ProfileRow r;
      r.name = "(unzoned)";
      r.ms = rest;
      r.calls = 1;
      t.rows.push_back(r);
    }
  }
  for (auto& [ph, t] : tables) {
    t.total_ms = 0;
    for (const auto& r : t.rows) t.total_ms += r.ms;
    for (auto& r : t.rows) r.pct = t.total_ms > 0 ? 100.0 * r.ms / t.total_ms : 0;
    t.by_zone = summarize_by_zone(t.rows, t.total_ms);
    rep.tables.push_back(std::move(t));
  }
  std::stable_sort(rep.tables.begin(), rep.tables.end(), [](const ProfileTable& a, const ProfileTable& b) {
    return phase_rank(a.phase) < phase_rank(b.phase);
  });
  return rep;
}

namespace {

// One formatted table line for a row.
std::string format_row(const ProfileRow& r, const MachinePeaks& p) {
  std::string layer = r.layer >= 0 ? strfmt("%d", r.layer) : "-";
  double pf = p.gflops > 0 ? 100.0 * r.gflop_s() / p.gflops : 0;
  std::string bw = p.gb_s > 0 ? strfmt("%5.1f", 100.0 * r.gb_s() / p.gb_s) : "    -";
  return strfmt("  %-24s %5s %10.3f %6.2f %7lld %9.2f %5.1f %8.2f %s\n", r.name.c_str(), layer.c_str(),
                r.ms, r.pct, (long long)r.calls, r.gflop_s(), pf, r.gb_s(), bw.c_str());
}

std::string header() {
  return strfmt("  %-24s %5s %10s %6s %7s %9s %5s %8s %5s\n", "zone", "layer", "ms", "%", "calls",
                "GFLOP/s", "%pkF", "GB/s", "%bw");
}

}  // namespace

std::string format_profile_text(const ProfileReport& r, bool per_layer) {
  const MachinePeaks& p = r.peaks;
  std::string out =
      p.gflops_measured
          ? strfmt("peaks (%d threads, measured): fp32 FMA %.0f GFLOP/s (the %%pkF base), int8 VNNI %.0f GOP/s, "
                   "AMX int8 %.0f GOP/s, AMX bf16 %.0f GFLOP/s; read bandwidth %s\n",
                   p.threads, p.gflops, p.int8_gops, p.amx_int8_gops, p.amx_bf16_gflops,
                   p.gb_s > 0 ? strfmt("%.1f GB/s (measured)", p.gb_s).c_str() : "not measured")
          : strfmt("peaks: fp32 %.0f GFLOP/s (%d threads x %.0f, constant), read bandwidth %s\n", p.gflops,
                   p.threads, kPeakGflopsPerThread,
                   p.gb_s > 0 ? strfmt("%.1f GB/s (measured)", p.gb_s).c_str() : "not measured");
  for (const auto& t : r.tables) {
    out += strfmt("\n== %s: %.3f ms\n", t.phase.c_str(), t.total_ms);
    if (per_layer) {
      out += header();
      for (const auto& row : t.rows) out += format_row(row, r.peaks);
      out += strfmt("  -- %s by zone (all layers)\n", t.phase.c_str());
    }
    out += header();
    for (const auto& row : t.by_zone) out += format_row(row, r.peaks);
  }
  return out;
}

namespace {

nlohmann::json row_json(const ProfileRow& r, const MachinePeaks& p) {
  nlohmann::json j = {{"zone", r.name},   {"layer", r.layer},         {"ms", r.ms},
                      {"pct", r.pct},     {"calls", r.calls},         {"flops", r.flops},
                      {"bytes", r.bytes}, {"gflop_s", r.gflop_s()},   {"gb_s", r.gb_s()}};
  j["pct_peak_flops"] = p.gflops > 0 ? 100.0 * r.gflop_s() / p.gflops : 0.0;
  j["pct_peak_bw"] = p.gb_s > 0 ? 100.0 * r.gb_s() / p.gb_s : 0.0;
  return j;
}

}  // namespace

nlohmann::json profile_to_json(const ProfileReport& r) {
  nlohmann::json j;
  j["peaks"] = {{"threads", r.peaks.threads},
                {"gflop_s", r.peaks.gflops},
                {"gflop_s_measured", r.peaks.gflops_measured},
                {"int8_vnni_gop_s", r.peaks.int8_gops},
                {"amx_int8_gop_s", r.peaks.amx_int8_gops},
                {"amx_bf16_gflop_s", r.peaks.amx_bf16_gflops},
                {"bandwidth_gb_s", r.peaks.gb_s}};
  nlohmann::json phases = nlohmann::json::object();
  for (const auto& t : r.tables) {
    nlohmann::json rows = nlohmann::json::array(), zones = nlohmann::json::array();
    for (const auto& row : t.rows) rows.push_back(row_json(row, r.peaks));
    for (const auto& row : t.by_zone) zones.push_back(row_json(row, r.peaks));
    phases[t.phase] = {{"total_ms", t.total_ms}, {"rows", rows}, {"by_zone", zones}};
  }
  j["phases"] = phases;
  return j;
}

nlohmann::json chrome_trace(const std::vector<prof::Event>& events) {
  int64_t t0 = INT64_MAX;
  for (const auto& e : events) t0 = std::min(t0, e.t0_ns);
  nlohmann::json evs = nlohmann::json::array();
  std::map<int, bool> threads;
  for (const auto& e : events) {
    threads[e.thread] = true;
    std::string name = e.name ? e.name : "?";
    if (e.layer >= 0) name += strfmt("[%d]", e.layer);
    nlohmann::json args = {{"layer", e.layer}, {"flops", e.flops}, {"bytes", e.bytes}};
    evs.push_back({{"name", name},
                   {"cat", phase_of(e)},
                   {"ph", "X"},
                   {"pid", 1},
                   {"tid", e.thread},
                   {"ts", (e.t0_ns - t0) * 1e-3},
                   {"dur", (e.t1_ns - e.t0_ns) * 1e-3},
                   {"args", args}});
  }
  evs.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"tid", 0}, {"args", {{"name", "qvl"}}}});
  for (const auto& [tid, _] : threads)
    evs.push_back({{"name", "thread_name"},
                   {"ph", "M"},
                   {"pid", 1},
                   {"tid", tid},
                   {"args", {{"name", strfmt("omp thread %d", tid)}}}});
  return {{"traceEvents", evs}, {"displayTimeUnit", "ms"}};
}

void write_chrome_trace(const std::string& path, const std::vector<prof::Event>& events) {
  std::ofstream f(path);
  QVL_CHECK(f.good(), "--trace %s: cannot open for writing", path.c_str());
  f << chrome_trace(events).dump() << "\n";
  QVL_CHECK(f.good(), "--trace %s: write failed", path.c_str());
}

}  // namespace qvl
