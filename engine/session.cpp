// Session: the prefill/decode loop around the model layer (see session.h).
#include "engine/session.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>

#include "engine/chat_template.h"
#include "engine/image.h"
#include "engine/tokenizer.h"
#include "engine/threads.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "kernels/profiler.h"
#include "loader/config.h"
#include "model/kv_cache.h"
#include "model/model_files.h"
#include "model/positions.h"
#include "model/text_model.h"
#include "model/vision_model.h"

namespace qvl {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Longest suffix of `text` that is a proper prefix of some stop string: that
// much must be held back while streaming.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}

}  // namespace

struct Session::Impl {
  SessionOptions opts;
  ModelFiles files;
  ModelConfig cfg;
  PreprocessorConfig pre;
  GenerationConfig gen;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<TextModel> text;
  std::unique_ptr<VisionModel> vision;
  KVCache cache;
  std::vector<int64_t> eos;
  int64_t next_pos = 0;        // first free rope position after the cache
  bool assistant_open = false;  // the cache ends inside an assistant answer
  TensorObserver* obs = nullptr;
  double load_s = 0;
  std::vector<float> logits;

  struct Prompt {
    std::vector<int64_t> ids;           // expanded
    std::vector<PreprocessedImage> images;
  };

  Prompt build_prompt(const std::string& text_in, const std::vector<std::string>& image_paths,
                      Timings* t);
  void encode_and_prefill(const Prompt& p, Timings* t);
  GenerateResult run(const std::string& prompt_text, const std::vector<std::string>& images,
                     const GenerateOptions& g, const TextCallback& cb);
};

Session::Session(const SessionOptions& o) : impl_(std::make_unique<Impl>()) {
  auto t0 = std::chrono::steady_clock::now();
  Impl& s = *impl_;
  s.opts = o;
  QVL_CHECK(o.context > 0, "-c must be > 0 (got %lld)", (long long)o.context);
  set_threads(o.threads);
  QVL_CHECK(o.act_bits == 0 || o.act_bits == 8 || o.act_bits == 16 || o.act_bits == 32,
            "--act-bits must be 8, 16 or 32 (got %d)", o.act_bits);
  set_quant_compute(o.act_bits == 8    ? QuantCompute::Int8
                    : o.act_bits == 32 ? QuantCompute::F32
                                       : QuantCompute::Int16);
  s.files = find_model_files(o.model_dir);
  s.cfg = read_model_config(s.files.config_dir);
  read_preprocessor_config(s.files.config_dir, &s.pre);
  if (o.min_pixels > 0) s.pre.min_pixels = o.min_pixels;
  if (o.max_pixels > 0) s.pre.max_pixels = o.max_pixels;
  QVL_CHECK(s.pre.min_pixels <= s.pre.max_pixels, "--min-pixels (%lld) exceeds --max-pixels (%lld)",
            (long long)s.pre.min_pixels, (long long)s.pre.max_pixels);
  read_generation_config(s.files.config_dir, &s.gen);
  s.tok = std::make_unique<Tokenizer>(Tokenizer::locate(o.model_dir));
  s.text = TextModel::load(s.files, s.cfg);
  if (!s.files.vision.empty()) s.vision = VisionModel::load(s.files, s.cfg);
  s.cache = s.text->make_cache(o.context, o.kv_dtype);
  s.eos = !s.gen.eos_token_ids.empty() ? s.gen.eos_token_ids : s.cfg.eos_token_ids;
  if (s.eos.empty()) s.eos = {s.tok->special_id("<|im_end|>")};
  s.logits.resize(static_cast<size_t>(s.text->vocab()));
  s.load_s = seconds_since(t0);
}

Session::~Session() = default;

double Session::load_seconds() const { return impl_->load_s; }
int64_t Session::cache_len() const { return impl_->cache.len; }
int64_t Session::context() const { return impl_->cache.ctx; }
void Session::set_observer(TensorObserver* obs) { impl_->obs = obs; }

void Session::reset() {
  impl_->cache.clear();
  impl_->next_pos = 0;
  impl_->assistant_open = false;
}

Session::Impl::Prompt Session::Impl::build_prompt(const std::string& prompt_text,
                                                  const std::vector<std::string>& image_paths,
                                                  Timings* t) {
  Prompt p;
  std::vector<int64_t> ids;
  {
    QVL_ZONE("tokenizer");
    ids = tok->encode(prompt_text);
  }
  int64_t pads = std::count(ids.begin(), ids.end(), cfg.image_token_id);
  QVL_CHECK(pads == static_cast<int64_t>(image_paths.size()),
            "prompt has %lld image placeholders but %zu images were given", (long long)pads,
            image_paths.size());
  if (!image_paths.empty()) {
    QVL_CHECK(vision != nullptr, "%s: model has no vision encoder, cannot take images",
              files.dir.c_str());
    prof::set_phase("preprocess");
    auto t0 = std::chrono::steady_clock::now();
    for (const auto& path : image_paths) {
      QVL_ZONE("preprocess");
      Image img = decode_image(path);
      p.images.push_back(preprocess_image(img, pre));
    }
    t->preprocess_s += seconds_since(t0);
  }
  size_t img = 0;
  for (int64_t id : ids) {
    if (id == cfg.image_token_id) {
      int64_t n = p.images[img++].num_tokens(pre.merge);
      p.ids.insert(p.ids.end(), static_cast<size_t>(n), id);
      t->image_tokens += n;
    } else {
      p.ids.push_back(id);
    }
  }
  return p;
}

