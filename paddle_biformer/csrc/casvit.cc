// CAS-ViT's building blocks as fused CPU kernels on channels-last (NHWC) float32 tensors.
//
// CAS-ViT is depthwise 3x3 and 1x1 convolutions, BatchNorm, GELU/ReLU and sigmoid gates. The 1x1
// convolutions are matrix products (Paddle's matmul, outside these kernels); everything between
// two products is one kernel here, with a backward kernel that recomputes what is cheap instead
// of keeping it:
//
//   bn_act:    BatchNorm (batch or running statistics) [+ ReLU]
//   bndw_act:  BatchNorm -> depthwise conv + bias -> GELU/ReLU/none  (LocalIntegration's middle;
//              keeps the activation's derivative)
//   bias_act:  + bias -> GELU/ReLU  (the MLP's hidden layer; keeps the activation's derivative)
//   catm:      everything of AdditiveTokenMixer after its qkv product: the spatial and channel
//              gates of q and k (dwconv, BatchNorm, ReLU, 1x1 to one channel, sigmoid; average
//              pool, 1x1, sigmoid), their sum, dwc, the product with v and proj.
//
// Training-mode BatchNorm normalises with the batch mean and biased variance and updates the
// running statistics in place as PyTorch does (momentum m: r = (1 - m) r + m s, the running
// variance with the unbiased variance). Reductions are accumulated in double per thread and
// combined in thread order, so results do not depend on scheduling.
//
// Every weight is taken and every weight gradient returned in the official (PyTorch/Paddle
// Conv2D) layout: depthwise (C, 1, k, k), 1x1 (Cout, Cin, 1, 1). Depthwise convolutions have
// stride 1, an odd kernel k and padding k / 2 (CAS-ViT: k = 3).
#pragma GCC optimize("no-trapping-math")  // lets GCC vectorise the selects below; same results

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "erfc.h"
#include "paddle/extension.h"

namespace {

using i64 = int64_t;

// ------------------------------------------------------------------------------- math
// exp(x) to ~1e-7 relative: Cody-Waite reduction to |r| <= ln2/2 and a degree-7 Taylor
// polynomial; pure arithmetic, so loops of it vectorise.
inline float FastExp(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &e, sizeof(s));
  return p * s;
}

// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, with the Chebyshev-fitted erfc of
// Numerical Recipes (erfcc: fractional error < 1.2e-7 everywhere).
inline float NormCdf(float x) {
  const float a = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * a);
  const float p = paddle_biformer::ErfccExponent(t);
  const float q = 0.5f * t * FastExp(p - a * a);
  return x >= 0.0f ? 1.0f - q : q;
}

inline float Sigmoid(float x) { return 1.0f / (1.0f + FastExp(-x)); }

enum Act { kNone = 0, kRelu = 1, kGelu = 2 };

// y = act(z) in place over n values
void ActForward(float* z, i64 n, int act) {
  if (act == kRelu) {
#pragma omp simd
    for (i64 i = 0; i < n; ++i) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
  } else if (act == kGelu) {
#pragma omp simd
    for (i64 i = 0; i < n; ++i) z[i] = z[i] * NormCdf(z[i]);
  }
}

// g[i] *= act'(z[i]) (GELU: Phi(z) + z phi(z))
void ActBackward(const float* z, float* g, i64 n, int act) {
  if (act == kRelu) {
#pragma omp simd
    for (i64 i = 0; i < n; ++i) g[i] = z[i] > 0.0f ? g[i] : 0.0f;
  } else if (act == kGelu) {
#pragma omp simd
    for (i64 i = 0; i < n; ++i) {
      const float v = z[i];
      const float pdf = 0.39894228040143268f * FastExp(-0.5f * v * v);
      g[i] *= NormCdf(v) + v * pdf;
    }
  }
}

// y = act(z) in place, d = act'(z) (Phi and phi computed once for GELU)
void ActForwardDeriv(float* z, float* d, i64 n, int act) {
  if (act == kGelu) {
#pragma omp simd
    for (i64 i = 0; i < n; ++i) {
      const float v = z[i];
      const float cdf = NormCdf(v);
      d[i] = cdf + v * 0.39894228040143268f * FastExp(-0.5f * v * v);
      z[i] = v * cdf;
    }
  } else {
    std::fill(d, d + n, 1.0f);
    ActBackward(z, d, n, act);
    ActForward(z, n, act);
  }
}

// ------------------------------------------------------------------------------- shapes
struct Map {
  i64 n, h, w, c;  // NHWC
  i64 m() const { return n * h * w; }
  i64 rows() const { return n * h; }
};

Map MapOf(const paddle::Tensor& x, i64 c, const char* what) {
  const auto s = x.shape();
  PD_CHECK(s.size() == 4, what, ": expected an NHWC (4-D) tensor");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, what, ": expected float32");
  return Map{s[0], s[1], s[2], c > 0 ? c : s[3]};
}

template <typename T>
const T* In(const paddle::Tensor& t) {
  return t.data<T>();
}

float* Out(paddle::Tensor& t) { return t.data<float>(); }

// running statistics are updated in place, as BatchNorm does
float* Mutable(const paddle::Tensor& t) { return const_cast<float*>(t.data<float>()); }

// Depthwise weight (C, 1, k, k) -> taps (k * k, C)
std::vector<float> DwTaps(const paddle::Tensor& w, i64 c) {
  const auto s = w.shape();
  PD_CHECK(s.size() == 4 && s[0] == c && s[1] == 1 && s[2] == s[3] && s[2] % 2 == 1,
           "depthwise weight must be (C, 1, k, k) with odd k");
  const i64 kk = s[2] * s[3];
  const float* wd = w.data<float>();
  std::vector<float> taps(kk * c);
  for (i64 ch = 0; ch < c; ++ch)
    for (i64 t = 0; t < kk; ++t) taps[t * c + ch] = wd[ch * kk + t];
  return taps;
}

int KernelOf(const paddle::Tensor& w) { return static_cast<int>(w.shape()[2]); }

// taps (k * k, C) (summed over threads) -> (C, 1, k, k)
void StoreTaps(const double* acc, i64 c, int k, float* out) {
  const i64 kk = static_cast<i64>(k) * k;
  for (i64 ch = 0; ch < c; ++ch)
    for (i64 t = 0; t < kk; ++t) out[ch * kk + t] = static_cast<float>(acc[t * c + ch]);
}

// Per-thread double accumulators, combined in thread order.
struct Accum {
  i64 size;
  int threads;
  std::vector<double> data;
  Accum(i64 n, int t) : size(n), threads(t), data(static_cast<size_t>(n) * t, 0.0) {}
  double* of(int t) { return data.data() + static_cast<size_t>(t) * size; }
  std::vector<double> total() const {
    std::vector<double> out(size, 0.0);
    for (int t = 0; t < threads; ++t)
      for (i64 i = 0; i < size; ++i) out[i] += data[static_cast<size_t>(t) * size + i];
    return out;
  }
};

// ------------------------------------------------------------------------------- depthwise rows
// Blocks of 16 and 8 channels in registers (GCC/Clang vector extension), the last C % 8
// channels one at a time. 3x3 kernels (all of CAS-ViT's) accumulate every tap of a pixel
// in a register before one store; other kernels take the generic loops.
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

