// Mean of each of the n_win x n_win windows of an NHWC float32 tensor, on the CPU.
//
// BiFormer routes with window-averaged queries and keys (the q|k map): one pass here, where
// Paddle's reduction over the middle axes of a 5-D tensor is slow on CPU.
//
//   x: (N, H, W, C), H and W multiples of n_win  ->  out: (N, n_win * n_win, C), windows row-major
#include <omp.h>

#include <algorithm>
#include <vector>

#include "paddle/extension.h"

namespace {

struct Windows {
  int64_t n, h, w, c, nw, wh, ww;
};

Windows MakeWindows(const std::vector<int64_t>& xs, int n_win) {
  PD_CHECK(xs.size() == 4, "window_mean: x must be NHWC (4-D)");
  PD_CHECK(n_win > 0 && xs[1] % n_win == 0 && xs[2] % n_win == 0,
           "window_mean: H and W must be multiples of n_win");
  return Windows{xs[0], xs[1], xs[2], xs[3], n_win, xs[1] / n_win, xs[2] / n_win};
}

}  // namespace

std::vector<paddle::Tensor> WindowMeanForward(const paddle::Tensor& x, int n_win, int threads) {
  const Windows g = MakeWindows(x.shape(), n_win);
  auto out = paddle::empty({g.n, g.nw * g.nw, g.c}, x.dtype(), x.place());
  const float* xd = x.data<float>();
  float* od = out.data<float>();
  const float scale = 1.0f / static_cast<float>(g.wh * g.ww);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < g.n * g.nw * g.nw; ++r) {  // one output window each
    const int64_t n = r / (g.nw * g.nw), j = (r / g.nw) % g.nw, i = r % g.nw;
    float* o = od + r * g.c;
    std::fill(o, o + g.c, 0.0f);
    for (int64_t h = j * g.wh; h < (j + 1) * g.wh; ++h) {
      const float* row = xd + ((n * g.h + h) * g.w + i * g.ww) * g.c;
      for (int64_t w = 0; w < g.ww; ++w) {
#pragma omp simd
        for (int64_t c = 0; c < g.c; ++c) o[c] += row[w * g.c + c];
      }
    }
#pragma omp simd
    for (int64_t c = 0; c < g.c; ++c) o[c] *= scale;
  }
  return {out};
}

std::vector<paddle::Tensor> WindowMeanBackward(const paddle::Tensor& x, const paddle::Tensor& grad,
                                               int n_win, int threads) {
  const Windows g = MakeWindows(x.shape(), n_win);
  auto gx = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* gd = grad.data<float>();
  float* gxd = gx.data<float>();
  const float scale = 1.0f / static_cast<float>(g.wh * g.ww);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < g.n * g.h; ++r) {  // one input row each
    const int64_t n = r / g.h, j = (r % g.h) / g.wh;
    for (int64_t w = 0; w < g.w; ++w) {
      const float* src = gd + ((n * g.nw + j) * g.nw + w / g.ww) * g.c;
      float* dst = gxd + (r * g.w + w) * g.c;
#pragma omp simd
      for (int64_t c = 0; c < g.c; ++c) dst[c] = src[c] * scale;
    }
  }
  return {gx};
}

PD_BUILD_OP(window_mean)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"n_win: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(WindowMeanForward));

PD_BUILD_GRAD_OP(window_mean)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"n_win: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(WindowMeanBackward));
