// Rotary position embeddings, "rotate_half" (NeoX) pairing: channel i pairs with
// i + D/2 in a head of D channels. One apply kernel serves text MRoPE and the
// 2-D vision rope; only the per-token angle tables differ.
//
// Per token t the table holds D/2 angles a[t][j]; apply does, for every head:
//   x'[j]       = x[j]·cos a_j − x[j+D/2]·sin a_j
//   x'[j+D/2]   = x[j+D/2]·cos a_j + x[j]·sin a_j          (j < D/2)
//
// Text MRoPE (Qwen3-VL, interleaved, mrope_section [s_t, s_h, s_w], D/2 = s_t+s_h+s_w):
//   inv[j] = θ^(−2j/D);  a[t][j] = p_axis(j)[t] · inv[j]
//   axis(j):  j = 0 1 2 3 4 5 ...     3s_h−1 | ... D/2−1
//             T H W T H W ... (H,W while j < 3·s_h) | T T T T   (s_h == s_w)
//   e.g. section [24,20,20]: THWTHW…THW (60 ch) then TTTT.
// Sectioned MRoPE (Qwen2.5-VL): j < s_t → T, < s_t+s_h → H, else W.
// Vision 2-D (head dim Dv, base 10000): inv[j] = 10000^(−2j/(Dv/2)), j < Dv/4;
//   a[t] = [row·inv[0..Dv/4), col·inv[0..Dv/4)]   (length Dv/2).
#pragma once
#include <cstdint>

namespace qvl {

// cos/sin tables [S, D/2] for 3-D positions pos[3][S] (rows T, H, W; pos[a*S + t]).
void mrope_tables(const int64_t* pos, int64_t S, int D, double theta, const int* section,
                  bool interleaved, float* cos_out, float* sin_out);

// cos/sin tables [N, Dv/2] from per-patch (row, col) coordinates.
void vision_rope_tables(const int32_t* rows, const int32_t* cols, int64_t N, int Dv,
                        float* cos_out, float* sin_out);

// Apply to x laid out [S, heads, D] with row stride `stride` floats between
// tokens (heads·D when packed). In place.
void rope_apply(float* x, int64_t S, int heads, int D, int64_t stride, const float* cos,
                const float* sin);
void rope_apply_ref(float* x, int64_t S, int heads, int D, int64_t stride, const float* cos,
                    const float* sin);

}  // namespace qvl
