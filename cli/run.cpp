// qvl run (one request, streamed) and qvl chat (interactive, KV cache kept
// across turns).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cli/run_flags.h"
#include "engine/chat_template.h"
#include "engine/messages.h"
#include "kernels/base.h"
#include "loader/config.h"
#include "model/model_files.h"

namespace qvl::cli {

void declare_run_flags(Flags& f, RunFlags& r, bool with_input) {
  f.add("-m", &r.model, "model folder (qvl-convert output or another supported ONNX layout)");
  f.alias("--model");
  if (with_input) {
    f.add("-p", &r.prompt, "user prompt text");
    f.alias("--prompt");
    f.add("--messages", &r.messages_file, "chat JSON file (list of messages or {\"messages\": [...]})");
    f.add("--image", &r.images, "image file for the prompt (repeatable; placed before the text)");
  }
  f.add("--system", &r.system, "system message (with -p, and for chat)");
  f.add("-n", &r.max_tokens, "maximum new tokens (default 256)");
  f.alias("--max-tokens");
  f.add("--temp", &r.temp, "temperature; 0 = greedy (default: generation_config.json)");
  f.add("--top-k", &r.top_k, "top-k cut-off, 0 = off (default: generation_config.json)");
  f.add("--top-p", &r.top_p, "nucleus cut-off in (0,1] (default: generation_config.json)");
  f.add("--min-p", &r.min_p, "min-p cut-off in [0,1) (default: generation_config.json or 0)");
  f.add("--repeat-penalty", &r.repeat_penalty, "repetition penalty, 1 = off");
  f.add("--presence-penalty", &r.presence_penalty, "presence penalty, 0 = off");
  f.add("--seed", &r.seed, "sampling seed (default: random, printed with --json)");
  f.add("-c", &r.context, "context length in tokens = KV cache size (default 4096)");
  f.alias("--ctx");
  f.add("-t", &r.threads, "threads (default: physical cores)");
  f.alias("--threads");
  f.add("--stop", &r.stop, "extra stop string (repeatable)");
  f.add("--min-pixels", &r.min_pixels, "image min pixels (default: preprocessor_config.json)");
  f.add("--max-pixels", &r.max_pixels, "image max pixels; lower it to cap image tokens");
  declare_precision_flags(f, r.precision);
  f.add("--json", &r.json, "print one JSON result instead of streaming text");
}

void declare_precision_flags(Flags& f, PrecisionFlags& p) {
  f.add("--act-bits", &p.act_bits,
        "INT4/INT8 models: activation bits 8|16|32 (default 16 on AVX-512 VNNI: 15-bit integer, "
        "~1e-5 relative; 8 fastest, ~2^-8, with bf16 prefill attention; 32 exact fp32). On AMX, "
        "prefill of 16 uses bf16 split operands (3 products, ~2^-16) and of 8 bf16 weights and "
        "activations (~2^-8)");
  f.add("--int8-act", &p.int8_act, "same as --act-bits 8");
  f.add("--vision-bf16", &p.vision_bf16,
        "vision encoder in the ~2^-8 class (default: fp32, or the --act-bits integer mode for INT4/INT8 "
        "weights): attention and float-weight matmuls in bf16 (AMX or AVX512-BF16, fp32 sums), quantized "
        "weights in bf16 too, or on int8 activations with --act-bits 8 (fastest)");
  f.add("--kv-type", &p.kv_type, "KV cache element type: f32 (default, exact) or f16 (half the memory and decode cache reads)");
}

void apply_precision_flags(const PrecisionFlags& p, SessionOptions* o) {
  QVL_CHECK(!(p.int8_act && p.act_bits && p.act_bits != 8), "--int8-act contradicts --act-bits %d", p.act_bits);
  o->act_bits = p.int8_act ? 8 : p.act_bits;
  o->vision_bf16 = p.vision_bf16;
  QVL_CHECK(p.kv_type == "f32" || p.kv_type == "f16", "--kv-type must be f32 or f16 (got '%s')", p.kv_type.c_str());
  o->kv_dtype = p.kv_type == "f16" ? DType::F16 : DType::F32;
}

SessionOptions session_options(const RunFlags& r) {
  QVL_CHECK(!r.model.empty(), "missing -m MODEL_DIR");
  QVL_CHECK(r.context > 0, "-c must be > 0 (got %lld)", (long long)r.context);
  QVL_CHECK(r.min_pixels == -1 || r.min_pixels > 0, "--min-pixels must be > 0");
  QVL_CHECK(r.max_pixels == -1 || r.max_pixels > 0, "--max-pixels must be > 0");
  QVL_CHECK(r.max_tokens >= 0, "-n must be >= 0 (got %lld)", (long long)r.max_tokens);
  SessionOptions o;
  o.model_dir = r.model;
  o.context = r.context;
  o.threads = r.threads;
  o.min_pixels = r.min_pixels;
  o.max_pixels = r.max_pixels;
  apply_precision_flags(r.precision, &o);
  return o;
}

GenerateOptions generate_options(const Flags& f, const RunFlags& r, const std::string& model_dir) {
  GenerationConfig gc;
  read_generation_config(find_model_files(model_dir).config_dir, &gc);
  GenerateOptions g;
  SamplingParams& s = g.sampling;
  s.temperature = f.given("--temp") ? r.temp : (gc.do_sample ? gc.temperature : 0.f);
  s.top_k = f.given("--top-k") ? r.top_k : gc.top_k;
  s.top_p = f.given("--top-p") ? r.top_p : gc.top_p;
  s.min_p = f.given("--min-p") ? r.min_p : gc.min_p;
  s.repetition_penalty = f.given("--repeat-penalty") ? r.repeat_penalty : gc.repetition_penalty;
  s.presence_penalty = f.given("--presence-penalty") ? r.presence_penalty : gc.presence_penalty;
  s.seed = f.given("--seed") ? r.seed : std::random_device{}();
  validate(s);
  g.max_new_tokens = r.max_tokens;
  g.stop = r.stop;
  for (const auto& st : g.stop) QVL_CHECK(!st.empty(), "--stop needs a non-empty string");
  return g;
}

ChatRequest input_messages(const Flags& f, const RunFlags& r) {
  bool has_p = f.given("-p") || f.given("--prompt");
  bool has_m = f.given("--messages");
  QVL_CHECK(has_p != has_m, has_p ? "give either -p or --messages, not both"
                                  : "missing input: give -p TEXT or --messages FILE");
  if (has_m) {
    QVL_CHECK(r.images.empty(), "--image goes with -p; put images into the --messages file");
    return load_messages(r.messages_file);
  }
  QVL_CHECK(!r.prompt.empty(), "empty prompt (-p)");
  ChatRequest req;
  std::vector<Message>& msgs = req.messages;
  if (!r.system.empty()) msgs.push_back(text_message("system", r.system));
  Message user;
  user.role = "user";
  for (const auto& img : r.images) user.parts.push_back(ContentPart{ContentPart::Image, "", img});
  user.parts.push_back(ContentPart{ContentPart::Text, r.prompt, ""});
  msgs.push_back(user);
  return req;
}

static nlohmann::json result_json(const GenerateResult& res, uint64_t seed) {
  const Timings& t = res.timings;
  return {{"ids", res.ids},
          {"text", res.text},
          {"stop_reason", res.stop_reason},
          {"prompt_tokens", t.prompt_tokens},
          {"image_tokens", t.image_tokens},
          {"generated_tokens", t.generated_tokens},
          {"load_s", t.load_s},
          {"preprocess_s", t.preprocess_s},
          {"vision_s", t.vision_s},
          {"prefill_s", t.prefill_s},
          {"prefill_tok_s", t.prefill_tok_s()},
          {"decode_tok_s", t.decode_tok_s()},
          {"seed", seed}};
}

static void print_stats(const GenerateResult& res) {
  const Timings& t = res.timings;
  std::fprintf(stderr,
               "\n[%lld prompt tokens (%lld image) | prefill %.1f tok/s | %lld generated, decode "
               "%.1f tok/s | vision %.2f s | load %.2f s | stop: %s]\n",
               (long long)t.prompt_tokens, (long long)t.image_tokens, t.prefill_tok_s(),
               (long long)t.generated_tokens, t.decode_tok_s(), t.vision_s, t.load_s,
               res.stop_reason.c_str());
}

int cmd_run(int argc, char** argv) {
  RunFlags r;
  Flags f("qvl run -m MODEL_DIR (-p TEXT [--image PATH]... | --messages FILE) [options]");
  declare_run_flags(f, r, true);
  if (!f.parse(argc, argv)) return 0;
  SessionOptions so = session_options(r);
  ChatRequest req = input_messages(f, r);
  GenerateOptions g = generate_options(f, r, r.model);
  Session session(so);
  TextCallback cb;
  if (!r.json) cb = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  GenerateResult res = session.generate(req.messages, g, cb, &req.options);
  if (r.json) {
    std::printf("%s\n", result_json(res, g.sampling.seed).dump().c_str());
  } else {
    std::printf("\n");
    print_stats(res);
  }
  return 0;
}

int cmd_chat(int argc, char** argv) {
  RunFlags r;
  Flags f("qvl chat -m MODEL_DIR [options]   (type /image PATH, /reset, /quit)");
  declare_run_flags(f, r, false);
  if (!f.parse(argc, argv)) return 0;
  SessionOptions so = session_options(r);
  GenerateOptions g = generate_options(f, r, r.model);
  Session session(so);
  const bool tty = isatty(STDIN_FILENO);
  std::vector<std::string> pending_images;
  bool first = true;
  std::string line;
  auto cb = [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  for (;;) {
    if (tty) {
      std::printf("> ");
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      session.reset();
      pending_images.clear();
      first = true;
      std::printf("[conversation reset]\n");
      continue;
    }
    if (line.rfind("/image ", 0) == 0) {
      std::string path = line.substr(7);
      QVL_CHECK(!path.empty(), "/image needs a path");
      pending_images.push_back(path);
      std::printf("[image attached to the next message: %s]\n", path.c_str());
      continue;
    }
    if (line.empty()) continue;
    Message user;
    user.role = "user";
    for (const auto& img : pending_images) user.parts.push_back(ContentPart{ContentPart::Image, "", img});
    user.parts.push_back(ContentPart{ContentPart::Text, line, ""});
    pending_images.clear();
    GenerateResult res;
    try {
      if (first && !r.system.empty()) {
        res = session.generate({text_message("system", r.system), user}, g,
                               r.json ? TextCallback() : TextCallback(cb));
      } else {
        res = session.chat_turn(user, g, r.json ? TextCallback() : TextCallback(cb));
      }
    } catch (const Error& e) {
      // A bad turn (unreadable image, context full) does not end the chat.
      std::fprintf(stderr, "qvl: error: %s\n", e.what());
      if (!tty) return 1;
      continue;
    }
    first = false;
    if (r.json)
      std::printf("%s\n", result_json(res, g.sampling.seed).dump().c_str());
    else
      std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace qvl::cli
