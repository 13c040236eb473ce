//! Primitive layers as plain tensors, and the visitor that names them.
//!
//! Every network lists its tensors through [`Module::collect`] in the order of the
//! official `state_dict`, under the official key names. Loading, saving, optimizers and
//! the EMA all work on that list, so a state dict maps 1:1 and no mapping table exists.

use tch::{Device, Kind, Tensor};

/// Whether a tensor is trained (parameter) or fixed state (buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Param,
    Buffer,
}

/// One named tensor of a network. `tensor` shares storage with the network's own
/// tensor, so in-place updates through it change the network.
pub struct NamedTensor {
    pub name: String,
    pub tensor: Tensor,
    pub role: Role,
}

/// Appends the tensors of a module, in state-dict order, to `out`.
pub trait Module {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>);

    /// All tensors, named and ordered as the official state dict.
    fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        self.collect("", &mut out);
        out
    }

    /// Trainable parameters only, in state-dict order.
    fn parameters(&self) -> Vec<NamedTensor> {
        self.named_tensors().into_iter().filter(|t| t.role == Role::Param).collect()
    }

    /// Number of trainable scalars.
    fn num_params(&self) -> i64 {
        self.parameters().iter().map(|t| t.tensor.numel() as i64).sum()
    }
}

pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

pub(crate) fn push(out: &mut Vec<NamedTensor>, prefix: &str, name: &str, t: &Tensor, role: Role) {
    out.push(NamedTensor { name: join(prefix, name), tensor: t.shallow_clone(), role });
}

/// Where and in which precision new tensors are made.
#[derive(Clone, Copy, Debug)]
pub struct Init {
    pub device: Device,
    pub kind: Kind,
    /// He initialisation; off when the weights are about to be loaded from a checkpoint.
    pub random: bool,
    /// Tensors are allocated but never written (see [`Init::for_loading`]).
    pub uninitialised: bool,
}

impl Init {
    pub fn new(device: Device, kind: Kind) -> Self {
        Init { device, kind, random: true, uninitialised: false }
    }

    /// Networks whose every tensor a checkpoint will replace (`adopt_module`, which fails
    /// when any is missing): allocated, never written, so that their pages never become
    /// resident and the weights are not in memory twice while loading.
    pub fn for_loading(device: Device, kind: Kind) -> Self {
        Init { device, kind, random: false, uninitialised: true }
    }

    /// He (Kaiming) normal init with fan-in mode and ReLU gain, as the official `he_init`:
    /// std = sqrt(2 / fan_in).
    fn he_normal(&self, shape: &[i64], fan_in: i64) -> Tensor {
        if !self.random {
            return self.zeros(shape);
        }
        let std = (2.0 / fan_in as f64).sqrt();
        // In place: no temporary copy of the largest weights.
        let mut t = Tensor::randn(shape, (self.kind, self.device));
        t *= std;
        param(t)
    }

    fn zeros(&self, shape: &[i64]) -> Tensor {
        if self.uninitialised {
            return param(Tensor::empty(shape, (self.kind, self.device)));
        }
        param(Tensor::zeros(shape, (self.kind, self.device)))
    }

    fn ones(&self, shape: &[i64]) -> Tensor {
        if self.uninitialised {
            return param(Tensor::empty(shape, (self.kind, self.device)));
        }
        param(Tensor::ones(shape, (self.kind, self.device)))
    }
}

fn param(t: Tensor) -> Tensor {
    t.set_requires_grad(true)
}

/// The LeakyReLU slope used everywhere in StarGAN v2.
pub const LRELU_SLOPE: f64 = 0.2;

/// LeakyReLU(0.2) in one pass over memory.
///
/// tch binds ATen's `leaky_relu` only with PyTorch's default slope, so this calls the
/// kernel of its backward, `leaky_relu_backward(g, x, slope)` = g where x > 0, else
/// g·slope: with g = x that is exactly leaky_relu(x, 0.2). Its derivative with respect
/// to g is the same slope mask (and zero with respect to x), so autograd, including the
/// double backward of the R1 penalty, is exact.
pub fn lrelu(x: &Tensor) -> Tensor {
    x.leaky_relu_backward(x, LRELU_SLOPE, false)
}

