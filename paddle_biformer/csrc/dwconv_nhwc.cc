// Depthwise 2-D convolution (stride 1, zero padding) of NHWC float32 tensors on the CPU.
//
// Paddle's CPU depthwise_conv2d kernel is ~35x slower than PyTorch's on BiFormer's shapes; in
// NHWC the channel axis is contiguous, so every tap is a vectorised multiply-add over C.
//
//   x: (N, H, W, Cx)   w: (K, K, C)   b: (C)   ->   out: (N, H + 2 pad - K + 1, W + 2 pad - K + 1, C)
//
// The convolution reads channels [c_off, c_off + C) of x (Cx >= C): a channel block of a wider
// tensor without a copy (the model itself now passes c_off = 0). With `residual`, out = x[channels] + conv(x): the
// block's `x + pos_embed(x)` in one pass (needs an output of the input's size).
// Threads split the N * H_out output rows; the weight gradient is reduced from per-thread
// partial sums, so no two threads ever write the same memory.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "paddle/extension.h"

namespace {

struct Shape {
  int64_t n, h, w, c, k, ho, wo, cx, off;  // cx: channels of x, off: first channel read
};

Shape GetShape(const paddle::Tensor& x, const paddle::Tensor& w, int pad, int c_off, bool residual) {
  auto xs = x.shape();
  auto ws = w.shape();
  PD_CHECK(xs.size() == 4, "dwconv_nhwc: x must be NHWC (4-D)");
  PD_CHECK(ws.size() == 3 && ws[0] == ws[1] && c_off >= 0 && c_off + ws[2] <= xs[3],
           "dwconv_nhwc: w must be (K, K, C) with c_off + C <= x.shape[3]");
  Shape s{xs[0], xs[1], xs[2], ws[2], ws[0], 0, 0, xs[3], c_off};
  s.ho = s.h + 2 * pad - s.k + 1;
  s.wo = s.w + 2 * pad - s.k + 1;
  PD_CHECK(s.ho > 0 && s.wo > 0, "dwconv_nhwc: kernel larger than the padded input");
  PD_CHECK(!residual || (s.ho == s.h && s.wo == s.w), "dwconv_nhwc: residual needs 'same' padding");
  return s;
}

// out[n, ho, :, :] = b (+ x[n, ho, :, :]) + sum_{i,j} x[n, ho+i-pad, wo+j-pad, :] * w[i, j, :]
void ForwardRow(const float* x, const float* w, const float* b, float* out, const Shape& s,
                int64_t n, int64_t ho, int pad, bool residual) {
  const int64_t C = s.c, CX = s.cx;
  float* orow = out + (n * s.ho + ho) * s.wo * C;
  const float* xsame = x + (n * s.h + ho) * s.w * CX + s.off;
  for (int64_t wo = 0; wo < s.wo; ++wo) {
    float* op = orow + wo * C;
    if (residual) {
      const float* xp = xsame + wo * CX;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) op[c] = b[c] + xp[c];
    } else {
      std::copy(b, b + C, op);
    }
  }
  for (int64_t i = 0; i < s.k; ++i) {
    const int64_t hi = ho + i - pad;
    if (hi < 0 || hi >= s.h) continue;
    const float* xrow = x + (n * s.h + hi) * s.w * CX + s.off;
    for (int64_t j = 0; j < s.k; ++j) {
      const float* wk = w + (i * s.k + j) * C;
      const int64_t lo = std::max<int64_t>(0, pad - j);
      const int64_t hi_w = std::min<int64_t>(s.wo, s.w + pad - j);
      for (int64_t wo = lo; wo < hi_w; ++wo) {
        const float* xp = xrow + (wo + j - pad) * CX;
        float* op = orow + wo * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) op[c] += xp[c] * wk[c];
      }
    }
  }
}

// gx[n, hi, wi, :] = (g[n, hi, wi, :]) + sum_{i,j} g[n, hi-i+pad, wi-j+pad, :] * w[i, j, :];
// channels of x outside the convolution's get zero
void InputGradRow(const float* g, const float* w, float* gx, const Shape& s, int64_t n,
                  int64_t hi, int pad, bool residual) {
  const int64_t C = s.c, CX = s.cx;
  float* grow_all = gx + (n * s.h + hi) * s.w * CX;
  if (residual) {  // residual needs ho == hi, wo == wi
    const float* gsame = g + (n * s.ho + hi) * s.wo * C;
    for (int64_t wi = 0; wi < s.w; ++wi) {
      float* d = grow_all + wi * CX;
      std::fill(d, d + CX, 0.0f);
      std::copy(gsame + wi * C, gsame + (wi + 1) * C, d + s.off);
    }
  } else {
    std::fill(grow_all, grow_all + s.w * CX, 0.0f);
  }
  float* grow = grow_all + s.off;
  for (int64_t i = 0; i < s.k; ++i) {
    const int64_t ho = hi - i + pad;
    if (ho < 0 || ho >= s.ho) continue;
    const float* gorow = g + (n * s.ho + ho) * s.wo * C;
    for (int64_t j = 0; j < s.k; ++j) {
      const float* wk = w + (i * s.k + j) * C;
      const int64_t lo = std::max<int64_t>(0, j - pad);
      const int64_t hi_w = std::min<int64_t>(s.w, s.wo + j - pad);
      for (int64_t wi = lo; wi < hi_w; ++wi) {
        const float* gp = gorow + (wi - j + pad) * C;
        float* xp = grow + wi * CX;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) xp[c] += gp[c] * wk[c];
      }
    }
  }
}

