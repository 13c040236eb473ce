// ATen operations that tch does not bind: the fused Adam kernel, foreach kernels for the
// EMA, and autocast on the CPU. A C ABI for src/torch_ext/: tensors travel as the
// at::Tensor pointers that tch's Tensor wraps; every function returns nullptr on success
// or a malloc'd message (freed by stargan_free_error) instead of letting a C++ exception
// cross into Rust.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shim.h"

namespace {

char* error_message(const char* what) {
  char* out = static_cast<char*>(std::malloc(std::strlen(what) + 1));
  if (out != nullptr) std::strcpy(out, what);
  return out;
}

std::vector<at::Tensor> tensors(at::Tensor** ts, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

template <typename F>
char* guarded(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error& e) {
    return error_message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return error_message(e.what());
  } catch (...) {
    return error_message("unknown C++ exception");
  }
}

}  // namespace

extern "C" {

void stargan_free_error(char* e) { std::free(e); }

char* stargan_fused_adam(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                         at::Tensor** steps, size_t n, double lr, double beta1, double beta2, double weight_decay,
                         double eps) {
  return guarded([&] {
    auto p = tensors(params, n), g = tensors(grads, n), m = tensors(exp_avgs, n), v = tensors(exp_avg_sqs, n),
         s = tensors(steps, n);
    std::vector<at::Tensor> none;
    at::NoGradGuard no_grad;
    at::_fused_adam_(p, g, m, v, none, s, lr, beta1, beta2, weight_decay, eps, /*amsgrad=*/false,
                     /*maximize=*/false);
  });
}

char* stargan_foreach_lerp_into(at::Tensor** dst, at::Tensor** start, at::Tensor** end, size_t n, double weight) {
  return guarded([&] {
    auto d = tensors(dst, n), a = tensors(start, n), b = tensors(end, n);
    at::NoGradGuard no_grad;
    auto out = at::_foreach_lerp(a, b, at::Scalar(weight));
    at::_foreach_copy_(d, out);
  });
}

char* stargan_foreach_add_scalar_(at::Tensor** ts, size_t n, double value) {
  return guarded([&] {
    auto t = tensors(ts, n);
    at::NoGradGuard no_grad;
    at::_foreach_add_(t, at::Scalar(value));
  });
}

// Autocast on `device` (0 = CPU, 1 = CUDA) at `dtype` (a c10::ScalarType number:
// BFloat16 = 15, Half = 5) for this thread; the previous state comes back in *prev_*
// for stargan_autocast_pop to restore (guards nest).
char* stargan_autocast_push(int device, int dtype, bool* prev_enabled, int* prev_dtype) {
  return guarded([&] {
    auto dev = device == 1 ? at::kCUDA : at::kCPU;
    *prev_enabled = at::autocast::is_autocast_enabled(dev);
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(dev));
    at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(dev, true);
    at::autocast::increment_nesting();
  });
}

char* stargan_autocast_pop(int device, bool prev_enabled, int prev_dtype) {
  return guarded([&] {
    auto dev = device == 1 ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_dtype(dev, static_cast<at::ScalarType>(prev_dtype));
    at::autocast::set_autocast_enabled(dev, prev_enabled);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  });
}

// TF32 for float32 matrix products (cuBLAS) and convolutions (cuDNN).
void stargan_set_allow_tf32(bool allow) {
  at::globalContext().setAllowTF32CuBLAS(allow);
  at::globalContext().setAllowTF32CuDNN(allow);
}

bool stargan_autocast_is_enabled(int device) {
  return at::autocast::is_autocast_enabled(device == 1 ? at::kCUDA : at::kCPU);
}

}  // extern "C"
