// Flags shared by `qvl run`, `qvl chat`, `qvl profile` (and parts by `bench`):
// model, input, sampling, context, threads. Declared once here; sampling
// defaults come from the model's generation_config.json unless given.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "engine/session.h"

#include "engine/messages.h"

namespace qvl::cli {

// Precision flags shared by run / chat / profile and bench.
struct PrecisionFlags {
  int act_bits = 0;  // 0 = engine default
  bool int8_act = false;
  bool vision_bf16 = false;  // vision encoder GEMMs in bf16 on AMX
  std::string kv_type = "f32";
};
void declare_precision_flags(Flags& f, PrecisionFlags& p);
// Validates them and sets act_bits, vision_bf16 and kv_dtype of `o`.
void apply_precision_flags(const PrecisionFlags& p, SessionOptions* o);

struct RunFlags {
  std::string model;
  std::string prompt;
  bool prompt_given = false;
  std::string messages_file;
  std::string system;
  std::vector<std::string> images;
  int64_t max_tokens = 256;
  float temp = -1, top_p = -1, min_p = -1, repeat_penalty = -1, presence_penalty = -1;
  int top_k = -1;
  uint64_t seed = 0;
  int64_t context = 4096;
  int threads = 0;
  std::vector<std::string> stop;
  bool json = false;
  int64_t min_pixels = -1, max_pixels = -1;
  PrecisionFlags precision;
};

// Declares the flags on `f` (input flags only when with_input).
void declare_run_flags(Flags& f, RunFlags& r, bool with_input);
// After parsing: validates and builds the session / generation options
// (sampling defaults from generation_config.json for flags not given).
SessionOptions session_options(const RunFlags& r);
GenerateOptions generate_options(const Flags& f, const RunFlags& r, const std::string& model_dir);
// The conversation of -p/--image or --messages (exactly one of them).
ChatRequest input_messages(const Flags& f, const RunFlags& r);

}  // namespace qvl::cli
