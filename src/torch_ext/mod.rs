//! What libtorch has and tch does not bind, through our C++ shim (`src/shim/`, compiled
//! by build.rs): the fused Adam kernel, foreach kernels, and autocast on the CPU. The
//! c10d process groups use the same shim from [`crate::dist`].
//!
//! Every call passes tch tensors as the `at::Tensor` pointers they wrap and gets back
//! either nothing or the C++ exception's message, as a `Result`.

use std::ffi::{c_char, CStr};

use tch::Tensor;

pub mod autocast;
pub mod cuda;
pub(crate) mod ffi;
pub mod ops;

/// A failed libtorch call, with libtorch's message.
#[derive(Debug, thiserror::Error)]
#[error("libtorch: {0}")]
pub struct TorchError(pub String);

/// Turns the shim's error convention (null = success, else a message we must free)
/// into a `Result`.
pub(crate) fn check(err: *mut c_char) -> Result<(), TorchError> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string malloc'd by the shim, which
    // we free exactly once, after copying it.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { ffi::stargan_free_error(err) };
    Err(TorchError(msg))
}

/// The `at::Tensor*` behind each tch tensor, for the duration of a call that borrows
/// the tensors.
pub(crate) fn ptrs(ts: &[&Tensor]) -> Vec<*mut ffi::CTensor> {
    ts.iter().map(|t| t.as_ptr() as *mut ffi::CTensor).collect()
}
