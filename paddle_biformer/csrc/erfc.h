// Shared by the C++ kernels: the exponent of Numerical Recipes' Chebyshev fit of erfc
// ("erfcc", fractional error < 1.2e-7 everywhere): for a >= 0 and t = 1 / (1 + a / 2),
//   erfc(a) = t * exp(ErfccExponent(t) - a * a).
// Each kernel file pairs it with its own exp approximation.
#pragma once

namespace paddle_biformer {

inline float ErfccExponent(float t) {
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return p;
}

}  // namespace paddle_biformer
