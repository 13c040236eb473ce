//! Autocast (mixed precision) for the CPU and CUDA, with the op policy of PyTorch's
//! `torch.autocast`: while a guard lives, eligible operations (convolutions, matrix
//! products) run in the lower precision and precision-sensitive ones in float32. tch's
//! own `autocast` covers CUDA only.

use tch::{Device, Kind};

use super::{check, ffi, TorchError};

/// Autocast on `device` at `kind` (BFloat16 or Half) for the current thread, until drop,
/// which restores what was there before (guards nest). Tied to its thread (not `Send`):
/// the state it changes is the thread's.
pub struct AutocastGuard {
    device: i32,
    prev_enabled: bool,
    prev_dtype: i32,
    _thread: std::marker::PhantomData<*const ()>,
}

fn device_code(d: Device) -> i32 {
    if d.is_cuda() {
        1
    } else {
        0
    }
}

impl AutocastGuard {
    pub fn new(device: Device, kind: Kind) -> Result<Self, TorchError> {
        let dtype = match kind {
            Kind::BFloat16 => 15,
            Kind::Half => 5,
            other => return Err(TorchError(format!("autocast to {other:?}: use BFloat16 or Half"))),
        };
        let code = device_code(device);
        let (mut prev_enabled, mut prev_dtype) = (false, 0);
        // SAFETY: plain values and two out-parameters we own; the shim sets thread-local
        // autocast state.
        check(unsafe { ffi::stargan_autocast_push(code, dtype, &mut prev_enabled, &mut prev_dtype) })?;
        Ok(AutocastGuard { device: code, prev_enabled, prev_dtype, _thread: std::marker::PhantomData })
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        // SAFETY: as in new; restoring the state cannot fail in a way we could act on.
        let _ = check(unsafe { ffi::stargan_autocast_pop(self.device, self.prev_enabled, self.prev_dtype) });
    }
}

/// Whether autocast is on for `device` on this thread.
pub fn is_enabled(device: Device) -> bool {
    // SAFETY: reads thread-local state.
    unsafe { ffi::stargan_autocast_is_enabled(device_code(device)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn cpu_autocast_runs_matmul_and_conv_in_bf16_and_keeps_float32_elsewhere() {
        let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        let x = Tensor::randn([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([2, 3, 3, 3], (Kind::Float, Device::Cpu));
        assert!(!is_enabled(Device::Cpu));
        {
            let _g = AutocastGuard::new(Device::Cpu, Kind::BFloat16).unwrap();
            assert!(is_enabled(Device::Cpu));
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
            assert_eq!(x.conv2d(&w, None::<Tensor>, [1], [1], [1], 1).kind(), Kind::BFloat16);
            // Pointwise operations follow their inputs.
            assert_eq!((&a + 1.0).kind(), Kind::Float);
        }
        assert!(!is_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        assert!(AutocastGuard::new(Device::Cpu, Kind::Double).is_err());
        // Nested guards restore the outer one's state.
        {
            let _outer = AutocastGuard::new(Device::Cpu, Kind::BFloat16).unwrap();
            {
                let _inner = AutocastGuard::new(Device::Cpu, Kind::BFloat16).unwrap();
            }
            assert!(is_enabled(Device::Cpu), "still on after the inner guard");
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
        }
        assert!(!is_enabled(Device::Cpu));
    }
}
