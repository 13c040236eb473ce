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
}

impl Init {
    pub fn new(device: Device, kind: Kind) -> Self {
        Init { device, kind, random: true }
    }

    /// Networks whose weights will be overwritten by a checkpoint: zeros, no random draws.
    pub fn for_loading(device: Device, kind: Kind) -> Self {
        Init { device, kind, random: false }
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
        param(Tensor::zeros(shape, (self.kind, self.device)))
    }

    fn ones(&self, shape: &[i64]) -> Tensor {
        param(Tensor::ones(shape, (self.kind, self.device)))
    }
}

fn param(t: Tensor) -> Tensor {
    t.set_requires_grad(true)
}

/// LeakyReLU with the slope 0.2 used everywhere in StarGAN v2.
pub fn lrelu(x: &Tensor) -> Tensor {
    // max(x, 0.2x) equals leaky_relu(x, 0.2) for every x, and its gradient is the
    // same slope mask (tch exposes leaky_relu only with PyTorch's default slope).
    x.maximum(&(x * 0.2))
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
        debug_assert_eq!(self.stride, 1);
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

    pub fn plain() -> Self {
        InstanceNorm { affine: None }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (w, b) = match &self.affine {
            Some((w, b)) => (Some(w), Some(b)),
            None => (None, None),
        };
        Tensor::instance_norm(x, w, b, None::<&Tensor>, None::<&Tensor>, true, 0.1, NORM_EPS, true)
    }
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