template <typename V>
inline V Ld(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V>
inline void St(float* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

template <typename V>
constexpr i64 Lanes() {
  return sizeof(V) / sizeof(float);
}

template <typename V>
inline float Lane(const V& v, int l) {
  if constexpr (sizeof(V) == sizeof(float)) {
    return v;
  } else {
    return v[l];
  }
}

// 3x3 forward of channels [c0, c1): out[x] = b + sum_{i,j} src[i][x + j - 1] w[i, j]
template <typename V>
void Dw3Forward(const float* const* src, i64 ss, const float* taps, const float* b, float* out, i64 os,
                i64 W, i64 C, i64 c0, i64 c1) {
  for (i64 c = c0; c + Lanes<V>() <= c1; c += Lanes<V>()) {
    V w[9];
    for (int t = 0; t < 9; ++t) w[t] = Ld<V>(taps + t * C + c);
    const V bias = b ? Ld<V>(b + c) : V{};
    for (i64 x = 0; x < W; ++x) {
      V acc = bias;
      const bool l = x > 0, r = x + 1 < W;
      for (int i = 0; i < 3; ++i) {
        if (!src[i]) continue;
        const float* q = src[i] + x * ss + c;
        if (l) acc += Ld<V>(q - ss) * w[3 * i];
        acc += Ld<V>(q) * w[3 * i + 1];
        if (r) acc += Ld<V>(q + ss) * w[3 * i + 2];
      }
      St<V>(out + x * os + c, acc);
    }
  }
}

// 3x3 input gradient of channels [c0, c1): dst[x] (+)= sum_{i,j} g[i][x - j + 1] w[i, j], g[i] the
// output-gradient row h - i + 1
template <typename V>
void Dw3InputGrad(const float* const* g, i64 gs, const float* taps, float* dst, i64 ds, i64 W, i64 C,
                  bool accumulate, i64 c0, i64 c1) {
  for (i64 c = c0; c + Lanes<V>() <= c1; c += Lanes<V>()) {
    V w[9];
    for (int t = 0; t < 9; ++t) w[t] = Ld<V>(taps + t * C + c);
    for (i64 x = 0; x < W; ++x) {
      V acc = accumulate ? Ld<V>(dst + x * ds + c) : V{};
      const bool l = x > 0, r = x + 1 < W;
      for (int i = 0; i < 3; ++i) {
        if (!g[i]) continue;
        const float* q = g[i] + x * gs + c;
        if (r) acc += Ld<V>(q + gs) * w[3 * i];
        acc += Ld<V>(q) * w[3 * i + 1];
        if (l) acc += Ld<V>(q - gs) * w[3 * i + 2];
      }
      St<V>(dst + x * ds + c, acc);
    }
  }
}

// 3x3 weight and bias gradients of channels [c0, c1) for one output row (sums over the row in
// float, then into the double accumulators)
template <typename V>
void Dw3ParamGrad(const float* const* src, i64 ss, const float* g, i64 gs, double* acc_w, double* acc_b,
                  i64 W, i64 C, i64 c0, i64 c1) {
  for (i64 c = c0; c + Lanes<V>() <= c1; c += Lanes<V>()) {
    V aw[9], ab{};
    for (int t = 0; t < 9; ++t) aw[t] = V{};
    for (i64 x = 0; x < W; ++x) {
      const V gv = Ld<V>(g + x * gs + c);
      ab += gv;
      const bool l = x > 0, r = x + 1 < W;
      for (int i = 0; i < 3; ++i) {
        if (!src[i]) continue;
        const float* q = src[i] + x * ss + c;
        if (l) aw[3 * i] += gv * Ld<V>(q - ss);
        aw[3 * i + 1] += gv * Ld<V>(q);
        if (r) aw[3 * i + 2] += gv * Ld<V>(q + ss);
      }
    }
    for (int l = 0; l < static_cast<int>(Lanes<V>()); ++l) {
      for (int t = 0; t < 9; ++t) acc_w[t * C + c + l] += Lane(aw[t], l);
      if (acc_b) acc_b[c + l] += Lane(ab, l);
    }
  }
}

inline i64 Blocked(i64 C, i64 lanes) { return C - C % lanes; }

// out[x, :] = b + sum_{i,j} src[i][x + j - p, :] * taps[i k + j, :], x < W; src[i] is the input
// row h + i - p (nullptr outside the image); pixel strides ss (input), os (output).
void DwRowForward(const float* const* src, i64 ss, const float* taps, const float* b, float* out,
                  i64 os, i64 W, i64 C, int k) {
  if (k == 3) {
    Dw3Forward<v16>(src, ss, taps, b, out, os, W, C, 0, Blocked(C, 16));
    Dw3Forward<v8>(src, ss, taps, b, out, os, W, C, Blocked(C, 16), Blocked(C, 8));
    Dw3Forward<float>(src, ss, taps, b, out, os, W, C, Blocked(C, 8), C);
    return;
  }
  const int p = k / 2;
  for (i64 x = 0; x < W; ++x) {
    float* o = out + x * os;
    if (b) {
      std::copy(b, b + C, o);
    } else {
      std::fill(o, o + C, 0.0f);
    }
  }
  for (int i = 0; i < k; ++i) {
    const float* s = src[i];
    if (!s) continue;
    for (int j = 0; j < k; ++j) {
      const float* wk = taps + (i * k + j) * C;
      const i64 lo = std::max<i64>(0, p - j), hi = std::min<i64>(W, W + p - j);
      for (i64 x = lo; x < hi; ++x) {
        const float* sp = s + (x + j - p) * ss;
        float* o = out + x * os;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) o[c] += sp[c] * wk[c];
      }
    }
  }
}

// Input gradient of row h: dst[x, :] (= or +=) sum_{i,j} g[i][x - j + p, :] * taps[i k + j, :],
// g[i] the output-gradient row h - i + p (nullptr outside).
void DwRowInputGrad(const float* const* g, i64 gs, const float* taps, float* dst, i64 ds, i64 W,
                    i64 C, int k, bool accumulate) {
  if (k == 3) {
    Dw3InputGrad<v16>(g, gs, taps, dst, ds, W, C, accumulate, 0, Blocked(C, 16));
    Dw3InputGrad<v8>(g, gs, taps, dst, ds, W, C, accumulate, Blocked(C, 16), Blocked(C, 8));
    Dw3InputGrad<float>(g, gs, taps, dst, ds, W, C, accumulate, Blocked(C, 8), C);
    return;
  }
  const int p = k / 2;
  if (!accumulate)
    for (i64 x = 0; x < W; ++x) std::fill(dst + x * ds, dst + x * ds + C, 0.0f);
  for (int i = 0; i < k; ++i) {
    const float* gr = g[i];
    if (!gr) continue;
    for (int j = 0; j < k; ++j) {
      const float* wk = taps + (i * k + j) * C;
      const i64 lo = std::max<i64>(0, j - p), hi = std::min<i64>(W, W + j - p);
      for (i64 x = lo; x < hi; ++x) {
        const float* gp = gr + (x - j + p) * gs;
        float* d = dst + x * ds;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) d[c] += gp[c] * wk[c];
      }
    }
  }
}

// Weight and bias gradients of output row h: acc_w[i k + j, :] += sum_x g[x, :] src[i][x + j - p, :],
// acc_b += sum_x g[x, :] (acc_b may be null).
void DwRowParamGrad(const float* const* src, i64 ss, const float* g, i64 gs, double* acc_w,
                    double* acc_b, i64 W, i64 C, int k) {
  if (k == 3) {
    Dw3ParamGrad<v16>(src, ss, g, gs, acc_w, acc_b, W, C, 0, Blocked(C, 16));
    Dw3ParamGrad<v8>(src, ss, g, gs, acc_w, acc_b, W, C, Blocked(C, 16), Blocked(C, 8));
    Dw3ParamGrad<float>(src, ss, g, gs, acc_w, acc_b, W, C, Blocked(C, 8), C);
    return;
  }
  const int p = k / 2;
  if (acc_b) {
    for (i64 x = 0; x < W; ++x) {
      const float* gp = g + x * gs;
#pragma omp simd
      for (i64 c = 0; c < C; ++c) acc_b[c] += gp[c];
    }
  }
  for (int i = 0; i < k; ++i) {
    const float* s = src[i];
    if (!s) continue;
    for (int j = 0; j < k; ++j) {
      double* aw = acc_w + (i * k + j) * C;
      const i64 lo = std::max<i64>(0, p - j), hi = std::min<i64>(W, W + p - j);
      for (i64 x = lo; x < hi; ++x) {
        const float* sp = s + (x + j - p) * ss;
        const float* gp = g + x * gs;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) aw[c] += static_cast<double>(gp[c] * sp[c]);
      }
    }
  }
}

// Pointers to the k input rows around row h of image n (nullptr outside), pixel stride ps,
// row length W * ps.
void RowsAround(const float* base, const Map& s, i64 ps, i64 n, i64 h, int k, const float** rows) {
  const int p = k / 2;
  for (int i = 0; i < k; ++i) {
    const i64 hh = h + i - p;
    rows[i] = (hh < 0 || hh >= s.h) ? nullptr : base + ((n * s.h + hh) * s.w) * ps;
  }
}

// Output-gradient rows used by the input gradient of row h: h - i + p for tap row i
void GradRowsFor(const float* base, const Map& s, i64 ps, i64 n, i64 h, int k, const float** rows) {
  const int p = k / 2;
  for (int i = 0; i < k; ++i) {
    const i64 hh = h - i + p;
    rows[i] = (hh < 0 || hh >= s.h) ? nullptr : base + ((n * s.h + hh) * s.w) * ps;
  }
}

// ------------------------------------------------------------------------------- BatchNorm
struct BnStats {
  std::vector<float> mean, rstd;  // what normalises (batch or running statistics)
};

// Batch mean and biased variance of x (M rows, pixel stride ps, C channels): sums of x - x[0] in
// double (the shift keeps E[d^2] - E[d]^2 well conditioned; training-mode BatchNorm gradients
// over few values are sensitive to these statistics).
void Moments(const float* x, i64 M, i64 C, i64 ps, int threads, std::vector<double>* mean,
             std::vector<double>* var) {
  Accum acc(2 * C, threads);
  const float* shift = x;
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.of(omp_get_thread_num());
    double* sq = a + C;
#pragma omp for schedule(static)
    for (i64 m = 0; m < M; ++m) {
      const float* xp = x + m * ps;
#pragma omp simd
      for (i64 c = 0; c < C; ++c) {
        const double d = static_cast<double>(xp[c]) - shift[c];
        a[c] += d;
        sq[c] += d * d;
      }
    }
  }
  const auto tot = acc.total();
  mean->assign(C, 0.0);
  var->assign(C, 0.0);
  for (i64 c = 0; c < C; ++c) {
    const double d = tot[c] / M;
    (*mean)[c] = shift[c] + d;
    (*var)[c] = std::max(0.0, tot[C + c] / M - d * d);
  }
}

