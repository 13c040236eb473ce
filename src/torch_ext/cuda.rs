//! Statistics of libtorch's CUDA caching allocator, which tch does not expose.

use super::ffi;

/// Peak bytes allocated and reserved on CUDA device `index` since the start (or the last
/// [`reset_peak_memory`]), as `torch.cuda.max_memory_allocated/reserved`; None without
/// CUDA support in this build.
pub fn peak_memory(index: usize) -> Option<(u64, u64)> {
    let (mut allocated, mut reserved) = (0i64, 0i64);
    // SAFETY: two out-parameters we own.
    let ok = unsafe { ffi::stargan_cuda_peak_memory(index as i32, &mut allocated, &mut reserved) };
    (ok && allocated >= 0).then_some((allocated as u64, reserved as u64))
}

/// Whether float32 matrix products and convolutions on CUDA may use TF32 (the default of
/// libtorch for convolutions; PyTorch's `torch.backends.*.allow_tf32`).
pub fn set_allow_tf32(allow: bool) {
    // SAFETY: plain value; sets libtorch's global context.
    unsafe { ffi::stargan_set_allow_tf32(allow) }
}

pub fn reset_peak_memory(index: usize) {
    // SAFETY: plain value.
    unsafe { ffi::stargan_cuda_reset_peak_memory(index as i32) }
}