void Session::Impl::encode_and_prefill(const Prompt& p, Timings* t) {
  const int64_t S = static_cast<int64_t>(p.ids.size());
  QVL_CHECK(S > 0, "empty prompt");
  QVL_CHECK(cache.len + S < cache.ctx,
            "prompt of %lld tokens (+%lld already in the conversation) exceeds the context of "
            "%lld tokens (raise -c)",
            (long long)S, (long long)cache.len, (long long)cache.ctx);
  const int64_t H = text->hidden();

  // Vision: all images of this chunk in one encode (attention stays per image).
  std::vector<float> img_embeds;
  std::vector<std::vector<float>> deepstack;
  std::vector<Grid3> grids;
  if (!p.images.empty()) {
    prof::set_phase("vision");
    auto t0 = std::chrono::steady_clock::now();
    int64_t rows = 0;
    for (const auto& im : p.images) rows += im.rows();
    const int64_t row_len = p.images[0].row_len;
    std::vector<float> pixels(static_cast<size_t>(rows * row_len));
    size_t off = 0;
    for (const auto& im : p.images) {
      std::copy(im.pixels.begin(), im.pixels.end(), pixels.begin() + static_cast<long>(off));
      off += im.pixels.size();
      grids.push_back(Grid3{im.grid.t, im.grid.h, im.grid.w});
    }
    {
      ScopedFloatCompute fc(opts.vision_bf16 ? FloatCompute::BF16 : float_compute());
      vision->encode(pixels.data(), grids, &img_embeds, &deepstack, obs);
    }
    t->vision_s += seconds_since(t0);
  }

  prof::set_phase("prefill");
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> embeds(static_cast<size_t>(S * H));
  text->embed(p.ids.data(), S, embeds.data());
  Deepstack ds;
  if (!p.images.empty()) {
    int64_t j = 0;
    for (int64_t i = 0; i < S; ++i)
      if (p.ids[i] == cfg.image_token_id) {
        std::copy_n(img_embeds.data() + j * H, H, embeds.data() + i * H);
        ds.rows.push_back(i);
        ++j;
      }
    QVL_ASSERT(j * H == static_cast<int64_t>(img_embeds.size()));
    for (const auto& f : deepstack) ds.features.push_back(f.data());
  }
  RopeIndex ri = rope_index(p.ids.data(), S, grids, {}, pre.merge, cfg.image_token_id,
                            cfg.video_token_id, cfg.vision_start_token_id, next_pos);
  text->forward(embeds.data(), S, ri.pos.data(), cache, ds.features.empty() ? nullptr : &ds,
                logits.data(), false, obs);
  next_pos = ri.next;
  t->prefill_s += seconds_since(t0);
  t->prompt_tokens += S;
}

GenerateResult Session::Impl::run(const std::string& prompt_text,
                                  const std::vector<std::string>& images,
                                  const GenerateOptions& g, const TextCallback& cb) {
  QVL_CHECK(g.max_new_tokens >= 0, "-n must be >= 0");
  GenerateResult r;
  Timings& t = r.timings;
  t.load_s = load_s;
  Sampler sampler(g.sampling);
  Prompt p = build_prompt(prompt_text, images, &t);
  encode_and_prefill(p, &t);
  assistant_open = true;

  StreamDecoder stream(*tok, /*skip_special=*/true);
  std::string text_out;  // everything decoded so far
  size_t emitted = 0;
  std::set<int64_t> eos(this->eos.begin(), this->eos.end());
  const int64_t V = text->vocab();
  const int64_t H = text->hidden();
  std::vector<float> emb(static_cast<size_t>(H));
  r.stop_reason = "length";
  auto t_dec = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < g.max_new_tokens; ++step) {
    if (step == 1) t_dec = std::chrono::steady_clock::now();
    int64_t id;
    {
      QVL_ZONE("sampling");
      id = sampler.sample(logits.data(), V, p.ids, r.ids);
    }
    r.ids.push_back(id);
    t.generated_tokens++;
    if (!g.ignore_eos && eos.count(id)) {
      r.stop_reason = "eos";
      break;
    }
    text_out += stream.push(id);
    bool stopped = false;
    for (const auto& s : g.stop) {
      size_t at = text_out.find(s);
      if (!s.empty() && at != std::string::npos) {
        text_out.resize(at);
        stopped = true;
      }
    }
    size_t ready = stopped ? text_out.size() : text_out.size() - held_back(text_out, g.stop);
    if (cb && ready > emitted) cb(text_out.substr(emitted, ready - emitted));
    emitted = std::max(emitted, ready);
    if (stopped) {
      r.stop_reason = "stop";
      break;
    }
    if (step + 1 == g.max_new_tokens) break;
    if (cache.len + 1 >= cache.ctx) {
      r.stop_reason = "context";
      break;
    }
    // Feed the token: same position on all three axes, continuing after the prompt.
    prof::set_phase("decode");
    text->embed(&id, 1, emb.data());
    int64_t pos[3] = {next_pos, next_pos, next_pos};
    text->forward(emb.data(), 1, pos, cache, nullptr, logits.data(), false, obs);
    ++next_pos;
  }
  if (t.generated_tokens > 1) t.decode_s = seconds_since(t_dec);
  if (r.stop_reason != "stop") {
    text_out += stream.flush();
    if (cb && text_out.size() > emitted) cb(text_out.substr(emitted));
  }
  r.text = text_out;
  prof::set_phase("");
  return r;
}