// The statistics that normalise x: the batch's (training; running statistics updated in place
// as PyTorch does) or the running ones.
BnStats Normalizer(const float* x, i64 M, i64 C, i64 ps, const paddle::Tensor& rmean,
                   const paddle::Tensor& rvar, bool training, float momentum, float eps, int threads,
                   const float* pre_bias = nullptr) {
  // BatchNorm of x + pre_bias (a convolution's bias, added here instead of by a pass of its
  // own): the returned mean is in x's space, the running mean in x + pre_bias's
  BnStats st;
  st.mean.resize(C);
  st.rstd.resize(C);
  float* rm = Mutable(rmean);
  float* rv = Mutable(rvar);
  if (training) {
    std::vector<double> mean, var;
    Moments(x, M, C, ps, threads, &mean, &var);
    const double unbias = M > 1 ? static_cast<double>(M) / (M - 1) : 1.0;
    for (i64 c = 0; c < C; ++c) {
      const double pb = pre_bias ? pre_bias[c] : 0.0;
      st.mean[c] = static_cast<float>(mean[c]);
      st.rstd[c] = static_cast<float>(1.0 / std::sqrt(var[c] + eps));
      rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * (mean[c] + pb));
      rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * var[c] * unbias);
    }
  } else {
    for (i64 c = 0; c < C; ++c) {
      st.mean[c] = pre_bias ? static_cast<float>(static_cast<double>(rm[c]) - pre_bias[c]) : rm[c];
      st.rstd[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[c]) + eps));
    }
  }
  return st;
}

// y[c] = (x[c] - mean[c]) * scale[c] + beta[c] over one pixel
inline void Affine(const float* x, const float* mean, const float* scale, const float* beta, float* y,
                   i64 C) {
#pragma omp simd
  for (i64 c = 0; c < C; ++c) y[c] = (x[c] - mean[c]) * scale[c] + beta[c];
}

std::vector<float> Scale(const float* gamma, const std::vector<float>& rstd) {
  std::vector<float> s(rstd.size());
  for (size_t c = 0; c < s.size(); ++c) s[c] = gamma[c] * rstd[c];
  return s;
}

paddle::Tensor Vec(const std::vector<float>& v, const paddle::Place& place) {
  auto t = paddle::empty({static_cast<i64>(v.size())}, paddle::DataType::FLOAT32, place);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// dx = gamma rstd (gy - sum(gy) / M - xhat sum(gy xhat) / M) (training) or gamma rstd gy, in place
// over gy (M rows, stride ps); sums: [sum gy | sum gy xhat] per channel.
void BnInputGrad(float* gy, i64 ps, const float* x, i64 xs, i64 M, i64 C, const float* gamma,
                 const float* mean, const float* rstd, const std::vector<double>& sums,
                 bool training, int threads, float* colsum = nullptr) {
  // colsum (optional): the column sums of the result (the gradient of a bias added before)
  std::vector<float> a(C), b(C), mu(C);
  for (i64 c = 0; c < C; ++c) {
    const double s = static_cast<double>(gamma[c]) * rstd[c];
    a[c] = static_cast<float>(s);
    // gamma rstd (gy - mean_gy - (x - mean) rstd mean_gyxhat) = a gy + b (x - mean) + d
    b[c] = training ? static_cast<float>(-s * rstd[c] * sums[C + c] / M) : 0.0f;
    mu[c] = training ? static_cast<float>(-s * sums[c] / M) : 0.0f;
  }
  Accum acc(colsum ? C : 0, threads);
#pragma omp parallel num_threads(threads)
  {
    double* cs = colsum ? acc.of(omp_get_thread_num()) : nullptr;
#pragma omp for schedule(static)
    for (i64 m = 0; m < M; ++m) {
      float* g = gy + m * ps;
      const float* xp = x + m * xs;
#pragma omp simd
      for (i64 c = 0; c < C; ++c) g[c] = a[c] * g[c] + b[c] * (xp[c] - mean[c]) + mu[c];
      if (cs) {
#pragma omp simd
        for (i64 c = 0; c < C; ++c) cs[c] += g[c];
      }
    }
  }
  if (colsum) {
    const auto tot = acc.total();
    for (i64 c = 0; c < C; ++c) colsum[c] = static_cast<float>(tot[c]);
  }
}

// An optional tensor (numel 0: absent)
const float* Opt(const paddle::Tensor& t) { return t.numel() > 0 ? t.data<float>() : nullptr; }

}  // namespace

// =============================================================================== bn_act
std::vector<paddle::Tensor> BnActForward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                         const paddle::Tensor& beta, const paddle::Tensor& rmean,
                                         const paddle::Tensor& rvar, bool training, float momentum,
                                         float eps, bool relu, int threads) {
  const Map s = MapOf(x, 0, "bn_act");
  const i64 M = s.m(), C = s.c;
  const BnStats st = Normalizer(In<float>(x), M, C, C, rmean, rvar, training, momentum, eps, threads);
  const auto scale = Scale(In<float>(gamma), st.rstd);
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xd = In<float>(x);
  const float* bd = In<float>(beta);
  float* yd = Out(y);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 m = 0; m < M; ++m) {
    Affine(xd + m * C, st.mean.data(), scale.data(), bd, yd + m * C, C);
    if (relu) ActForward(yd + m * C, C, kRelu);
  }
  return {y, Vec(st.mean, x.place()), Vec(st.rstd, x.place())};
}

std::vector<paddle::Tensor> BnActBackward(const paddle::Tensor& x, const paddle::Tensor& grad,
                                          const paddle::Tensor& gamma, const paddle::Tensor& beta,
                                          const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                          bool training, bool relu, int threads) {
  const Map s = MapOf(x, 0, "bn_act_grad");
  const i64 M = s.m(), C = s.c;
  const float* xd = In<float>(x);
  const float* md = In<float>(mean);
  const float* rd = In<float>(rstd);
  const float* gd = In<float>(gamma);
  const float* bd = In<float>(beta);
  const auto scale = Scale(gd, std::vector<float>(rd, rd + C));
  auto gx = paddle::empty(x.shape(), x.dtype(), x.place());
  float* gxd = Out(gx);
  std::copy(In<float>(grad), In<float>(grad) + M * C, gxd);
  Accum acc(2 * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.of(omp_get_thread_num());
    std::vector<float> y(C);
#pragma omp for schedule(static)
    for (i64 m = 0; m < M; ++m) {
      float* g = gxd + m * C;
      const float* xp = xd + m * C;
      if (relu) {
        Affine(xp, md, scale.data(), bd, y.data(), C);
        ActBackward(y.data(), g, C, kRelu);
      }
#pragma omp simd
      for (i64 c = 0; c < C; ++c) {
        a[c] += g[c];
        a[C + c] += static_cast<double>(g[c] * ((xp[c] - md[c]) * rd[c]));
      }
    }
  }
  const auto sums = acc.total();
  BnInputGrad(gxd, C, xd, C, M, C, gd, md, rd, sums, training, threads);
  auto ggamma = paddle::empty({C}, x.dtype(), x.place());
  auto gbeta = paddle::empty({C}, x.dtype(), x.place());
  for (i64 c = 0; c < C; ++c) {
    Out(ggamma)[c] = static_cast<float>(sums[C + c]);
    Out(gbeta)[c] = static_cast<float>(sums[c]);
  }
  return {gx, ggamma, gbeta};
}

// =============================================================================== bndw_act
// y = act(dwconv(BN(a)) + b): LocalIntegration's BatchNorm, depthwise conv and activation.
namespace {

// The k BatchNorm-ed input rows around row h into buf (k * W * C), pointers in rows (nullptr
// outside the image).
void NormedRows(const float* a, const Map& s, i64 n, i64 h, int k, const float* mean,
                const float* scale, const float* beta, float* buf, const float** rows) {
  const float* raw[16];
  RowsAround(a, s, s.c, n, h, k, raw);
  for (int i = 0; i < k; ++i) {
    if (!raw[i]) {
      rows[i] = nullptr;
      continue;
    }
    float* dst = buf + i * s.w * s.c;
    for (i64 x = 0; x < s.w; ++x) Affine(raw[i] + x * s.c, mean, scale, beta, dst + x * s.c, s.c);
    rows[i] = dst;
  }
}

}  // namespace

std::vector<paddle::Tensor> BnDwActForward(const paddle::Tensor& a, const paddle::Tensor& pre_bias,
                                           const paddle::Tensor& gamma,
                                           const paddle::Tensor& beta, const paddle::Tensor& rmean,
                                           const paddle::Tensor& rvar, const paddle::Tensor& w,
                                           const paddle::Tensor& b, bool training, float momentum,
                                           float eps, int act, bool keep, int threads) {
  // keep: also return d = act'(z) (the backward's need, instead of recomputing z)
  const Map s = MapOf(a, 0, "bndw_act");
  const i64 C = s.c;
  const int k = KernelOf(w);
  PD_CHECK(k <= 15, "bndw_act: kernel too large");
  const auto taps = DwTaps(w, C);
  const BnStats st = Normalizer(In<float>(a), s.m(), C, C, rmean, rvar, training, momentum, eps, threads,
                                Opt(pre_bias));
  const auto scale = Scale(In<float>(gamma), st.rstd);
  auto y = paddle::empty(a.shape(), a.dtype(), a.place());
  auto d = paddle::empty(keep ? a.shape() : std::vector<int64_t>{0}, a.dtype(), a.place());
  const float* ad = In<float>(a);
  const float* betad = In<float>(beta);
  const float* bd = In<float>(b);
  float* yd = Out(y);
  float* dd = keep ? Out(d) : nullptr;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> buf(k * s.w * C);
    const float* rows[16];
#pragma omp for schedule(static)
    for (i64 r = 0; r < s.rows(); ++r) {
      NormedRows(ad, s, r / s.h, r % s.h, k, st.mean.data(), scale.data(), betad, buf.data(), rows);
      float* out = yd + r * s.w * C;
      DwRowForward(rows, C, taps.data(), bd, out, C, s.w, C, k);
      if (dd) {
        ActForwardDeriv(out, dd + r * s.w * C, s.w * C, act);
      } else {
        ActForward(out, s.w * C, act);
      }
    }
  }
  return {y, d, Vec(st.mean, a.place()), Vec(st.rstd, a.place())};
}

