//! The C ABI of `src/shim/` (see `src/shim/shim.h`).

use std::ffi::c_char;

/// `at::Tensor`, opaque.
#[repr(C)]
pub struct CTensor {
    _private: [u8; 0],
}

/// A c10d store and process group, opaque.
#[repr(C)]
pub struct CGroup {
    _private: [u8; 0],
}

extern "C" {
    pub fn stargan_free_error(e: *mut c_char);
    #[allow(clippy::too_many_arguments)]
    pub fn stargan_fused_adam(
        params: *const *mut CTensor,
        grads: *const *mut CTensor,
        exp_avgs: *const *mut CTensor,
        exp_avg_sqs: *const *mut CTensor,
        steps: *const *mut CTensor,
        n: usize,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
    ) -> *mut c_char;
    pub fn stargan_foreach_lerp_into(
        dst: *const *mut CTensor,
        start: *const *mut CTensor,
        end: *const *mut CTensor,
        n: usize,
        weight: f64,
    ) -> *mut c_char;
    pub fn stargan_foreach_add_scalar_(ts: *const *mut CTensor, n: usize, value: f64) -> *mut c_char;
    pub fn stargan_autocast_push(device: i32, dtype: i32, prev_enabled: *mut bool, prev_dtype: *mut i32)
        -> *mut c_char;
    pub fn stargan_autocast_pop(device: i32, prev_enabled: bool, prev_dtype: i32) -> *mut c_char;
    pub fn stargan_autocast_is_enabled(device: i32) -> bool;
    pub fn stargan_set_allow_tf32(allow: bool);
    pub fn stargan_cuda_peak_memory(device: i32, peak_allocated: *mut i64, peak_reserved: *mut i64) -> bool;
    pub fn stargan_cuda_reset_peak_memory(device: i32);

    pub fn stargan_nccl_built() -> bool;
    #[allow(clippy::too_many_arguments)]
    pub fn stargan_group_new(
        backend: i32,
        store_kind: i32,
        host_or_path: *const c_char,
        port: i32,
        is_server: bool,
        rank: i32,
        size: i32,
        timeout_ms: i64,
        prefix: *const c_char,
        out: *mut *mut CGroup,
    ) -> *mut c_char;
    pub fn stargan_group_free(g: *mut CGroup);
    pub fn stargan_group_allreduce_sum(g: *mut CGroup, ts: *const *mut CTensor, n: usize) -> *mut c_char;
    pub fn stargan_group_broadcast(g: *mut CGroup, ts: *const *mut CTensor, n: usize, root: i32) -> *mut c_char;
    pub fn stargan_group_barrier(g: *mut CGroup) -> *mut c_char;
}
