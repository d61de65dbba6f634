// im2col for NHWC float32 tensors on the CPU: the patches of a k x k convolution as rows, so
// that the convolution is one matrix product (Paddle's CPU conv2d is several times slower than
// im2col + its matmul on BiFormer's stem and downsampling convolutions).
//
//   x: (N, H, W, C)  ->  cols: (N, Ho, Wo, K * K * C), last axis ordered (i, j, c),
//   Ho = (H + 2 pad - K) / stride + 1 (same for Wo); outside the image the patch is zero.
//
// The backward (col2im, also an op of its own, `x` giving only the shape) sums each patch
// element back into its pixel; threads split the input rows, so no two threads write the same
// memory.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "paddle/extension.h"

namespace {

struct Geometry {
  int64_t n, h, w, c, k, s, p, ho, wo;
};

Geometry MakeGeometry(const std::vector<int64_t>& xs, int k, int stride, int pad) {
  PD_CHECK(xs.size() == 4, "im2col_nhwc: x must be NHWC (4-D)");
  Geometry g{xs[0], xs[1], xs[2], xs[3], k, stride, pad, 0, 0};
  g.ho = (g.h + 2 * pad - k) / stride + 1;
  g.wo = (g.w + 2 * pad - k) / stride + 1;
  PD_CHECK(g.ho > 0 && g.wo > 0, "im2col_nhwc: kernel larger than the padded input");
  return g;
}

}  // namespace

std::vector<paddle::Tensor> Im2colNhwcForward(const paddle::Tensor& x, int k, int stride, int pad,
                                              int threads) {
  const Geometry g = MakeGeometry(x.shape(), k, stride, pad);
  const int64_t row = g.k * g.k * g.c;
  auto cols = paddle::empty({g.n, g.ho, g.wo, row}, x.dtype(), x.place());
  const float* xd = x.data<float>();
  float* cd = cols.data<float>();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < g.n * g.ho; ++r) {
    const int64_t n = r / g.ho, ho = r % g.ho;
    for (int64_t wo = 0; wo < g.wo; ++wo) {
      float* dst = cd + (r * g.wo + wo) * row;
      for (int64_t i = 0; i < g.k; ++i) {
        const int64_t hi = ho * g.s + i - g.p;
        for (int64_t j = 0; j < g.k; ++j) {
          const int64_t wi = wo * g.s + j - g.p;
          float* d = dst + (i * g.k + j) * g.c;
          if (hi < 0 || hi >= g.h || wi < 0 || wi >= g.w) {
            std::fill(d, d + g.c, 0.0f);
          } else {
            const float* src = xd + ((n * g.h + hi) * g.w + wi) * g.c;
            std::copy(src, src + g.c, d);
          }
        }
      }
    }
  }
  return {cols};
}

std::vector<paddle::Tensor> Im2colNhwcBackward(const paddle::Tensor& x, const paddle::Tensor& grad,
                                               int k, int stride, int pad, int threads) {
  const Geometry g = MakeGeometry(x.shape(), k, stride, pad);
  const int64_t row = g.k * g.k * g.c;
  auto gx = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* gd = grad.data<float>();
  float* gxd = gx.data<float>();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < g.n * g.h; ++r) {
    const int64_t n = r / g.h, hi = r % g.h;
    float* dst_row = gxd + r * g.w * g.c;
    std::fill(dst_row, dst_row + g.w * g.c, 0.0f);
    for (int64_t i = 0; i < g.k; ++i) {
      const int64_t t = hi + g.p - i;  // = ho * stride
      if (t < 0 || t % g.s) continue;
      const int64_t ho = t / g.s;
      if (ho >= g.ho) continue;
      for (int64_t wi = 0; wi < g.w; ++wi) {
        float* d = dst_row + wi * g.c;
        for (int64_t j = 0; j < g.k; ++j) {
          const int64_t u = wi + g.p - j;  // = wo * stride
          if (u < 0 || u % g.s) continue;
          const int64_t wo = u / g.s;
          if (wo >= g.wo) continue;
          const float* src = gd + ((n * g.ho + ho) * g.wo + wo) * row + (i * g.k + j) * g.c;
#pragma omp simd
          for (int64_t c = 0; c < g.c; ++c) d[c] += src[c];
        }
      }
    }
  }
  return {gx};
}

// col2im as an op of its own, for convolutions that keep only their input for the backward
// and rebuild the columns (see ops.conv2d_nhwc).
std::vector<paddle::Tensor> Col2imNhwc(const paddle::Tensor& x, const paddle::Tensor& cols, int k,
                                       int stride, int pad, int threads) {
  return Im2colNhwcBackward(x, cols, k, stride, pad, threads);
}

PD_BUILD_OP(col2im_nhwc)
    .Inputs({"X", "Cols"})
    .Outputs({"Out"})
    .Attrs({"k: int", "stride: int", "pad: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(Col2imNhwc));

PD_BUILD_OP(im2col_nhwc)
    .Inputs({"X"})
    .Outputs({"Cols"})
    .Attrs({"k: int", "stride: int", "pad: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(Im2colNhwcForward));

PD_BUILD_GRAD_OP(im2col_nhwc)
    .Inputs({"X", paddle::Grad("Cols")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"k: int", "stride: int", "pad: int", "threads: int"})
    .SetKernelFn(PD_KERNEL(Im2colNhwcBackward));