std::vector<paddle::Tensor> BnDwActBackward(const paddle::Tensor& a, const paddle::Tensor& pre_bias,
                                            const paddle::Tensor& deriv, const paddle::Tensor& grad,
                                            const paddle::Tensor& gamma, const paddle::Tensor& beta,
                                            const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                            const paddle::Tensor& w, const paddle::Tensor& b,
                                            bool training, int act, int threads) {
  const Map s = MapOf(a, 0, "bndw_act_grad");
  const i64 C = s.c, M = s.m(), W = s.w;
  const int k = KernelOf(w);
  const auto taps = DwTaps(w, C);
  const float* ad = In<float>(a);
  const float* md = In<float>(mean);
  const float* rd = In<float>(rstd);
  const float* gmd = In<float>(gamma);
  const float* betad = In<float>(beta);
  const float* bd = In<float>(b);
  const auto scale = Scale(gmd, std::vector<float>(rd, rd + C));
  // 1. gz = grad * act'(z) (kept by the forward pass)
  std::vector<float> gz(static_cast<size_t>(M) * C);
  const float* gd = In<float>(grad);
  const float* dd = In<float>(deriv);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 m = 0; m < M; ++m) {
    float* g = gz.data() + m * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) g[c] = gd[m * C + c] * dd[m * C + c];
  }
  // 2. gy = dwconv input gradient; weight/bias gradients; BatchNorm sums
  auto ga = paddle::empty(a.shape(), a.dtype(), a.place());
  float* gad = Out(ga);
  const i64 kkc = static_cast<i64>(k) * k * C;
  Accum acc(kkc + C + 2 * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* aw = acc.of(omp_get_thread_num());
    double* ab = aw + kkc;
    double* bn = ab + C;
    std::vector<float> buf(k * W * C);
    const float* rows[16];
    const float* grows[16];
#pragma omp for schedule(static)
    for (i64 r = 0; r < s.rows(); ++r) {
      const i64 n = r / s.h, h = r % s.h;
      NormedRows(ad, s, n, h, k, md, scale.data(), betad, buf.data(), rows);
      DwRowParamGrad(rows, C, gz.data() + r * W * C, C, aw, ab, W, C, k);
      GradRowsFor(gz.data(), s, C, n, h, k, grows);
      float* gy = gad + r * W * C;
      DwRowInputGrad(grows, C, taps.data(), gy, C, W, C, k, false);
      const float* ar = ad + r * W * C;
      for (i64 x = 0; x < W; ++x) {
        const float* g = gy + x * C;
        const float* xp = ar + x * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) {
          bn[c] += g[c];
          bn[C + c] += static_cast<double>(g[c] * ((xp[c] - md[c]) * rd[c]));
        }
      }
    }
  }
  const auto tot = acc.total();
  const std::vector<double> sums(tot.begin() + kkc + C, tot.end());
  auto gpb = paddle::empty({pre_bias.numel() > 0 ? C : 0}, a.dtype(), a.place());
  BnInputGrad(gad, C, ad, C, M, C, gmd, md, rd, sums, training, threads,
              pre_bias.numel() > 0 ? Out(gpb) : nullptr);
  auto gw = paddle::empty(w.shape(), w.dtype(), w.place());
  auto gb = paddle::empty({C}, a.dtype(), a.place());
  auto ggamma = paddle::empty({C}, a.dtype(), a.place());
  auto gbeta = paddle::empty({C}, a.dtype(), a.place());
  StoreTaps(tot.data(), C, k, Out(gw));
  for (i64 c = 0; c < C; ++c) {
    Out(gb)[c] = static_cast<float>(tot[kkc + c]);
    Out(gbeta)[c] = static_cast<float>(sums[c]);
    Out(ggamma)[c] = static_cast<float>(sums[C + c]);
  }
  return {ga, gpb, ggamma, gbeta, gw, gb};
}

// =============================================================================== bias_act
// y = act(z + b) over rows of C; with `keep` also d = act'(z + b), which is all the backward
// needs (gz = g d): computed here, where z + b is at hand, instead of recomputed there.
std::vector<paddle::Tensor> BiasActForward(const paddle::Tensor& z, const paddle::Tensor& b, int act,
                                           bool keep, int threads) {
  const i64 C = z.shape().back();
  const i64 M = z.numel() / C;
  auto y = paddle::empty(z.shape(), z.dtype(), z.place());
  auto d = paddle::empty(keep ? z.shape() : std::vector<int64_t>{0}, z.dtype(), z.place());
  const float* zd = In<float>(z);
  const float* bd = In<float>(b);
  float* yd = Out(y);
  float* dd = keep ? Out(d) : nullptr;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 m = 0; m < M; ++m) {
    float* o = yd + m * C;
    const float* zp = zd + m * C;
#pragma omp simd
    for (i64 c = 0; c < C; ++c) o[c] = zp[c] + bd[c];
    if (dd) {
      ActForwardDeriv(o, dd + m * C, C, act);
    } else {
      ActForward(o, C, act);
    }
  }
  return {y, d};
}

// gz = g d (d from the forward pass); gb = column sums of gz
std::vector<paddle::Tensor> BiasActBackward(const paddle::Tensor& d, const paddle::Tensor& grad, int threads) {
  const i64 C = d.shape().back();
  const i64 M = d.numel() / C;
  auto gz = paddle::empty(d.shape(), d.dtype(), d.place());
  const float* dd = In<float>(d);
  const float* gd = In<float>(grad);
  float* gzd = Out(gz);
  Accum acc(C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.of(omp_get_thread_num());
    std::vector<float> part(C, 0.0f);
    i64 rows = 0;
#pragma omp for schedule(static)
    for (i64 m = 0; m < M; ++m) {
      float* g = gzd + m * C;
      const float* gp = gd + m * C;
      const float* dp = dd + m * C;
      float* pt = part.data();
#pragma omp simd
      for (i64 c = 0; c < C; ++c) {
        g[c] = gp[c] * dp[c];
        pt[c] += g[c];
      }
      if (++rows == 64) {  // float partial sums over at most 64 rows, then double
        for (i64 c = 0; c < C; ++c) a[c] += part[c];
        std::fill(part.begin(), part.end(), 0.0f);
        rows = 0;
      }
    }
    for (i64 c = 0; c < C; ++c) a[c] += part[c];
  }
  const auto tot = acc.total();
  auto gb = paddle::empty({C}, d.dtype(), d.place());
  for (i64 c = 0; c < C; ++c) Out(gb)[c] = static_cast<float>(tot[c]);
  return {gz, gb};
}

// =============================================================================== bias_residual
// out = residual + scale[n] (z + b): a 1x1 convolution's bias, drop path's per-sample scale and
// the residual sum in one pass (residual, scale optional: numel 0). z: (N, H, W, C).
std::vector<paddle::Tensor> BiasResidualForward(const paddle::Tensor& z, const paddle::Tensor& b,
                                                const paddle::Tensor& res, const paddle::Tensor& scale,
                                                int threads) {
  const i64 C = z.shape().back(), M = z.numel() / C, per = M / std::max<i64>(1, z.shape()[0]);
  auto out = paddle::empty(z.shape(), z.dtype(), z.place());
  const float* zd = In<float>(z);
  const float* bd = In<float>(b);
  const float* rd = Opt(res);
  const float* sd = Opt(scale);
  float* od = Out(out);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 m = 0; m < M; ++m) {
    const float* zp = zd + m * C;
    float* o = od + m * C;
    const float k = sd ? sd[m / per] : 1.0f;
    if (rd) {
      const float* rp = rd + m * C;
#pragma omp simd
      for (i64 c = 0; c < C; ++c) o[c] = rp[c] + k * (zp[c] + bd[c]);
    } else {
#pragma omp simd
      for (i64 c = 0; c < C; ++c) o[c] = k * (zp[c] + bd[c]);
    }
  }
  return {out};
}

