// Qwen-VL image preprocessing, bit-exact with Hugging Face's slow processor:
//   smart_resize (Python float64 arithmetic, round-half-to-even)
//   → PIL-identical bicubic resize on uint8 (Pillow's ImagingResample recipe:
//     separable, 22-bit fixed-point weights, uint8 intermediate)
//   → float32(float64(x) · 1/255) → (x − mean) / std in float32
//   → frame duplicated to temporal_patch → rows in merge-block order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "engine/image.h"
#include "kernels/base.h"

// The reference (Pillow, built without FMA) evaluates the cubic and the
// coefficient sums with separate multiplies and adds; keep it that way.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#else
#pragma GCC optimize("fp-contract=off")
#endif

namespace qvl {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS
constexpr int64_t kParallelMin = 1 << 18;   // output pixels below which threads cost more

// Cubic convolution kernel, a = −0.5 (Keys), support 2.
double cubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per-output-sample taps along one axis: source start, tap count and
// normalized weights (ksize slots per output, unused slots zero).
struct Taps {
  int ksize = 0;
  std::vector<int> start, count;
  std::vector<double> w;      // [out, ksize]
  std::vector<int32_t> wq;    // same, fixed point
};

Taps make_taps(int in_size, int out_size) {
  Taps t;
  const double scale = double(float(in_size) - 0.0f) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.start.resize(out_size);
  t.count.resize(out_size);
  t.w.assign(size_t(out_size) * t.ksize, 0.0);
  t.wq.assign(t.w.size(), 0);
  for (int o = 0; o < out_size; ++o) {
    const double center = 0.0 + (o + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int lo = int(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = int(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double* k = &t.w[size_t(o) * t.ksize];
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      double v = cubic((i + lo - center + 0.5) * ss);
      k[i] = v;
      sum += v;
    }
    for (int i = 0; i < n; ++i)
      if (sum != 0.0) k[i] /= sum;
    for (int i = 0; i < t.ksize; ++i) {
      double v = k[i] * (1 << kPrecisionBits);
      t.wq[size_t(o) * t.ksize + i] = k[i] < 0 ? int32_t(-0.5 + v) : int32_t(0.5 + v);
    }
    t.start[o] = lo;
    t.count[o] = n;
  }
  return t;
}

inline uint8_t clip8_fixed(int32_t acc) {
  int v = acc >> kPrecisionBits;
  return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
}

inline uint8_t clip8_double(double v) {
  // Pillow's ROUND_UP: half away from zero.
  int r = int(v >= 0.0 ? v + 0.5 : v - 0.5);
  return uint8_t(r < 0 ? 0 : (r > 255 ? 255 : r));
}

// Horizontal pass: src rows [row0, row0 + rows) of width src_w → dst [rows, out_w, 3].
template <bool kFixed>
void resample_rows(const uint8_t* src, int src_w, int row0, int rows, const Taps& t, int out_w,
                   uint8_t* dst) {
#pragma omp parallel for schedule(static) if (int64_t(rows) * out_w > kParallelMin)
  for (int y = 0; y < rows; ++y) {
    const uint8_t* s = src + (size_t(row0) + y) * src_w * 3;
    uint8_t* d = dst + size_t(y) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      const int lo = t.start[x], n = t.count[x];
      const size_t kofs = size_t(x) * t.ksize;
      if constexpr (kFixed) {
        const int32_t* k = &t.wq[kofs];
        int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
        for (int i = 0; i < n; ++i) {
          const uint8_t* p = s + size_t(lo + i) * 3;
          a0 += p[0] * k[i];
          a1 += p[1] * k[i];
          a2 += p[2] * k[i];
        }
        d[3 * x] = clip8_fixed(a0), d[3 * x + 1] = clip8_fixed(a1), d[3 * x + 2] = clip8_fixed(a2);
      } else {
        const double* k = &t.w[kofs];
        double a0 = 0, a1 = 0, a2 = 0;
        for (int i = 0; i < n; ++i) {
          const uint8_t* p = s + size_t(lo + i) * 3;
          a0 += p[0] * k[i];
          a1 += p[1] * k[i];
          a2 += p[2] * k[i];
        }
        d[3 * x] = clip8_double(a0), d[3 * x + 1] = clip8_double(a1), d[3 * x + 2] = clip8_double(a2);
      }
    }
  }
}

// Vertical pass: src [*, w, 3] (row r = source row row0 + r) → dst [out_h, w, 3].
// Accumulates whole rows (tap-major) so the inner loop is contiguous.
template <bool kFixed>
void resample_cols(const uint8_t* src, int w, int row0, const Taps& t, int out_h, uint8_t* dst) {
  const int row_len = w * 3;
  using Acc = std::conditional_t<kFixed, int32_t, double>;
#pragma omp parallel if (int64_t(out_h) * w > kParallelMin)
  {
    std::vector<Acc> acc(row_len);
#pragma omp for schedule(static)
    for (int y = 0; y < out_h; ++y) {
      const int lo = t.start[y] - row0, n = t.count[y];
      const size_t kofs = size_t(y) * t.ksize;
      std::fill(acc.begin(), acc.end(), kFixed ? Acc(1 << (kPrecisionBits - 1)) : Acc(0));
      for (int i = 0; i < n; ++i) {
        const uint8_t* s = src + size_t(lo + i) * row_len;
        const Acc k = kFixed ? Acc(t.wq[kofs + i]) : Acc(t.w[kofs + i]);
        Acc* a = acc.data();
        for (int c = 0; c < row_len; ++c) a[c] += Acc(s[c]) * k;
      }
      uint8_t* d = dst + size_t(y) * row_len;
      for (int c = 0; c < row_len; ++c) {
        if constexpr (kFixed) d[c] = clip8_fixed(acc[c]);
        else d[c] = clip8_double(acc[c]);
      }
    }
  }
}

// Pillow's ImagingResampleInner for RGB: horizontal pass over only the source
// rows the vertical pass reads, then the vertical pass; an axis whose size is
// unchanged is skipped.
template <bool kFixed>
Image resize_impl(const Image& in, int out_w, int out_h) {
  QVL_CHECK(out_w > 0 && out_h > 0, "resize: bad target size %dx%d", out_w, out_h);
  QVL_CHECK(in.width > 0 && in.height > 0 &&
                in.rgb.size() == size_t(in.width) * in.height * 3,
            "resize: bad input image %dx%d (%zu bytes)", in.width, in.height, in.rgb.size());
  const bool need_h = out_w != in.width, need_v = out_h != in.height;
  if (!need_h && !need_v) return in;
  Taps tv = make_taps(in.height, out_h);
  const int row_first = tv.start[0];
  const int row_last = tv.start[out_h - 1] + tv.count[out_h - 1];

  Image tmp;  // horizontal result: rows [row_first, row_last) of the source
  const uint8_t* vsrc = in.rgb.data();
  int vsrc_w = in.width, vrow0 = 0;
  if (need_h) {
    Taps th = make_taps(in.width, out_w);
    tmp.width = out_w;
    tmp.height = row_last - row_first;
    tmp.rgb.resize(size_t(tmp.width) * tmp.height * 3);
    resample_rows<kFixed>(in.rgb.data(), in.width, row_first, tmp.height, th, out_w,
                          tmp.rgb.data());
    if (!need_v) return tmp;
    vsrc = tmp.rgb.data();
    vsrc_w = out_w;
    vrow0 = row_first;
  }
  Image out;
  out.width = vsrc_w;
  out.height = out_h;
  out.rgb.resize(size_t(out.width) * out_h * 3);
  resample_cols<kFixed>(vsrc, vsrc_w, vrow0, tv, out_h, out.rgb.data());
  return out;
}

}  // namespace

Image resize_bicubic(const Image& in, int out_w, int out_h) {
  return resize_impl<true>(in, out_w, out_h);
}

Image resize_bicubic_ref(const Image& in, int out_w, int out_h) {
  return resize_impl<false>(in, out_w, out_h);
}

std::pair<int, int> smart_resize(int height, int width, int factor, int64_t min_pixels,
                                 int64_t max_pixels) {
  QVL_CHECK(height > 0 && width > 0, "smart_resize: image size %dx%d is not positive", width,
            height);
  QVL_CHECK(factor > 0 && min_pixels > 0 && max_pixels >= min_pixels,
            "smart_resize: bad factor %d / min_pixels %lld / max_pixels %lld", factor,
            (long long)min_pixels, (long long)max_pixels);
  const double aspect = double(std::max(height, width)) / double(std::min(height, width));
  QVL_CHECK(!(aspect > kMaxAspectRatio),
            "smart_resize: absolute aspect ratio must be at most %.0f, got %dx%d (%.1f)",
            kMaxAspectRatio, width, height, aspect);
  const int64_t F = factor;
  // Python round() on a float: round half to even (nearbyint, default mode).
  int64_t h_bar = int64_t(std::nearbyint(double(height) / double(F))) * F;
  int64_t w_bar = int64_t(std::nearbyint(double(width) / double(F))) * F;
  const double area = double(int64_t(height) * width);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(area / double(max_pixels));
    h_bar = std::max(F, int64_t(std::floor(double(height) / beta / double(F))) * F);
    w_bar = std::max(F, int64_t(std::floor(double(width) / beta / double(F))) * F);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(double(min_pixels) / area);
    h_bar = int64_t(std::ceil(double(height) * beta / double(F))) * F;
    w_bar = int64_t(std::ceil(double(width) * beta / double(F))) * F;
  }
  QVL_CHECK(h_bar <= kMaxImageSide * 4 && w_bar <= kMaxImageSide * 4,
            "smart_resize: target %lldx%lld is too large", (long long)w_bar, (long long)h_bar);
  return {int(h_bar), int(w_bar)};
}