/// [`lrelu`] of an intermediate the caller owns outright (no other handle to its
/// storage): overwritten in place when autograd records nothing for it, which saves an
/// allocation of the whole activation during inference.
pub fn lrelu_owned(x: Tensor) -> Tensor {
    if x.requires_grad() {
        lrelu(&x)
    } else {
        x.leaky_relu_backward_grad_input(&x, &x, LRELU_SLOPE, false)
    }
}

/// (a + b) / √2, the merge of a residual block's two paths, with a single new tensor:
/// the division happens in place on the fresh sum (safe under autograd, whose backward
/// of a scalar division needs neither operand's value).
pub fn merge_residual(a: &Tensor, b: &Tensor) -> Tensor {
    let mut sum = a + b;
    let _ = sum.g_div_scalar_(std::f64::consts::SQRT_2);
    sum
}

/// 2-D convolution with optional bias.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: i64,
    pub padding: i64,
}

impl Conv2d {
    pub fn new(init: &Init, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64, bias: bool) -> Self {
        Conv2d {
            weight: init.he_normal(&[c_out, c_in, k, k], c_in * k * k),
            bias: bias.then(|| init.zeros(&[c_out])),
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.bias.as_ref(), [self.stride], [self.padding], [1], 1)
    }

    /// The gradient with respect to the input of this (stride-1) convolution, given the
    /// gradient of its output: the transposed convolution with the same weights.
    pub fn input_grad(&self, g: &Tensor) -> Tensor {
        // A real check, in release builds too: with another stride the transposed
        // convolution below would be a different (wrong) adjoint.
        assert_eq!(self.stride, 1, "the explicit input gradient is written for stride-1 convolutions");
        g.conv_transpose2d(&self.weight, None::<Tensor>, [1], [self.padding], [0], 1, [1])
    }
}

impl Module for Conv2d {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "weight", &self.weight, Role::Param);
        if let Some(b) = &self.bias {
            push(out, prefix, "bias", b, Role::Param);
        }
    }
}

/// Fully connected layer y = x Wᵀ + b.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(init: &Init, d_in: i64, d_out: i64) -> Self {
        Linear { weight: init.he_normal(&[d_out, d_in], d_in), bias: init.zeros(&[d_out]) }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

impl Module for Linear {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "weight", &self.weight, Role::Param);
        push(out, prefix, "bias", &self.bias, Role::Param);
    }
}

pub const NORM_EPS: f64 = 1e-5;

/// Instance normalisation over H×W per sample and channel (biased variance, eps 1e-5),
/// with an optional learned affine transform (weight 1, bias 0 at init).
pub struct InstanceNorm {
    pub affine: Option<(Tensor, Tensor)>,
}

impl InstanceNorm {
    pub fn affine(init: &Init, channels: i64) -> Self {
        InstanceNorm { affine: Some((init.ones(&[channels]), init.zeros(&[channels]))) }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.affine {
            Some((w, b)) => {
                let n = x.size()[0];
                instance_norm(x, Some(&w.repeat([n])), Some(&b.repeat([n])))
            }
            None => instance_norm(x, None, None),
        }
    }
}

