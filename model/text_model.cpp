// Qwen3-VL text decoder forward (see text_model.h for the recipe).
#include "model/text_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "kernels/activations.h"
#include "kernels/attention.h"
#include "kernels/norms.h"
#include "kernels/profiler.h"
#include "kernels/rope.h"

namespace qvl {

namespace {

double linear_flops(int64_t M, const LinearWeight& W) { return 2.0 * M * W.N * W.K; }
double linear_bytes(int64_t M, const LinearWeight& W) { return (double)W.bytes() + 4.0 * M * (W.N + W.K); }

void notify(TensorObserver* obs, const std::string& name, const float* p, std::vector<int64_t> shape) {
  if (obs) obs->on_tensor(name, p, shape);
}

const char* kind_name(WeightKind k) {
  switch (k) {
    case WeightKind::F32: return "fp32";
    case WeightKind::F16: return "fp16";
    case WeightKind::BF16: return "bf16";
    case WeightKind::Q4: return "int4";
    case WeightKind::Q8: return "int8";
  }
  return "?";
}

}  // namespace

TextModel::~TextModel() = default;

std::unique_ptr<TextModel> TextModel::load(const ModelFiles& files, const ModelConfig& cfg) {
  const TextConfig& c = cfg.text;
  QVL_CHECK(c.hidden > 0 && c.layers > 0 && c.heads > 0 && c.kv_heads > 0 && c.head_dim > 0 && c.vocab > 0,
            "%s/config.json: text config incomplete (hidden %d, layers %d, heads %d, kv_heads %d, head_dim %d)",
            files.config_dir.c_str(), c.hidden, c.layers, c.heads, c.kv_heads, c.head_dim);
  QVL_CHECK(c.heads % c.kv_heads == 0, "%s/config.json: %d attention heads not a multiple of %d KV heads",
            files.config_dir.c_str(), c.heads, c.kv_heads);
  QVL_CHECK(c.head_dim % 2 == 0, "%s/config.json: head_dim %d is odd", files.config_dir.c_str(), c.head_dim);
  int sec = 0;
  for (int s : c.mrope_section) sec += s;
  QVL_CHECK(c.mrope_section.size() == 3 && sec == c.head_dim / 2,
            "%s/config.json: mrope_section must have 3 entries summing to head_dim/2 = %d", files.config_dir.c_str(),
            c.head_dim / 2);
  std::unique_ptr<TextModel> m(new TextModel());
  m->cfg_ = c;
  m->text_path_ = files.text;
  m->text_file_ = OnnxFile::open(files.text);
  std::unique_ptr<WeightBinder> eb;
  if (!files.embedding.empty()) {
    m->embed_path_ = files.embedding;
    m->embed_file_ = OnnxFile::open(files.embedding);
    eb = std::make_unique<WeightBinder>(*m->embed_file_, &m->store_);
  }
  WeightBinder tb(*m->text_file_, &m->store_);
  m->bind(tb, eb.get());
  return m;
}

void TextModel::bind(const WeightBinder& tb, const WeightBinder* eb) {
  const WeightTable t = text_weight_table(cfg_);
  layers_.resize(cfg_.layers);
  for (int i = 0; i < cfg_.layers; ++i) {
    Layer& L = layers_[i];
    L.in_norm = tb.vector(t, "layers.{i}.input_norm", i);
    L.post_norm = tb.vector(t, "layers.{i}.post_norm", i);
    L.q_norm = tb.vector(t, "layers.{i}.q_norm", i);
    L.k_norm = tb.vector(t, "layers.{i}.k_norm", i);
    L.q = tb.linear(t, "layers.{i}.q_proj", i);
    L.k = tb.linear(t, "layers.{i}.k_proj", i);
    L.v = tb.linear(t, "layers.{i}.v_proj", i);
    L.o = tb.linear(t, "layers.{i}.o_proj", i);
    L.gate = tb.linear(t, "layers.{i}.gate_proj", i);
    L.up = tb.linear(t, "layers.{i}.up_proj", i);
    L.down = tb.linear(t, "layers.{i}.down_proj", i);
  }
  final_norm_ = tb.vector(t, "final_norm");
  bool have_head = tb.linear(t.at("lm_head"), -1, &lm_head_);

  // Token table: the embedding graph, else one inside the decoder, else the tied lm_head.
  const WeightTable et = embedding_weight_table(cfg_);
  const WeightSlot& es = et.at("embed_tokens");
  have_table_ = (eb && eb->table(es, -1, &table_)) || tb.table(es, -1, &table_);
  QVL_CHECK(!eb || have_table_, "%s: no token embedding table found (looked for %s)", eb->file_name().c_str(),
            es.names[0].c_str());
  if (!have_head) {  // tied: the token table is the output matrix (the slot is required otherwise)
    QVL_CHECK(have_table_, "%s: no lm_head and no token embedding table to tie it to", tb.file_name().c_str());
    lm_head_ = linear_from_table(table_, tb.file_name());
  }
  QVL_CHECK(have_table_ || cfg_.tie_word_embeddings,
            "%s: no embedding graph beside the decoder and the model does not tie word embeddings, so "
            "token embeddings are unavailable",
            tb.file_name().c_str());
}

KVCache TextModel::make_cache(int64_t ctx, DType dtype) const {
  return KVCache(cfg_.layers, cfg_.kv_heads, cfg_.head_dim, ctx, dtype);
}

std::string TextModel::describe() const {
  namespace fs = std::filesystem;
  return strfmt("%s: %d layers, hidden %d, %d/%d heads, weights %s%s; embedding %s",
                fs::path(text_path_).filename().c_str(), cfg_.layers, cfg_.hidden, cfg_.heads, cfg_.kv_heads,
                kind_name(layers_.empty() ? WeightKind::F32 : layers_[0].q.kind),
                layers_.empty() || layers_[0].q.block_size == 0
                    ? ""
                    : strfmt(" (block %d)", layers_[0].q.block_size).c_str(),
                have_table_ ? (embed_path_.empty() ? "table in the decoder"
                                                   : fs::path(embed_path_).filename().c_str())
                            : "rows of the tied lm_head");
}

void TextModel::embed(const int64_t* ids, int64_t n, float* out) const {
  QVL_ZONE("embed", -1, 0, 4.0 * n * cfg_.hidden);
  for (int64_t i = 0; i < n; ++i)
    QVL_CHECK(ids[i] >= 0 && ids[i] < cfg_.vocab, "token id %lld out of range (vocabulary %lld)",
              (long long)ids[i], (long long)cfg_.vocab);
  if (have_table_) {
    embedding_gather(table_, ids, n, out);
  } else {
    for (int64_t i = 0; i < n; ++i) dequantize_row(lm_head_, ids[i], out + i * cfg_.hidden);
  }
}

void TextModel::ensure_scratch(int64_t S) {
  if (S <= scratch_rows_) return;
  const int64_t H = cfg_.hidden, Q = (int64_t)cfg_.heads * cfg_.head_dim,
                KV = (int64_t)cfg_.kv_heads * cfg_.head_dim, I = cfg_.intermediate;
  x_.resize(S * H);
  a_.resize(S * H);
  y_.resize(S * H);
  q_.resize(S * Q);
  att_.resize(S * Q);
  k_.resize(S * KV);
  v_.resize(S * KV);
  gate_.resize(S * I);
  up_.resize(S * I);
  cos_.resize(S * cfg_.head_dim / 2);
  sin_.resize(S * cfg_.head_dim / 2);
  scratch_rows_ = S;
}

void TextModel::forward(const float* embeds, int64_t S, const int64_t* pos, KVCache& cache, const Deepstack* ds,
                        float* logits, bool all_logits, TensorObserver* obs) {
  QVL_CHECK(S > 0, "forward: no tokens");
  QVL_CHECK(cache.layers == cfg_.layers && cache.kv_heads == cfg_.kv_heads && cache.head_dim == cfg_.head_dim,
            "KV cache shape (%d layers, %d heads, dim %d) does not match the model", cache.layers, cache.kv_heads,
            cache.head_dim);
  QVL_CHECK(cache.len + S <= cache.ctx, "prompt of %lld tokens (after %lld cached) exceeds the context of %lld",
            (long long)S, (long long)cache.len, (long long)cache.ctx);
  if (ds) {
    QVL_CHECK((int)ds->features.size() <= cfg_.layers, "DeepStack: %zu levels but only %d decoder layers",
              ds->features.size(), cfg_.layers);
    for (int64_t r : ds->rows) QVL_CHECK(r >= 0 && r < S, "DeepStack row %lld outside the chunk of %lld", (long long)r, (long long)S);
  }
  ensure_scratch(S);
  const int64_t H = cfg_.hidden;
  std::memcpy(x_.data(), embeds, sizeof(float) * S * H);
  notify(obs, "text.inputs_embeds", x_.data(), {S, H});
  {
    QVL_ZONE("text.rope", -1, 0, 0);
    mrope_tables(pos, S, cfg_.head_dim, cfg_.rope_theta, cfg_.mrope_section.data(), cfg_.mrope_interleaved,
                 cos_.data(), sin_.data());
  }
  for (int l = 0; l < cfg_.layers; ++l) {
    attention_block(l, S, cache, obs);
    mlp_block(l, S);
    if (obs) {
      notify(obs, strfmt("text.layer.%d", l), x_.data(), {S, H});
      const int64_t n = cache.len + S;
      std::vector<float> kv((size_t)cfg_.kv_heads * n * cfg_.head_dim);
      cache.copy_rows(l, false, n, kv.data());
      notify(obs, strfmt("text.layer.%d.key", l), kv.data(), {cfg_.kv_heads, n, cfg_.head_dim});
      cache.copy_rows(l, true, n, kv.data());
      notify(obs, strfmt("text.layer.%d.value", l), kv.data(), {cfg_.kv_heads, n, cfg_.head_dim});
    }
    if (ds && l < (int)ds->features.size()) deepstack_inject(l, S, *ds, obs);
  }
  cache.len += S;
  final_logits(S, logits, all_logits, obs);
}

// x += o_proj(attention(rope(norm(q)), rope(norm(k)), v)) ; K/V appended to the cache.
void TextModel::attention_block(int l, int64_t S, KVCache& cache, TensorObserver* obs) {
  const Layer& L = layers_[l];
  const int64_t H = cfg_.hidden;
  const int Hq = cfg_.heads, Hkv = cfg_.kv_heads, D = cfg_.head_dim;
  {
    QVL_ZONE("text.norm", l, 4.0 * S * H, 8.0 * S * H);
    rms_norm(x_.data(), L.in_norm, a_.data(), S, H, cfg_.rms_eps);
  }
  {
    QVL_ZONE("text.qkv", l, linear_flops(S, L.q) + linear_flops(S, L.k) + linear_flops(S, L.v),
             linear_bytes(S, L.q) + linear_bytes(S, L.k) + linear_bytes(S, L.v));
    const LinearWeight* w[3] = {&L.q, &L.k, &L.v};
    float* y[3] = {q_.data(), k_.data(), v_.data()};
    linear_multi(a_.data(), S, w, y, 3);
  }
  {
    QVL_ZONE("text.rope", l, 6.0 * S * (Hq + Hkv) * D, 8.0 * S * (Hq + Hkv) * D);
    if (L.q_norm) rms_norm(q_.data(), L.q_norm, q_.data(), S * Hq, D, cfg_.rms_eps);
    if (L.k_norm) rms_norm(k_.data(), L.k_norm, k_.data(), S * Hkv, D, cfg_.rms_eps);
    rope_apply(q_.data(), S, Hq, D, (int64_t)Hq * D, cos_.data(), sin_.data());
    rope_apply(k_.data(), S, Hkv, D, (int64_t)Hkv * D, cos_.data(), sin_.data());
  }
  {
    QVL_ZONE("text.kv_write", l, 0, 2.0 * 2 * 4.0 * S * Hkv * D);  // read + write of K and V (fp32 rows)
    cache.write(l, S, k_.data(), v_.data());
  }
  {
    const double ctxlen = (double)cache.len + 0.5 * (S + 1);  // mean keys per query
    const double kv_bytes = cache.dtype == DType::F16 ? 2.0 : 4.0;  // per cached element, K and V each
    QVL_ZONE("text.attn", l, 4.0 * S * ctxlen * Hq * D,
             2.0 * kv_bytes * Hkv * (cache.len + S) * D + 8.0 * S * Hq * D);
    // Quantized models in an integer activation mode: prefill attention in the
    // accuracy class of that mode: split bf16 (≤ 2^−16) for the 15-bit Int16
    // mode (≈1e−5), plain bf16 (2^−8 per operand) for Int8 (≈2^−8).
    const bool quantized = L.o.kind == WeightKind::Q4 || L.o.kind == WeightKind::Q8;
    const QuantCompute qc = quant_compute();
    const AttnPrecision prec = !quantized || qc == QuantCompute::F32 ? AttnPrecision::F32
                               : qc == QuantCompute::Int8           ? AttnPrecision::BF16
                                                                    : AttnPrecision::Split;
    attention_causal(q_.data(), (int64_t)Hq * D, S, Hq, Hkv, D, cache.layer(l), cache.len,
                     1.0f / std::sqrt((float)D), att_.data(), (int64_t)Hq * D, prec);
  }
  {
    QVL_ZONE("text.o_proj", l, linear_flops(S, L.o), linear_bytes(S, L.o));
    linear(att_.data(), S, L.o, y_.data());
    add_inplace(x_.data(), y_.data(), S * H);
  }
}

// x += down(silu(gate(a)) ⊙ up(a)), a = RMSNorm(x).
void TextModel::mlp_block(int l, int64_t S) {
  const Layer& L = layers_[l];
  const int64_t H = cfg_.hidden, I = cfg_.intermediate;
  {
    QVL_ZONE("text.norm", l, 4.0 * S * H, 8.0 * S * H);
    rms_norm(x_.data(), L.post_norm, a_.data(), S, H, cfg_.rms_eps);
  }
  QVL_ZONE("text.mlp", l, linear_flops(S, L.gate) + linear_flops(S, L.up) + linear_flops(S, L.down),
           linear_bytes(S, L.gate) + linear_bytes(S, L.up) + linear_bytes(S, L.down));
  const LinearWeight* w[2] = {&L.gate, &L.up};
  float* y[2] = {gate_.data(), up_.data()};
  linear_multi(a_.data(), S, w, y, 2);
  swiglu(gate_.data(), up_.data(), gate_.data(), S * I);
  linear(gate_.data(), S, L.down, y_.data());
  add_inplace(x_.data(), y_.data(), S * H);
}

// After layer l: x[rows[j]] += features[l][j].
void TextModel::deepstack_inject(int l, int64_t S, const Deepstack& ds, TensorObserver* obs) {
  const int64_t H = cfg_.hidden;
  QVL_ZONE("text.deepstack", l, (double)ds.rows.size() * H, 8.0 * ds.rows.size() * H);
  const float* f = ds.features[l];
  for (size_t j = 0; j < ds.rows.size(); ++j) add_inplace(x_.data() + ds.rows[j] * H, f + j * H, H);
  notify(obs, strfmt("text.layer.%d.plus_deepstack", l), x_.data(), {S, H});
}

void TextModel::final_logits(int64_t S, float* logits, bool all_logits, TensorObserver* obs) {
  const int64_t H = cfg_.hidden;
  {
    QVL_ZONE("text.norm", cfg_.layers, 4.0 * S * H, 8.0 * S * H);
    rms_norm(x_.data(), final_norm_, a_.data(), S, H, cfg_.rms_eps);
  }
  notify(obs, "text.final_norm", a_.data(), {S, H});
  if (!logits) return;
  const int64_t rows = all_logits ? S : 1;
  const float* in = a_.data() + (S - rows) * H;
  QVL_ZONE("lm_head", -1, linear_flops(rows, lm_head_), linear_bytes(rows, lm_head_));
  linear(in, rows, lm_head_, logits);
  notify(obs, "logits", logits, {rows, cfg_.vocab});
}

}  // namespace qvl