PreprocessedImage patchify_image(const Image& img, const PreprocessorConfig& cfg,
                                 bool single_frame) {
  const int P = cfg.patch, m = cfg.merge, T = single_frame ? 1 : cfg.temporal_patch;
  QVL_CHECK(P > 0 && m > 0 && cfg.temporal_patch > 0,
            "preprocessor config: bad patch %d / merge %d / temporal %d", P, m, cfg.temporal_patch);
  QVL_CHECK(img.width % (P * m) == 0 && img.height % (P * m) == 0,
            "patchify: image %dx%d is not a multiple of patch*merge = %d", img.width, img.height,
            P * m);
  for (int c = 0; c < 3; ++c)
    QVL_CHECK(cfg.std[c] != 0.0f, "preprocessor config: image_std[%d] is zero", c);
  // HF: float32(float64(x) * rescale_factor); the config value is the Python
  // float 1/255, which qvl's float field only approximates.
  double rescale = cfg.rescale;
  if (std::fabs(rescale * 255.0 - 1.0) < 1e-6) rescale = 1.0 / 255.0;
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      float x = float(double(v) * rescale);
      lut[c][v] = (x - cfg.mean[c]) / cfg.std[c];
    }

  PreprocessedImage out;
  out.grid = {1, img.height / P, img.width / P};
  out.resized_w = img.width;
  out.resized_h = img.height;
  out.row_len = 3 * T * P * P;
  const int W2 = out.grid.w / m, H2 = out.grid.h / m;
  const int64_t rows = out.rows();
  out.pixels.resize(size_t(rows) * out.row_len);
  const int W = img.width;
  const uint8_t* rgb = img.rgb.data();