/// Instance normalisation of `x` (N×C×H×W), then a per-sample, per-channel affine
/// transform: `scale` and `shift` are flat N·C vectors (sample-major), or absent.
///
/// This is what ATen's `instance_norm` does (batch norm over x seen as 1×(N·C)×H×W,
/// with the affine repeated per sample), written out so that the affine can differ per
/// sample (AdaIN) and so that a channels-last `x` stays channels-last: ATen's version
/// makes x contiguous first, which costs a copy and hands the next convolution an NCHW
/// tensor for oneDNN to reorder again. With one sample (and any layout) the 1×C view is
/// x itself; a channels-last batch, which cannot be viewed that way, takes moments over
/// H×W and one fused multiply-add.
pub fn instance_norm(x: &Tensor, scale: Option<&Tensor>, shift: Option<&Tensor>) -> Tensor {
    let shape = x.size();
    let (n, c) = (shape[0], shape[1]);
    let cudnn = x.device().is_cuda();
    let batch_norm =
        |t: &Tensor| Tensor::batch_norm(t, scale, shift, None::<&Tensor>, None::<&Tensor>, true, 0.1, NORM_EPS, cudnn);
    if n == 1 {
        // x is its own 1×C view; no reshape, which could leave a size-1 dimension with a
        // stride that makes ATen stop recognising the channels-last layout.
        return batch_norm(x);
    }
    if !is_channels_last(x) {
        return batch_norm(&x.reshape([1, n * c, shape[2], shape[3]])).view(shape.as_slice());
    }
    let (var, mean) = x.var_mean_correction([2i64, 3].as_slice(), 0, true);
    // Out of place throughout: rsqrt's backward needs its own output.
    let inv_std = (var + NORM_EPS).rsqrt();
    let alpha = match scale {
        Some(w) => inv_std * w.view([n, c, 1, 1]),
        None => inv_std,
    };
    let beta = match shift {
        Some(b) => b.view([n, c, 1, 1]) - &mean * &alpha,
        None => -(&mean * &alpha),
    };
    beta.addcmul(x, &alpha)
}

/// True when `x` is a 4-D tensor stored channels-last (NHWC in memory). Strides of
/// dimensions of size 1 do not matter (ATen leaves them arbitrary).
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    if size.len() != 4 {
        return false;
    }
    let (n, c, h, w) = (size[0], size[1], size[2], size[3]);
    let fits = |dim: usize, expected: i64| size[dim] == 1 || stride[dim] == expected;
    c > 1 && fits(1, 1) && fits(3, c) && fits(2, w * c) && fits(0, h * w * c) && n >= 1
}

/// The same values stored channels-last (a copy unless they already are).
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if is_channels_last(x) {
        x.shallow_clone()
    } else {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    }
}

/// Whether activations should be channels-last for speed: oneDNN's float32 and bf16
/// convolutions on the CPU run directly on NHWC (no reorder of every input and output),
/// which makes them faster and needs no temporary copies. Float64 (the parity tests)
/// has no oneDNN path and stays NCHW, as does CUDA here.
pub fn prefers_channels_last(device: Device, kind: Kind) -> bool {
    device == Device::Cpu && matches!(kind, Kind::Float | Kind::BFloat16)
}

impl Module for InstanceNorm {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        if let Some((w, b)) = &self.affine {
            push(out, prefix, "weight", w, Role::Param);
            push(out, prefix, "bias", b, Role::Param);
        }
    }
}

/// Batch normalisation in evaluation mode (running statistics), as the FAN always runs.
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
}