// acc_w[i, j, :] += sum_wo g[n, ho, wo, :] * x[n, ho+i-pad, wo+j-pad, :];  acc_b += sum_wo g
void ParamGradRow(const float* x, const float* g, float* acc_w, float* acc_b, const Shape& s,
                  int64_t n, int64_t ho, int pad) {
  const int64_t C = s.c, CX = s.cx;
  const float* gorow = g + (n * s.ho + ho) * s.wo * C;
  for (int64_t wo = 0; wo < s.wo; ++wo) {
    const float* gp = gorow + wo * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) acc_b[c] += gp[c];
  }
  for (int64_t i = 0; i < s.k; ++i) {
    const int64_t hi = ho + i - pad;
    if (hi < 0 || hi >= s.h) continue;
    const float* xrow = x + (n * s.h + hi) * s.w * CX + s.off;
    for (int64_t j = 0; j < s.k; ++j) {
      float* aw = acc_w + (i * s.k + j) * C;
      const int64_t lo = std::max<int64_t>(0, pad - j);
      const int64_t hi_w = std::min<int64_t>(s.wo, s.w + pad - j);
      for (int64_t wo = lo; wo < hi_w; ++wo) {
        const float* xp = xrow + (wo + j - pad) * CX;
        const float* gp = gorow + wo * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) aw[c] += gp[c] * xp[c];
      }
    }
  }
}

}  // namespace

std::vector<paddle::Tensor> DwconvNhwcForward(const paddle::Tensor& x, const paddle::Tensor& w,
                                              const paddle::Tensor& b, int pad, int c_off,
                                              bool residual, int threads) {
  const Shape s = GetShape(x, w, pad, c_off, residual);
  auto out = paddle::empty({s.n, s.ho, s.wo, s.c}, x.dtype(), x.place());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* bd = b.data<float>();
  float* od = out.data<float>();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < s.n * s.ho; ++r)
    ForwardRow(xd, wd, bd, od, s, r / s.ho, r % s.ho, pad, residual);
  return {out};
}

std::vector<paddle::Tensor> DwconvNhwcBackward(const paddle::Tensor& x, const paddle::Tensor& w,
                                               const paddle::Tensor& b, const paddle::Tensor& grad,
                                               int pad, int c_off, bool residual, int threads) {
  const Shape s = GetShape(x, w, pad, c_off, residual);
  auto gx = paddle::empty(x.shape(), x.dtype(), x.place());
  auto gw = paddle::empty(w.shape(), w.dtype(), w.place());
  auto gb = paddle::empty(b.shape(), b.dtype(), b.place());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  const float* gd = grad.data<float>();
  float* gxd = gx.data<float>();
  const int64_t kkc = s.k * s.k * s.c;
  std::vector<float> acc(static_cast<size_t>(threads) * (kkc + s.c), 0.0f);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < s.n * s.h; ++r)
      InputGradRow(gd, wd, gxd, s, r / s.h, r % s.h, pad, residual);
    float* acc_w = acc.data() + static_cast<size_t>(omp_get_thread_num()) * (kkc + s.c);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < s.n * s.ho; ++r)
      ParamGradRow(xd, gd, acc_w, acc_w + kkc, s, r / s.ho, r % s.ho, pad);
  }
  float* gwd = gw.data<float>();
  float* gbd = gb.data<float>();
  std::fill(gwd, gwd + kkc, 0.0f);
  std::fill(gbd, gbd + s.c, 0.0f);
  for (int t = 0; t < threads; ++t) {
    const float* a = acc.data() + static_cast<size_t>(t) * (kkc + s.c);
    for (int64_t q = 0; q < kkc; ++q) gwd[q] += a[q];
    for (int64_t c = 0; c < s.c; ++c) gbd[c] += a[kkc + c];
  }
  return {gx, gw, gb};
}

PD_BUILD_OP(dwconv_nhwc)
    .Inputs({"X", "W", "B"})
    .Outputs({"Out"})
    .Attrs({"pad: int", "c_off: int", "residual: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(DwconvNhwcForward));

PD_BUILD_GRAD_OP(dwconv_nhwc)
    .Inputs({"X", "W", "B", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("W"), paddle::Grad("B")})
    .Attrs({"pad: int", "c_off: int", "residual: bool", "threads: int"})
    .SetKernelFn(PD_KERNEL(DwconvNhwcBackward));