// gz = scale[n] g (g itself without scale: an empty tensor is returned), gb = column sums of gz
std::vector<paddle::Tensor> BiasResidualBackward(const paddle::Tensor& g, const paddle::Tensor& scale,
                                                 int threads) {
  const i64 C = g.shape().back(), M = g.numel() / C, per = M / std::max<i64>(1, g.shape()[0]);
  const float* sd = Opt(scale);
  auto gz = paddle::empty(sd ? g.shape() : std::vector<int64_t>{0}, g.dtype(), g.place());
  const float* gd = In<float>(g);
  float* gzd = sd ? Out(gz) : nullptr;
  Accum acc(C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.of(omp_get_thread_num());
#pragma omp for schedule(static)
    for (i64 m = 0; m < M; ++m) {
      const float* gp = gd + m * C;
      if (sd) {
        const float k = sd[m / per];
        float* o = gzd + m * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) {
          o[c] = k * gp[c];
          a[c] += o[c];
        }
      } else {
#pragma omp simd
        for (i64 c = 0; c < C; ++c) a[c] += gp[c];
      }
    }
  }
  const auto tot = acc.total();
  auto gb = paddle::empty({C}, g.dtype(), g.place());
  for (i64 c = 0; c < C; ++c) Out(gb)[c] = static_cast<float>(tot[c]);
  return {gz, gb};
}

// =============================================================================== catm
// AdditiveTokenMixer after its qkv product. qkv: (N, H, W, 3C) with q, k, v in channel blocks.
// For b in (q, k): s = dwconv_b(x_b) + bias; r = ReLU(BN_b(s)); g = sigmoid(r . ws_b) (one value
// per pixel); x1 = x_b g; pool = mean over the image of x1; ch = sigmoid(Wc_b pool);
// x2 = x1 ch. Then sum = q2 + k2; u = dwc(sum) + bias; out = proj(u * v) + bias.
//
// Memory traffic decides the speed, so rows are computed where they are used: each thread walks
// a contiguous range of rows and keeps the few rows a 3-row convolution window needs in small
// ring buffers (sum, u * v, the gradients), computing every row once; s is recomputed from q/k
// instead of being stored. The backward keeps qkv, sum and u (and per-pixel gates, per-image
// pools and channel gates) from the forward pass.
namespace {

struct Branch {  // the parameters of oper_q or oper_k
  std::vector<float> taps;  // dwconv (k*k, C)
  const float *dw_b, *gamma, *beta, *ws, *wc;
  const paddle::Tensor *rmean, *rvar;
  int k;
};

Branch BranchOf(const paddle::Tensor& dw_w, const paddle::Tensor& dw_b, const paddle::Tensor& gamma,
                const paddle::Tensor& beta, const paddle::Tensor& rmean, const paddle::Tensor& rvar,
                const paddle::Tensor& ws, const paddle::Tensor& wc, i64 C) {
  PD_CHECK(ws.numel() == C && wc.numel() == C * C, "catm: spatial (1, C, 1, 1) and channel (C, C, 1, 1) weights");
  return Branch{DwTaps(dw_w, C), In<float>(dw_b), In<float>(gamma), In<float>(beta), In<float>(ws),
                In<float>(wc), &rmean, &rvar, KernelOf(dw_w)};
}

// Rows [r0, r1) of R for the calling thread of an OpenMP team (contiguous blocks)
void ThreadRows(i64 R, i64* r0, i64* r1) {
  const i64 t = omp_get_thread_num(), n = omp_get_num_threads();
  *r0 = R * t / n;
  *r1 = R * (t + 1) / n;
}

// Rows computed on demand and kept in a ring of `Slots` buffers (row r in slot r % Slots): a
// 3-row window moving down the image computes each row once.
template <int Slots>
struct RowRing {
  i64 len;
  std::vector<float> data;
  i64 tag[Slots];
  explicit RowRing(i64 n) : len(n), data(Slots * n) {
    for (auto& t : tag) t = -1;
  }
  template <typename Fill>
  const float* get(i64 r, Fill&& fill) {
    float* b = data.data() + (r % Slots) * len;
    if (tag[r % Slots] != r) {
      fill(r, b);
      tag[r % Slots] = r;
    }
    return b;
  }
};

// The k rows around row r = n * H + h (same image; nullptr outside) through `row(r')`; with
// `transposed`, the order an input gradient needs (h - i + p).
template <typename Row>
void Window(const Map& s, i64 r, int k, bool transposed, Row&& row, const float** rows) {
  const i64 h = r % s.h, p = k / 2;
  for (int i = 0; i < k; ++i) {
    const i64 d = transposed ? p - i : i - p;
    rows[i] = (h + d < 0 || h + d >= s.h) ? nullptr : row(r + d);
  }
}

// Channel gates of every image: ch[n, :] = sigmoid(Wc pool[n, :]) (Wc: (C, C), out x in); rows of
// Wc^T are added in registers (vectorised over the output channels), images split over threads.
void ChannelGates(const float* wc, const float* pool, float* ch, i64 N, i64 C, int threads) {
  std::vector<float> wt(C * C);
  for (i64 o = 0; o < C; ++o)
    for (i64 c = 0; c < C; ++c) wt[c * C + o] = wc[o * C + c];
#pragma omp parallel for num_threads(threads) schedule(static)
  for (i64 n = 0; n < N; ++n) {
    float* z = ch + n * C;
    std::fill(z, z + C, 0.0f);
    for (i64 c = 0; c < C; ++c) {
      const float p = pool[n * C + c];
      const float* w = wt.data() + c * C;
#pragma omp simd
      for (i64 o = 0; o < C; ++o) z[o] += w[o] * p;
    }
#pragma omp simd
    for (i64 o = 0; o < C; ++o) z[o] = Sigmoid(z[o]);
  }
}

// Their backward from gz = dL/dz (N, C): gwc = gz^T pool (C, C), gpool = scale gz Wc (N, C).
void ChannelGatesGrad(const float* wc, const float* pool, const float* gz, float scale, float* gwc,
                      float* gpool, i64 N, i64 C, int threads) {
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static) nowait
    for (i64 o = 0; o < C; ++o) {
      float* g = gwc + o * C;
      std::fill(g, g + C, 0.0f);
      for (i64 n = 0; n < N; ++n) {
        const float a = gz[n * C + o];
        const float* p = pool + n * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) g[c] += a * p[c];
      }
    }
#pragma omp for schedule(static)
    for (i64 n = 0; n < N; ++n) {
      float* g = gpool + n * C;
      std::fill(g, g + C, 0.0f);
      for (i64 o = 0; o < C; ++o) {
        const float a = gz[n * C + o] * scale;
        const float* w = wc + o * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) g[c] += a * w[c];
      }
    }
  }
}

// Batch moments (training) of s_b = dwconv_b(x_b) + bias for both branches: s is computed row by
// row and never stored; sums of s - s[0] in double (as Moments).
// Returns the normalising statistics (running ones updated).
void BranchMoments(const float* x, const Map& s, const Branch* br, bool training, float momentum,
                   float eps, int threads, BnStats* st) {
  const i64 C = s.c, W = s.w, C3 = 3 * C, M = s.m();
  if (!training) {
    for (int b = 0; b < 2; ++b) st[b] = Normalizer(nullptr, M, C, C, *br[b].rmean, *br[b].rvar, false, momentum, eps, threads);
    return;
  }
  std::vector<float> shift(2 * C), first(W * C);
  for (int b = 0; b < 2; ++b) {
    const float* rows[16];
    RowsAround(x + b * C, s, C3, 0, 0, br[b].k, rows);
    DwRowForward(rows, C3, br[b].taps.data(), br[b].dw_b, first.data(), C, W, C, br[b].k);
    std::copy(first.begin(), first.begin() + C, shift.begin() + b * C);
  }
  Accum acc(4 * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc.of(omp_get_thread_num());
    std::vector<float> srow(W * C);
    const float* rows[16];
#pragma omp for schedule(static)
    for (i64 r = 0; r < s.rows(); ++r) {
      for (int b = 0; b < 2; ++b) {
        RowsAround(x + b * C, s, C3, r / s.h, r % s.h, br[b].k, rows);
        DwRowForward(rows, C3, br[b].taps.data(), br[b].dw_b, srow.data(), C, W, C, br[b].k);
        const float* sh = shift.data() + b * C;
        double* s1 = a + 2 * b * C;
        double* s2 = s1 + C;
        for (i64 xx = 0; xx < W; ++xx) {
          const float* sp = srow.data() + xx * C;
#pragma omp simd
          for (i64 c = 0; c < C; ++c) {
            const double d = static_cast<double>(sp[c]) - sh[c];
            s1[c] += d;
            s2[c] += d * d;
          }
        }
      }
    }
  }
  const auto tot = acc.total();
  const double unbias = M > 1 ? static_cast<double>(M) / (M - 1) : 1.0;
  for (int b = 0; b < 2; ++b) {
    st[b].mean.resize(C);
    st[b].rstd.resize(C);
    float* rm = Mutable(*br[b].rmean);
    float* rv = Mutable(*br[b].rvar);
    for (i64 c = 0; c < C; ++c) {
      const double d = tot[2 * b * C + c] / M;
      const double mu = shift[b * C + c] + d;
      const double var = std::max(0.0, tot[2 * b * C + C + c] / M - d * d);
      st[b].mean[c] = static_cast<float>(mu);
      st[b].rstd[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
      rm[c] = static_cast<float>((1.0 - momentum) * rm[c] + momentum * mu);
      rv[c] = static_cast<float>((1.0 - momentum) * rv[c] + momentum * var * unbias);
    }
  }
}

}  // namespace