// Images in the order the template renders their pads; videos are refused.
static std::vector<std::string> image_paths_of(const std::vector<Message>& msgs) {
  // The template renders media only in user (and tool) turns; an image anywhere
  // else would be dropped without a trace, so refuse it.
  size_t all_media = 0;
  for (const auto& m : msgs)
    for (const auto& part : m.parts)
      if (part.kind != ContentPart::Text) ++all_media;
  auto rendered = rendered_media(msgs);
  QVL_CHECK(rendered.size() == all_media,
            "images are only supported in user messages (%zu of %zu images are in "
            "system/assistant messages)",
            all_media - rendered.size(), all_media);
  std::vector<std::string> out;
  for (const ContentPart* part : rendered) {
    QVL_CHECK(part->kind == ContentPart::Image, "video input is not supported yet (%s)",
              part->path.c_str());
    out.push_back(part->path);
  }
  return out;
}

GenerateResult Session::generate(const std::vector<Message>& messages, const GenerateOptions& g,
                                 const TextCallback& cb, const ChatOptions* chat_options) {
  reset();
  std::string prompt = render_chat(messages, /*add_generation_prompt=*/true,
                                   chat_options ? *chat_options : ChatOptions{});
  return impl_->run(prompt, image_paths_of(messages), g, cb);
}

GenerateResult Session::chat_turn(const Message& user, const GenerateOptions& g,
                                  const TextCallback& cb) {
  // The cache holds every earlier token; only the new turn is rendered. An
  // answer in the cache ends before its <|im_end|> (sampled, never fed).
  std::string prompt = render_chat({user}, /*add_generation_prompt=*/true, ChatOptions{});
  if (impl_->assistant_open) prompt = "<|im_end|>\n" + prompt;
  return impl_->run(prompt, image_paths_of({user}), g, cb);
}

std::vector<float> Session::prefill_ids(const std::vector<int64_t>& ids) {
  reset();
  Timings t;
  Impl::Prompt p;
  p.ids = ids;
  impl_->encode_and_prefill(p, &t);
  return impl_->logits;
}

std::vector<float> Session::decode_one(int64_t id) {
  Impl& s = *impl_;
  QVL_CHECK(s.cache.len + 1 <= s.cache.ctx, "context of %lld tokens is full", (long long)s.cache.ctx);
  prof::set_phase("decode");
  std::vector<float> emb(static_cast<size_t>(s.text->hidden()));
  s.text->embed(&id, 1, emb.data());
  int64_t pos[3] = {s.next_pos, s.next_pos, s.next_pos};
  s.text->forward(emb.data(), 1, pos, s.cache, nullptr, s.logits.data(), false, s.obs);
  ++s.next_pos;
  return s.logits;
}

const char* vision_precision(const SessionOptions& o) {
  if (!o.vision_bf16 || !gemm::bf16_available()) return "fp32";
  return gemm::bf16_amx_available() ? "bf16-amx" : "bf16-avx512";
}

int64_t Session::encode_images(const std::vector<std::string>& paths) {
  Impl& s = *impl_;
  QVL_CHECK(s.vision != nullptr, "%s: model has no vision encoder", s.files.dir.c_str());
  std::vector<float> pixels, embeds;
  std::vector<std::vector<float>> ds;
  std::vector<Grid3> grids;
  int64_t tokens = 0;
  for (const auto& path : paths) {
    PreprocessedImage im = preprocess_image(decode_image(path), s.pre);
    pixels.insert(pixels.end(), im.pixels.begin(), im.pixels.end());
    grids.push_back(Grid3{im.grid.t, im.grid.h, im.grid.w});
    tokens += im.num_tokens(s.pre.merge);
  }
  prof::set_phase("vision");
  {
    ScopedFloatCompute fc(s.opts.vision_bf16 ? FloatCompute::BF16 : float_compute());
    s.vision->encode(pixels.data(), grids, &embeds, &ds, s.obs);
  }
  prof::set_phase("");
  return tokens;
}

}  // namespace qvl