#pragma omp parallel for schedule(static) if (rows * P * P > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int iw = int(r % m), ih = int(r / m % m);
    const int bw = int(r / (m * m) % W2), bh = int(r / (int64_t(m) * m * W2) % H2);
    const int y0 = (bh * m + ih) * P, x0 = (bw * m + iw) * P;
    float* row = out.pixels.data() + size_t(r) * out.row_len;
    for (int c = 0; c < 3; ++c) {
      float* plane = row + size_t(c) * T * P * P;
      for (int y = 0; y < P; ++y) {
        const uint8_t* src = rgb + (size_t(y0 + y) * W + x0) * 3 + c;
        float* dst = plane + y * P;
        for (int x = 0; x < P; ++x) dst[x] = lut[c][src[3 * x]];
      }
      // Images are one frame, duplicated to fill the temporal patch.
      for (int tt = 1; tt < T; ++tt)
        std::memcpy(plane + size_t(tt) * P * P, plane, sizeof(float) * P * P);
    }
  }
  return out;
}

PreprocessedImage preprocess_image(const Image& img, const PreprocessorConfig& cfg,
                                   bool single_frame) {
  QVL_CHECK(cfg.patch > 0 && cfg.merge > 0, "preprocessor config: bad patch %d / merge %d",
            cfg.patch, cfg.merge);
  auto [h, w] = smart_resize(img.height, img.width, cfg.patch * cfg.merge, cfg.min_pixels,
                             cfg.max_pixels);
  if (h == img.height && w == img.width) return patchify_image(img, cfg, single_frame);
  return patchify_image(resize_bicubic(img, w, h), cfg, single_frame);
}

}  // namespace qvl