impl BatchNorm {
    pub fn new(init: &Init, channels: i64) -> Self {
        let opts = (init.kind, init.device);
        BatchNorm {
            weight: Tensor::ones([channels], opts),
            bias: Tensor::zeros([channels], opts),
            running_mean: Tensor::zeros([channels], opts),
            running_var: Tensor::ones([channels], opts),
            num_batches_tracked: Tensor::zeros([], (Kind::Int64, init.device)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        Tensor::batch_norm(
            x,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            false,
            0.1,
            NORM_EPS,
            true,
        )
    }
}

impl Module for BatchNorm {
    fn collect(&self, prefix: &str, out: &mut Vec<NamedTensor>) {
        push(out, prefix, "weight", &self.weight, Role::Param);
        push(out, prefix, "bias", &self.bias, Role::Param);
        push(out, prefix, "running_mean", &self.running_mean, Role::Buffer);
        push(out, prefix, "running_var", &self.running_var, Role::Buffer);
        push(out, prefix, "num_batches_tracked", &self.num_batches_tracked, Role::Buffer);
    }
}

/// 2×2 average pooling with stride 2.
pub fn avg_pool2(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
}

/// Nearest-neighbour ×2 upsampling.
pub fn upsample2(x: &Tensor) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    x.upsample_nearest2d([2 * h, 2 * w], Some(2.0), Some(2.0))
}

/// Bilinear resize (align_corners = false, no antialias), as `F.interpolate(size=…)`.
pub fn resize_bilinear(x: &Tensor, size: i64) -> Tensor {
    x.upsample_bilinear2d([size, size], false, None::<f64>, None::<f64>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lrelu_is_leaky_relu_with_slope_0_2_and_its_gradient() {
        let x = Tensor::from_slice(&[-3.0f64, -0.5, 0.0, 0.25, 2.0]).set_requires_grad(true);
        let y = lrelu(&x);
        assert_eq!(Vec::<f64>::try_from(&y).unwrap(), [-3.0 * 0.2, -0.5 * 0.2, 0.0, 0.25, 2.0]);
        y.sum(Kind::Double).backward();
        // The slope at 0 is 0.2, as nn.LeakyReLU has it.
        assert_eq!(Vec::<f64>::try_from(&x.grad()).unwrap(), [0.2, 0.2, 0.2, 1.0, 1.0]);
    }

    #[test]
    fn lrelu_owned_overwrites_only_without_autograd() {
        let x = Tensor::from_slice(&[-1.0f32, 1.0]);
        let ptr = x.data_ptr();
        let y = lrelu_owned(x);
        assert_eq!(y.data_ptr(), ptr, "no new tensor without autograd");
        assert_eq!(Vec::<f32>::try_from(&y).unwrap(), [-0.2, 1.0]);

        let x = Tensor::from_slice(&[-1.0f32, 1.0]).set_requires_grad(true);
        let h = &x * 1.0;
        let y = lrelu_owned(h.shallow_clone());
        assert_eq!(Vec::<f32>::try_from(&h).unwrap(), [-1.0, 1.0], "a recorded tensor is left alone");
        y.sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(&x.grad()).unwrap(), [0.2, 1.0]);
    }

    #[test]
    fn channels_last_detection_and_conversion() {
        let x = Tensor::randn([2, 5, 3, 4], (Kind::Float, Device::Cpu));
        assert!(!is_channels_last(&x));
        let c = to_channels_last(&x);
        assert!(is_channels_last(&c));
        assert_eq!(c.stride(), [60, 1, 20, 5]);
        assert!(c.equal(&x), "same values");
        // A single sample: the batch stride does not matter.
        let one = c.narrow(0, 1, 1);
        assert!(is_channels_last(&one));
        assert!(!is_channels_last(&Tensor::zeros([5, 3], (Kind::Float, Device::Cpu))));
    }

    #[test]
    fn instance_norm_matches_aten_in_every_layout() {
        let x = Tensor::randn([3, 4, 5, 6], (Kind::Double, Device::Cpu)) * 3.0 + 1.0;
        let w = Tensor::randn([12], (Kind::Double, Device::Cpu));
        let b = Tensor::randn([12], (Kind::Double, Device::Cpu));
        let plain = Tensor::instance_norm(
            &x,
            None::<&Tensor>,
            None::<&Tensor>,
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.1,
            NORM_EPS,
            false,
        );
        let want = &plain * w.view([3, 4, 1, 1]) + b.view([3, 4, 1, 1]);
        for input in [x.shallow_clone(), to_channels_last(&x)] {
            let got = instance_norm(&input, Some(&w), Some(&b));
            let err = (&got - &want).abs().max().double_value(&[]);
            assert!(err < 1e-12, "max error {err}");
            assert_eq!(is_channels_last(&got), is_channels_last(&input), "layout kept");
            let err = (instance_norm(&input, None, None) - &plain).abs().max().double_value(&[]);
            assert!(err < 1e-12, "max error {err}");
        }
    }
}
