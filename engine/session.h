// A loaded model plus one conversation: turns messages (text and images) into
// tokens, runs vision → prefill → decode with the KV cache, samples, and
// streams text. Chat turns reuse the KV cache of earlier turns.
//
// Data path: messages → chat template → tokenizer (image pads expanded) ;
//            images → decode → preprocess → vision encoder ;
//            ids + image embeddings → 3-D positions → text model ↔ KV cache →
//            sampler → stream decoder → text.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "kernels/dtype.h"

namespace qvl {

struct Message;      // engine/chat_template.h
struct ChatOptions;  // engine/chat_template.h
class TensorObserver;

struct SessionOptions {
  std::string model_dir;
  int64_t context = 4096;   // KV cache length (tokens)
  int threads = 0;          // 0 = physical cores
  int64_t min_pixels = -1;  // -1: from preprocessor_config.json
  int64_t max_pixels = -1;
  // INT4/INT8 weights: activation precision of the quantized matmuls
  // (kernels/linear.h QuantCompute). 0 = default: 16 where the CPU has AVX-512
  // VNNI, else 32. 16 = 15-bit per-block integer activations (error 1/65278 of
  // the block's max |x|, ~2x faster than 32); 8 = int8 (fastest, ~1e-3
  // relative, can flip near-tied greedy choices); 32 = exact fp32.
  int act_bits = 0;
  // Vision encoder only: float GEMMs (and INT4/INT8 weights) in bf16 on AMX,
  // fp32 accumulation (kernels/linear.h FloatCompute). The text decoder is
  // unaffected. Without AMX: as without the option.
  bool vision_bf16 = false;
  // KV cache element type: F32 (exact) or F16 (half the memory and half the
  // cache bytes a long-context decode step reads; rounding ≤ 2^-11 relative).
  DType kv_dtype = DType::F32;
};

// What the vision encoder multiplies in for these options: "bf16-amx",
// "bf16-avx512" (AVX512-BF16 without AMX) or "fp32".
const char* vision_precision(const SessionOptions& o);

struct GenerateOptions {
  SamplingParams sampling;
  int64_t max_new_tokens = 256;
  std::vector<std::string> stop;  // extra stop strings
  bool ignore_eos = false;        // benchmarks: always generate max_new_tokens
};

struct Timings {
  double load_s = 0, preprocess_s = 0, vision_s = 0, prefill_s = 0, decode_s = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0, image_tokens = 0;
  double prefill_tok_s() const { return prefill_s > 0 ? prompt_tokens / prefill_s : 0; }
  // The first generated token comes out of the prefill; decode counts the rest.
  double decode_tok_s() const {
    return decode_s > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_s : 0;
  }
};

struct GenerateResult {
  std::vector<int64_t> ids;  // generated ids (incl. the stop token if one was sampled)
  std::string text;          // decoded, without the stop token / stop string
  std::string stop_reason;   // "eos", "stop", "length"
  Timings timings;
};

using TextCallback = std::function<void(const std::string& piece)>;

class Session {
 public:
  explicit Session(const SessionOptions& opts);
  ~Session();

  // One-shot: forget any history, render `messages` with a generation prompt,
  // generate. on_text receives complete UTF-8 pieces as they are produced.
  GenerateResult generate(const std::vector<Message>& messages, const GenerateOptions& g,
                          const TextCallback& on_text = nullptr,
                          const ChatOptions* chat_options = nullptr);

  // Chat: append one user message to the conversation (prefilling only the new
  // tokens on top of the cached history), generate the assistant answer.
  GenerateResult chat_turn(const Message& user, const GenerateOptions& g,
                           const TextCallback& on_text = nullptr);
  void reset();  // drop the conversation and the KV cache contents

  // Lower-level pieces used by bench/profile/compare:
  // prefill raw ids (no template; images none) and return the last row's logits.
  std::vector<float> prefill_ids(const std::vector<int64_t>& ids);
  // one decode step for `id`; returns logits.
  std::vector<float> decode_one(int64_t id);
  // Encode images only (vision benchmark); returns the number of image tokens.
  int64_t encode_images(const std::vector<std::string>& paths);
  void set_observer(TensorObserver* obs);

  double load_seconds() const;
  int64_t cache_len() const;
  int64_t context() const;
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qvl
