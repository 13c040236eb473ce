// The C ABI of our libtorch shim (declared again, for Rust, in src/torch_ext/ffi.rs).
#pragma once
#include <cstddef>
#include <cstdint>

namespace at {
class Tensor;
}

extern "C" {
void stargan_free_error(char* e);
char* stargan_fused_adam(at::Tensor** params, at::Tensor** grads, at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                         at::Tensor** steps, size_t n, double lr, double beta1, double beta2, double weight_decay,
                         double eps);
char* stargan_foreach_lerp_into(at::Tensor** dst, at::Tensor** start, at::Tensor** end, size_t n, double weight);
char* stargan_foreach_add_scalar_(at::Tensor** ts, size_t n, double value);
char* stargan_autocast_push(int device, int dtype, bool* prev_enabled, int* prev_dtype);
char* stargan_autocast_pop(int device, bool prev_enabled, int prev_dtype);
bool stargan_autocast_is_enabled(int device);
void stargan_set_allow_tf32(bool allow);
bool stargan_cuda_peak_memory(int device, int64_t* peak_allocated, int64_t* peak_reserved);
void stargan_cuda_reset_peak_memory(int device);
}