std::vector<paddle::Tensor> CatmForward(
    const paddle::Tensor& qkv, const paddle::Tensor& q_dw_w, const paddle::Tensor& q_dw_b,
    const paddle::Tensor& q_gamma, const paddle::Tensor& q_beta, const paddle::Tensor& q_rmean,
    const paddle::Tensor& q_rvar, const paddle::Tensor& q_ws, const paddle::Tensor& q_wc,
    const paddle::Tensor& k_dw_w, const paddle::Tensor& k_dw_b, const paddle::Tensor& k_gamma,
    const paddle::Tensor& k_beta, const paddle::Tensor& k_rmean, const paddle::Tensor& k_rvar,
    const paddle::Tensor& k_ws, const paddle::Tensor& k_wc, const paddle::Tensor& dwc_w,
    const paddle::Tensor& dwc_b, const paddle::Tensor& proj_w, const paddle::Tensor& proj_b,
    const paddle::Tensor& res, const paddle::Tensor& drop_scale, bool training, float momentum, float eps,
    bool keep, int threads) {
  const auto shape = qkv.shape();
  PD_CHECK(shape.size() == 4 && shape[3] % 3 == 0, "catm: qkv must be (N, H, W, 3C)");
  const Map s = MapOf(qkv, shape[3] / 3, "catm");
  const i64 C = s.c, M = s.m(), W = s.w, N = s.n, HW = s.h * s.w, C3 = 3 * C, R = s.rows();
  const auto place = qkv.place();
  const float* x = In<float>(qkv);
  const Branch br[2] = {BranchOf(q_dw_w, q_dw_b, q_gamma, q_beta, q_rmean, q_rvar, q_ws, q_wc, C),
                        BranchOf(k_dw_w, k_dw_b, k_gamma, k_beta, k_rmean, k_rvar, k_ws, k_wc, C)};
  auto gates = paddle::empty({2, M}, qkv.dtype(), place);
  auto pool = paddle::empty({2, N, C}, qkv.dtype(), place);
  auto chan = paddle::empty({2, N, C}, qkv.dtype(), place);
  auto stats = paddle::empty({2, 2, C}, qkv.dtype(), place);
  float* gd = Out(gates);
  BnStats st[2];
  BranchMoments(x, s, br, training, momentum, eps, threads, st);
  std::vector<float> scale[2] = {Scale(br[0].gamma, st[0].rstd), Scale(br[1].gamma, st[1].rstd)};
  // gates: g = sigmoid(relu(BN(s)) . ws) per pixel, and the image sums of x g
  Accum pacc(2 * N * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* pl = pacc.of(omp_get_thread_num());
    std::vector<float> srow(W * C), prow_buf(C);
    const float* rows[16];
#pragma omp for schedule(static)
    for (i64 r = 0; r < R; ++r) {
      const i64 n = r / s.h;
      for (int b = 0; b < 2; ++b) {
        RowsAround(x + b * C, s, C3, n, r % s.h, br[b].k, rows);
        DwRowForward(rows, C3, br[b].taps.data(), br[b].dw_b, srow.data(), C, W, C, br[b].k);
        const float* mean = st[b].mean.data();
        const float* sc = scale[b].data();
        const float* beta = br[b].beta;
        const float* wsp = br[b].ws;
        float* prow = prow_buf.data();  // image sum of x g over this row, then into double
        std::fill(prow, prow + C, 0.0f);
        for (i64 xx = 0; xx < W; ++xx) {
          const float* sp = srow.data() + xx * C;
          float z = 0.0f;
#pragma omp simd reduction(+ : z)
          for (i64 c = 0; c < C; ++c) {
            const float y = (sp[c] - mean[c]) * sc[c] + beta[c];
            z += (y > 0.0f ? y : 0.0f) * wsp[c];
          }
          const i64 m = r * W + xx;
          const float g = Sigmoid(z);
          gd[b * M + m] = g;
          const float* xp = x + m * C3 + b * C;
#pragma omp simd
          for (i64 c = 0; c < C; ++c) prow[c] += xp[c] * g;
        }
        double* p = pl + (b * N + n) * C;
        for (i64 c = 0; c < C; ++c) p[c] += prow[c];
      }
    }
  }
  const auto ptot = pacc.total();
  float* pd = Out(pool);
  float* chd = Out(chan);
  for (int b = 0; b < 2; ++b) {
    for (i64 i = 0; i < N * C; ++i) pd[b * N * C + i] = static_cast<float>(ptot[b * N * C + i] / HW);
    ChannelGates(br[b].wc, pd + b * N * C, chd + b * N * C, N, C, threads);
    std::copy(st[b].mean.begin(), st[b].mean.end(), Out(stats) + b * 2 * C);
    std::copy(st[b].rstd.begin(), st[b].rstd.end(), Out(stats) + b * 2 * C + C);
  }
  // sum = q g_q ch_q + k g_k ch_k; u = dwc(sum) + b; w = u v; out = proj(w) + b, row by row
  const auto dtaps = DwTaps(dwc_w, C), ptaps = DwTaps(proj_w, C);
  const int kd = KernelOf(dwc_w), kp = KernelOf(proj_w);
  PD_CHECK(kd == 3 && kp == 3, "catm: dwc and proj must be 3x3 (as official)");
  auto out = paddle::empty({N, s.h, W, C}, qkv.dtype(), place);
  auto sum = paddle::empty({keep ? N : 0, s.h, W, C}, qkv.dtype(), place);
  auto u = paddle::empty({keep ? N : 0, s.h, W, C}, qkv.dtype(), place);
  float* od = Out(out);
  float* smd = keep ? Out(sum) : nullptr;
  float* ud = keep ? Out(u) : nullptr;
  const float* dwb = In<float>(dwc_b);
  const float* pb = In<float>(proj_b);
  const float* rsd = Opt(res);
  const float* scd = Opt(drop_scale);
#pragma omp parallel num_threads(threads)
  {
    i64 r0, r1;
    ThreadRows(R, &r0, &r1);
    RowRing<4> sums(W * C), ws(W * C);
    std::vector<float> urow(W * C);
    auto sum_row = [&](i64 r, float* dst) {
      const i64 n = r / s.h;
      const float* cq = chd + n * C;
      const float* ck = chd + (N + n) * C;
      for (i64 xx = 0; xx < W; ++xx) {
        const i64 m = r * W + xx;
        const float* px = x + m * C3;
        const float g0 = gd[m], g1 = gd[M + m];
        float* o = dst + xx * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) o[c] = px[c] * g0 * cq[c] + px[C + c] * g1 * ck[c];
      }
      if (smd && r >= r0 && r < r1) std::copy(dst, dst + W * C, smd + r * W * C);
    };
    auto w_row = [&](i64 r, float* dst) {
      const float* rows[3];
      Window(s, r, 3, false, [&](i64 rr) { return sums.get(rr, sum_row); }, rows);
      DwRowForward(rows, C, dtaps.data(), dwb, urow.data(), C, W, C, 3);
      if (ud && r >= r0 && r < r1) std::copy(urow.begin(), urow.end(), ud + r * W * C);
      for (i64 xx = 0; xx < W; ++xx) {
        const float* v = x + (r * W + xx) * C3 + 2 * C;
        const float* up = urow.data() + xx * C;
        float* o = dst + xx * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) o[c] = up[c] * v[c];
      }
    };
    for (i64 r = r0; r < r1; ++r) {
      const float* rows[3];
      Window(s, r, 3, false, [&](i64 rr) { return ws.get(rr, w_row); }, rows);
      float* o = od + r * W * C;
      DwRowForward(rows, C, ptaps.data(), pb, o, C, W, C, 3);
      if (rsd || scd) {  // residual + drop path: res + scale[n] out
        const float k = scd ? scd[r / s.h] : 1.0f;
        const float* rp = rsd ? rsd + r * W * C : nullptr;
#pragma omp simd
        for (i64 i = 0; i < W * C; ++i) o[i] = (rp ? rp[i] : 0.0f) + k * o[i];
      }
    }
  }
  return {out, sum, u, gates, pool, chan, stats};
}

std::vector<paddle::Tensor> CatmBackward(
    const paddle::Tensor& qkv, const paddle::Tensor& sum, const paddle::Tensor& u,
    const paddle::Tensor& gates, const paddle::Tensor& pool, const paddle::Tensor& chan,
    const paddle::Tensor& stats, const paddle::Tensor& grad, const paddle::Tensor& q_dw_w,
    const paddle::Tensor& q_dw_b, const paddle::Tensor& q_gamma, const paddle::Tensor& q_beta,
    const paddle::Tensor& q_ws, const paddle::Tensor& q_wc, const paddle::Tensor& k_dw_w,
    const paddle::Tensor& k_dw_b, const paddle::Tensor& k_gamma, const paddle::Tensor& k_beta,
    const paddle::Tensor& k_ws, const paddle::Tensor& k_wc, const paddle::Tensor& dwc_w,
    const paddle::Tensor& proj_w, const paddle::Tensor& drop_scale, bool training, int threads) {
  const Map s = MapOf(qkv, qkv.shape()[3] / 3, "catm_grad");
  const i64 C = s.c, M = s.m(), W = s.w, N = s.n, HW = s.h * s.w, C3 = 3 * C, R = s.rows();
  PD_CHECK(sum.numel() == M * C && u.numel() == M * C, "catm_grad: the forward pass kept no sum/u");
  const auto place = qkv.place();
  const float* x = In<float>(qkv);
  const float* ud = In<float>(u);
  const float* smd = In<float>(sum);
  const float* gd = In<float>(grad);
  std::vector<float> scaled;  // with drop path the mixer's output gradient is scale[n] grad
  if (const float* scd = Opt(drop_scale)) {
    scaled.resize(static_cast<size_t>(M) * C);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (i64 m = 0; m < M; ++m) {
      const float k = scd[m / HW];
      for (i64 c = 0; c < C; ++c) scaled[m * C + c] = k * gd[m * C + c];
    }
    gd = scaled.data();
  }
  const float* gates_d = In<float>(gates);
  const float* pool_d = In<float>(pool);
  const float* chan_d = In<float>(chan);
  const float* stats_d = In<float>(stats);
  auto gqkv = paddle::empty(qkv.shape(), qkv.dtype(), place);
  float* gx = Out(gqkv);
  const auto ptaps = DwTaps(proj_w, C), dtaps = DwTaps(dwc_w, C);
  PD_CHECK(KernelOf(proj_w) == 3 && KernelOf(dwc_w) == 3, "catm_grad: dwc and proj must be 3x3");
  const paddle::Tensor* pw[2][6] = {{&q_dw_w, &q_dw_b, &q_gamma, &q_beta, &q_ws, &q_wc},
                                    {&k_dw_w, &k_dw_b, &k_gamma, &k_beta, &k_ws, &k_wc}};
  std::vector<float> taps[2] = {DwTaps(q_dw_w, C), DwTaps(k_dw_w, C)};
  for (int b = 0; b < 2; ++b) PD_CHECK(KernelOf(*pw[b][0]) == 3, "catm_grad: 3x3 depthwise kernels");
  // --- 1. proj and dwc backward, row by row: gw = proj input gradient; gu = gw v, gv = gw u;
  // gsum = dwc input gradient (kept); parameter gradients; gch_b = image sums of gsum x_b gate_b
  std::vector<float> gsum(static_cast<size_t>(M) * C);
  const i64 kk = 9 * C;
  Accum acc1(2 * (kk + C) + 2 * N * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc1.of(omp_get_thread_num());
    double* a_proj = a;                   // proj taps, bias
    double* a_dwc = a + kk + C;           // dwc taps, bias
    double* a_gch = a + 2 * (kk + C);     // (2, N, C)
    i64 r0, r1;
    ThreadRows(R, &r0, &r1);
    RowRing<4> wring(W * C), guring(W * C);
    std::vector<float> gw(W * C), frow(C);
    auto w_row = [&](i64 r, float* dst) {
      for (i64 xx = 0; xx < W; ++xx) {
        const i64 m = r * W + xx;
        const float* v = x + m * C3 + 2 * C;
        const float* up = ud + m * C;
        float* o = dst + xx * C;
#pragma omp simd
        for (i64 c = 0; c < C; ++c) o[c] = up[c] * v[c];
      }
    };
    auto gu_row = [&](i64 r, float* dst) {
      const float* grows[3];
      Window(s, r, 3, true, [&](i64 rr) { return gd + rr * W * C; }, grows);
      DwRowInputGrad(grows, C, ptaps.data(), gw.data(), C, W, C, 3, false);
      const bool mine = r >= r0 && r < r1;
      for (i64 xx = 0; xx < W; ++xx) {
        const i64 m = r * W + xx;
        const float* v = x + m * C3 + 2 * C;
        const float* up = ud + m * C;
        const float* g = gw.data() + xx * C;
        float* o = dst + xx * C;
        if (mine) {
          float* gv = gx + m * C3 + 2 * C;
#pragma omp simd
          for (i64 c = 0; c < C; ++c) gv[c] = g[c] * up[c];
        }
#pragma omp simd
        for (i64 c = 0; c < C; ++c) o[c] = g[c] * v[c];
      }
    };
    for (i64 r = r0; r < r1; ++r) {
      const float* rows[3];
      Window(s, r, 3, false, [&](i64 rr) { return wring.get(rr, w_row); }, rows);
      DwRowParamGrad(rows, C, gd + r * W * C, C, a_proj, a_proj + kk, W, C, 3);
      const float* grows[3];
      Window(s, r, 3, true, [&](i64 rr) { return guring.get(rr, gu_row); }, grows);
      float* gs = gsum.data() + r * W * C;
      DwRowInputGrad(grows, C, dtaps.data(), gs, C, W, C, 3, false);
      Window(s, r, 3, false, [&](i64 rr) { return smd + rr * W * C; }, rows);
      DwRowParamGrad(rows, C, guring.get(r, gu_row), C, a_dwc, a_dwc + kk, W, C, 3);
      const i64 n = r / s.h;
      for (int b = 0; b < 2; ++b) {
        float* fr = frow.data();
        std::fill(fr, fr + C, 0.0f);
        for (i64 xx = 0; xx < W; ++xx) {
          const i64 m = r * W + xx;
          const float* g = gs + xx * C;
          const float* xp = x + m * C3 + b * C;
          const float gt = gates_d[b * M + m];
#pragma omp simd
          for (i64 c = 0; c < C; ++c) fr[c] += g[c] * xp[c] * gt;
        }
        double* an = a_gch + (b * N + n) * C;
        for (i64 c = 0; c < C; ++c) an[c] += fr[c];
      }
    }
  }
  const auto t1 = acc1.total();
  // --- channel gates: ch = sigmoid(Wc pool); gz = gch ch (1 - ch); gWc = gz^T pool;
  // gpool = gz Wc / HW (spread over the image)
  std::vector<float> gpool(2 * N * C), gwc(2 * C * C), gz(N * C);
  for (int b = 0; b < 2; ++b) {
    const float* ch = chan_d + b * N * C;
    for (i64 i = 0; i < N * C; ++i) gz[i] = static_cast<float>(t1[2 * (kk + C) + b * N * C + i] * ch[i] * (1.0 - ch[i]));
    ChannelGatesGrad(In<float>(*pw[b][5]), pool_d + b * N * C, gz.data(), 1.0f / HW, gwc.data() + b * C * C,
                     gpool.data() + b * N * C, N, C, threads);
  }
  // --- 2. per pixel, both branches: gx1 = gsum ch + gpool; gx_b = gx1 gate (written);
  // gzs = (gx1 . x_b) gate (1 - gate); with s = dwconv(x_b) + b recomputed and y = BN(s):
  // gws = sum gzs relu(y); gy = gzs ws [y > 0]; BatchNorm sums of gy and gy xhat
  std::vector<float> gzs(2 * M);
  std::vector<float> scale[2];
  for (int b = 0; b < 2; ++b)
    scale[b] = Scale(In<float>(*pw[b][2]), std::vector<float>(stats_d + b * 2 * C + C, stats_d + (b + 1) * 2 * C));
  Accum acc2(2 * 3 * C, threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc2.of(omp_get_thread_num());
    std::vector<float> srow(W * C), frow(3 * C);
    const float* rows[16];
#pragma omp for schedule(static)
    for (i64 r = 0; r < R; ++r) {
      const i64 n = r / s.h;
      for (int b = 0; b < 2; ++b) {
        const float* mean = stats_d + b * 2 * C;
        const float* rstd = mean + C;
        const float* beta = In<float>(*pw[b][3]);
        const float* ws = In<float>(*pw[b][4]);
        const float* sc = scale[b].data();
        const float* chn = chan_d + (b * N + n) * C;
        const float* gp = gpool.data() + (b * N + n) * C;
        float* fr = frow.data();  // this row's [gws | sum gy | sum gy xhat], then into double
        std::fill(fr, fr + 3 * C, 0.0f);
        RowsAround(x + b * C, s, C3, n, r % s.h, 3, rows);
        DwRowForward(rows, C3, taps[b].data(), In<float>(*pw[b][1]), srow.data(), C, W, C, 3);
        for (i64 xx = 0; xx < W; ++xx) {
          const i64 m = r * W + xx;
          const float* g = gsum.data() + m * C;
          const float* xp = x + m * C3 + b * C;
          float* dst = gx + m * C3 + b * C;
          const float gt = gates_d[b * M + m];
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (i64 c = 0; c < C; ++c) {
            const float g1 = g[c] * chn[c] + gp[c];
            dst[c] = g1 * gt;
            dot += g1 * xp[c];
          }
          const float gz = dot * gt * (1.0f - gt);
          gzs[b * M + m] = gz;
          const float* sp = srow.data() + xx * C;
#pragma omp simd
          for (i64 c = 0; c < C; ++c) {
            const float xh = (sp[c] - mean[c]) * rstd[c];
            const float y = (sp[c] - mean[c]) * sc[c] + beta[c];
            const float gy = y > 0.0f ? gz * ws[c] : 0.0f;
            fr[c] += y > 0.0f ? gz * y : 0.0f;  // gws
            fr[C + c] += gy;
            fr[2 * C + c] += gy * xh;
          }
        }
        double* ab = a + b * 3 * C;
        for (i64 c = 0; c < 3 * C; ++c) ab[c] += fr[c];
      }
    }
  }
  const auto t2 = acc2.total();
  // --- 3. gs = BatchNorm input gradient of gy (rows recomputed), then the depthwise backward:
  // gx_b += dwconv input gradient of gs; weight and bias gradients
  std::vector<float> ca[2], cb[2], cd[2];
  for (int b = 0; b < 2; ++b) {
    const float* gamma = In<float>(*pw[b][2]);
    const float* mean = stats_d + b * 2 * C;
    const float* rstd = mean + C;
    ca[b].resize(C);
    cb[b].resize(C);
    cd[b].resize(C);
    for (i64 c = 0; c < C; ++c) {  // gs = ca gy + cb (s - mean) + cd
      const double sgm = static_cast<double>(gamma[c]) * rstd[c];
      ca[b][c] = static_cast<float>(sgm);
      cb[b][c] = training ? static_cast<float>(-sgm * rstd[c] * t2[b * 3 * C + 2 * C + c] / M) : 0.0f;
      cd[b][c] = training ? static_cast<float>(-sgm * t2[b * 3 * C + C + c] / M) : 0.0f;
    }
  }
  Accum acc3(2 * (kk + C), threads);
#pragma omp parallel num_threads(threads)
  {
    double* a = acc3.of(omp_get_thread_num());
    i64 r0, r1;
    ThreadRows(R, &r0, &r1);
    RowRing<4> gsring[2] = {RowRing<4>(W * C), RowRing<4>(W * C)};
    std::vector<float> srow(W * C);
    for (int b = 0; b < 2; ++b) {
      const float* mean = stats_d + b * 2 * C;
      const float* beta = In<float>(*pw[b][3]);
      const float* ws = In<float>(*pw[b][4]);
      const float* sc = scale[b].data();
      auto gs_row = [&](i64 r, float* dst) {
        const float* rows[3];
        RowsAround(x + b * C, s, C3, r / s.h, r % s.h, 3, rows);
        DwRowForward(rows, C3, taps[b].data(), In<float>(*pw[b][1]), srow.data(), C, W, C, 3);
        for (i64 xx = 0; xx < W; ++xx) {
          const float gz = gzs[b * M + r * W + xx];
          const float* sp = srow.data() + xx * C;
          float* o = dst + xx * C;
#pragma omp simd
          for (i64 c = 0; c < C; ++c) {
            const float y = (sp[c] - mean[c]) * sc[c] + beta[c];
            const float gy = y > 0.0f ? gz * ws[c] : 0.0f;
            o[c] = ca[b][c] * gy + cb[b][c] * (sp[c] - mean[c]) + cd[b][c];
          }
        }
      };
      double* ab = a + b * (kk + C);
      for (i64 r = r0; r < r1; ++r) {
        const float* grows[3];
        Window(s, r, 3, true, [&](i64 rr) { return gsring[b].get(rr, gs_row); }, grows);
        DwRowInputGrad(grows, C, taps[b].data(), gx + r * W * C3 + b * C, C3, W, C, 3, true);
        const float* rows[3];
        RowsAround(x + b * C, s, C3, r / s.h, r % s.h, 3, rows);
        DwRowParamGrad(rows, C3, gsring[b].get(r, gs_row), C, ab, ab + kk, W, C, 3);
      }
    }
  }
  const auto t3 = acc3.total();
  // --- gradients of the parameters, official layouts
  std::vector<paddle::Tensor> outs = {gqkv};
  for (int b = 0; b < 2; ++b) {
    auto g_dw_w = paddle::empty(pw[b][0]->shape(), qkv.dtype(), place);
    auto g_dw_b = paddle::empty({C}, qkv.dtype(), place);
    auto g_gamma = paddle::empty({C}, qkv.dtype(), place);
    auto g_beta = paddle::empty({C}, qkv.dtype(), place);
    auto g_ws = paddle::empty(pw[b][4]->shape(), qkv.dtype(), place);
    auto g_wc = paddle::empty(pw[b][5]->shape(), qkv.dtype(), place);
    StoreTaps(t3.data() + b * (kk + C), C, 3, Out(g_dw_w));
    for (i64 c = 0; c < C; ++c) {
      Out(g_dw_b)[c] = static_cast<float>(t3[b * (kk + C) + kk + c]);
      Out(g_ws)[c] = static_cast<float>(t2[b * 3 * C + c]);
      Out(g_beta)[c] = static_cast<float>(t2[b * 3 * C + C + c]);
      Out(g_gamma)[c] = static_cast<float>(t2[b * 3 * C + 2 * C + c]);
    }
    std::copy(gwc.begin() + b * C * C, gwc.begin() + (b + 1) * C * C, Out(g_wc));
    for (auto* t : {&g_dw_w, &g_dw_b, &g_gamma, &g_beta, &g_ws, &g_wc}) outs.push_back(*t);
  }
  auto g_dwc_w = paddle::empty(dwc_w.shape(), qkv.dtype(), place);
  auto g_dwc_b = paddle::empty({C}, qkv.dtype(), place);
  auto g_proj_w = paddle::empty(proj_w.shape(), qkv.dtype(), place);
  auto g_proj_b = paddle::empty({C}, qkv.dtype(), place);
  StoreTaps(t1.data() + kk + C, C, 3, Out(g_dwc_w));
  StoreTaps(t1.data(), C, 3, Out(g_proj_w));
  for (i64 c = 0; c < C; ++c) {
    Out(g_dwc_b)[c] = static_cast<float>(t1[kk + C + kk + c]);
    Out(g_proj_b)[c] = static_cast<float>(t1[kk + c]);
  }
  outs.insert(outs.end(), {g_dwc_w, g_dwc_b, g_proj_w, g_proj_b});
  return outs;
}

// =============================================================================== registration
PD_BUILD_OP(casvit_bn_act)
    .Inputs({"X", "Gamma", "Beta", "RunMean", "RunVar"})
    .Outputs({"Y", "Mean", "Rstd"})
    .Attrs({"training: bool", "momentum: float", "eps: float", "relu: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(BnActForward));

PD_BUILD_OP(casvit_bn_act_grad)
    .Inputs({"X", "G", "Gamma", "Beta", "Mean", "Rstd"})
    .Outputs({"GX", "GGamma", "GBeta"})
    .Attrs({"training: bool", "relu: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(BnActBackward));

PD_BUILD_OP(casvit_bndw_act)
    .Inputs({"A", "PreBias", "Gamma", "Beta", "RunMean", "RunVar", "W", "B"})
    .Outputs({"Y", "D", "Mean", "Rstd"})
    .Attrs({"training: bool", "momentum: float", "eps: float", "act: int", "keep: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(BnDwActForward));

PD_BUILD_OP(casvit_bndw_act_grad)
    .Inputs({"A", "PreBias", "D", "G", "Gamma", "Beta", "Mean", "Rstd", "W", "B"})
    .Outputs({"GA", "GPreBias", "GGamma", "GBeta", "GW", "GB"})
    .Attrs({"training: bool", "act: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(BnDwActBackward));

PD_BUILD_OP(casvit_bias_act)
    .Inputs({"Z", "B"})
    .Outputs({"Y", "D"})
    .Attrs({"act: int", "keep: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(BiasActForward));

PD_BUILD_OP(casvit_bias_act_grad)
    .Inputs({"D", "G"})
    .Outputs({"GZ", "GB"})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(BiasActBackward));

PD_BUILD_OP(casvit_catm)
    .Inputs({"QKV", "QDwW", "QDwB", "QGamma", "QBeta", "QRunMean", "QRunVar", "QWs", "QWc", "KDwW",
             "KDwB", "KGamma", "KBeta", "KRunMean", "KRunVar", "KWs", "KWc", "DwcW", "DwcB", "ProjW",
             "ProjB", "Res", "Scale"})
    .Outputs({"Out", "Sum", "U", "Gates", "Pool", "Chan", "Stats"})
    .Attrs({"training: bool", "momentum: float", "eps: float", "keep: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(CatmForward));

PD_BUILD_OP(casvit_catm_grad)
    .Inputs({"QKV", "Sum", "U", "Gates", "Pool", "Chan", "Stats", "G", "QDwW", "QDwB", "QGamma",
             "QBeta", "QWs", "QWc", "KDwW", "KDwB", "KGamma", "KBeta", "KWs", "KWc", "DwcW", "ProjW",
             "Scale"})
    .Outputs({"GQKV", "GQDwW", "GQDwB", "GQGamma", "GQBeta", "GQWs", "GQWc", "GKDwW", "GKDwB",
              "GKGamma", "GKBeta", "GKWs", "GKWc", "GDwcW", "GDwcB", "GProjW", "GProjB"})
    .Attrs({"training: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(CatmBackward));

PD_BUILD_OP(casvit_bias_residual)
    .Inputs({"Z", "B", "Res", "Scale"})
    .Outputs({"Out"})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(BiasResidualForward));

PD_BUILD_OP(casvit_bias_residual_grad)
    .Inputs({"G", "Scale"})
    .Outputs({"GZ", "GB"})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(BiasResidualBackward));
