//! One training iteration, in the official order (reference.md §2.2):
//! D step (latent style), D step (reference style), G step (latent styles; updates G, F
//! and E), G step (reference styles; updates G), EMA of G/F/E, then λ_ds decays.
//!
//! The step takes networks, optimizers and a batch and returns the loss values; it does
//! no I/O. Gradients are taken with `autograd.grad` for exactly the parameters that the
//! step updates, which equals PyTorch's clear-to-absent + backward + step: a parameter
//! that the loss does not reach gets an absent gradient and its optimizer skips it.

use std::sync::atomic::{AtomicUsize, Ordering};

use tch::{Device, Kind, Tensor};

use super::config::TrainConfig;
use super::losses::{adv_loss, l1, r1_from_gradient, r1_reg};
use super::optim::Optimizers;
use super::{ema, Models};
use crate::dist::ProcessGroup;
use crate::model::Masks;
use crate::torch_ext::autocast::AutocastGuard;

/// The inputs of one iteration.
pub struct Batch {
    /// Source images and their domains.
    pub x_real: Tensor,
    pub y_org: Tensor,
    /// Two reference images of the target domain y_trg.
    pub x_ref: Tensor,
    pub x_ref2: Tensor,
    pub y_trg: Tensor,
    /// Two latent codes.
    pub z_trg: Tensor,
    pub z_trg2: Tensor,
}

/// The logged loss terms of one iteration, as 0-d tensors (no host synchronisation
/// until they are read).
#[derive(Debug)]
pub struct Losses {
    pub terms: Vec<(&'static str, Tensor)>,
    pub lambda_ds_used: f64,
}

/// Reads from the device to the host made by the training loop (each one waits for the
/// device to finish its queued work): a debug counter that tests use to check the loop
/// reads once per step.
static HOST_READS: AtomicUsize = AtomicUsize::new(0);

/// How many times the training loop has read values back to the host so far.
pub fn host_reads() -> usize {
    HOST_READS.load(Ordering::Relaxed)
}

/// A tensor's values on the host, in one transfer (counted in [`host_reads`]).
pub fn read_to_host(t: &Tensor) -> Vec<f64> {
    HOST_READS.fetch_add(1, Ordering::Relaxed);
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1]).to_device(Device::Cpu)).unwrap_or_default()
}

impl Losses {
    /// Names and values, read in one transfer (a host synchronisation).
    pub fn values(&self) -> Vec<(&'static str, f64)> {
        let v = read_to_host(&self.stacked());
        self.terms.iter().map(|(n, _)| *n).zip(v).collect()
    }

    /// The terms as one float64 vector on their device.
    fn stacked(&self) -> Tensor {
        let v: Vec<Tensor> = self.terms.iter().map(|(_, t)| t.to_kind(Kind::Double).reshape([1])).collect();
        Tensor::cat(&v, 0)
    }

    /// The terms followed by `extra`, for one all-reduce that carries them and a flag.
    pub fn stacked_with(&self, extra: f64) -> Tensor {
        let s = self.stacked();
        let flag = Tensor::from(extra).to_device(s.device()).reshape([1]);
        Tensor::cat(&[s, flag], 0)
    }

    /// Whether every term is finite: one fused reduction and a single read.
    pub fn all_finite(&self) -> bool {
        let finite = self.stacked().isfinite().all();
        read_to_host(&finite).first().is_some_and(|v| *v != 0.0)
    }
}

/// Where the target style comes from.
enum StyleSource<'a> {
    Latent(&'a Tensor, &'a Tensor),
    Reference(&'a Tensor, &'a Tensor),
}

/// The gradients of `loss` for `params` (absent where the loss does not reach a
/// parameter), averaged over the processes of a data-parallel run. A gradient is absent
/// for structural reasons only, so every rank skips the same ones.
fn grads(loss: &Tensor, params: &[Tensor], sync: Option<&ProcessGroup>) -> anyhow::Result<Vec<Tensor>> {
    let g = Tensor::run_backward(&[loss], params, false, false);
    if let Some(group) = sync {
        let defined: Vec<&Tensor> = g.iter().filter(|t| t.defined()).collect();
        group.all_reduce_mean(&defined)?;
    }
    Ok(g)
}

/// How the R1 penalty's input gradient is computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum R1Mode {
    /// D's input gradient as an explicit graph of transposed convolutions, slope masks
    /// and pooling adjoints, differentiated with first-order autograd (the default:
    /// equal to double backward in float64, tested to 1e-12 for the penalty and 1e-10 for
    /// its gradients, and faster).
    #[default]
    Explicit,
    /// The reference: autograd's input gradient with create_graph, then double backward
    /// through the convolutions, as the official code does. The fallback if D changes.
    DoubleBackward,
}

/// What a step needs besides the models and the batch.
#[derive(Clone, Copy, Default)]
pub struct StepOptions<'a> {
    /// The data-parallel group: gradients are averaged over it.
    pub sync: Option<&'a ProcessGroup>,
    /// bfloat16 autocast on this device for the forward passes.
    pub mixed: Option<Device>,
    pub r1: R1Mode,
}

/// Autocast for the forward passes of a bf16 run (None: the parameters' own type).
fn autocast(device: Option<Device>) -> Result<Option<AutocastGuard>, crate::torch_ext::TorchError> {
    device.map(|d| AutocastGuard::new(d, Kind::BFloat16)).transpose()
}

/// Discriminator loss of one branch: real + fake + λ_reg · R1.
fn d_loss(
    m: &Models,
    cfg: &TrainConfig,
    b: &Batch,
    x_real: &Tensor,
    src: StyleSource,
    masks: Option<&Masks>,
    o: &StepOptions,
) -> anyhow::Result<(Tensor, [Tensor; 3])> {
    // Always in the parameters' precision (float32 in a bf16 run): the penalty is a
    // squared gradient, and bfloat16's 8-bit mantissa would swamp it.
    let (loss_real, loss_reg) = match o.r1 {
        R1Mode::Explicit => {
            // D's input gradient as an explicit graph: the same R1 as create_graph double
            // backward (tested in float64: penalty to 1e-12, gradients to 1e-10) without
            // second-order kernels.
            let (out, grad) = m.discriminator.forward_with_input_grad(x_real, &b.y_org);
            (adv_loss(&out, 1.0), r1_from_gradient(&grad))
        }
        R1Mode::DoubleBackward => {
            let x = x_real.detach().set_requires_grad(true);
            let out = m.discriminator.forward(&x, &b.y_org);
            (adv_loss(&out, 1.0), r1_reg(&out, &x))
        }
    };
    let mixed = o.mixed;
    let out = {
        let _mixed = autocast(mixed)?;
        let x_fake = tch::no_grad(|| {
            let s_trg = match src {
                StyleSource::Latent(z, _) => m.nets.mapping_network.forward(z, &b.y_trg),
                StyleSource::Reference(x, _) => m.nets.style_encoder.forward(x, &b.y_trg),
            };
            m.nets.generator.forward(x_real, &s_trg, masks)
        });
        m.discriminator.forward(&x_fake, &b.y_trg)
    };
    let loss_fake = adv_loss(&out, 0.0);
    let loss = &loss_real + &loss_fake + &loss_reg * cfg.lambda_reg;
    Ok((loss, [loss_real.detach(), loss_fake.detach(), loss_reg.detach()]))
}

/// Generator loss of one branch: adv + λ_sty·sty − λ_ds·ds + λ_cyc·cyc. The forward
/// passes run under autocast in a bf16 run; the loss terms are computed in float32.
fn g_loss(
    m: &Models,
    cfg: &TrainConfig,
    lambda_ds: f64,
    b: &Batch,
    src: StyleSource,
    masks: Option<&Masks>,
    mixed: Option<Device>,
) -> anyhow::Result<(Tensor, [Tensor; 4])> {
    let _mixed = autocast(mixed)?;
    let (f, e, g) = (&m.nets.mapping_network, &m.nets.style_encoder, &m.nets.generator);
    let (s_trg, s_trg2) = match src {
        StyleSource::Latent(z1, z2) => (f.forward(z1, &b.y_trg), tch::no_grad(|| f.forward(z2, &b.y_trg))),
        StyleSource::Reference(x1, x2) => (e.forward(x1, &b.y_trg), tch::no_grad(|| e.forward(x2, &b.y_trg))),
    };
    let x_fake = g.forward(&b.x_real, &s_trg, masks);
    let loss_adv = adv_loss(&m.discriminator.forward(&x_fake, &b.y_trg), 1.0);

    let s_pred = e.forward(&x_fake, &b.y_trg);
    let loss_sty = l1(&s_pred, &s_trg);

    // The second output is detached in the official code: no gradient reaches s_trg2.
    let x_fake2 = tch::no_grad(|| g.forward(&b.x_real, &s_trg2, masks));
    let loss_ds = l1(&x_fake, &x_fake2);

    let masks_fake = m.fan.as_ref().map(|fan| fan.masks(&x_fake));
    let s_org = e.forward(&b.x_real, &b.y_org);
    let x_rec = g.forward(&x_fake, &s_org, masks_fake.as_ref());
    let loss_cyc = l1(&x_rec, &b.x_real);

    let loss = &loss_adv + &loss_sty * cfg.lambda_sty - &loss_ds * lambda_ds + &loss_cyc * cfg.lambda_cyc;
    Ok((loss, [loss_adv.detach(), loss_sty.detach(), loss_ds.detach(), loss_cyc.detach()]))
}

/// Runs one full iteration and advances `lambda_ds` (the current λ_ds). With `sync`,
/// this process holds its slice of the global batch and every gradient is averaged over
/// the processes before each optimizer step. Fails only if a multi-tensor kernel does
/// (an unsupported type or device) or a collective does (a lost peer).
pub fn train_step(
    m: &Models,
    opt: &mut Optimizers,
    cfg: &TrainConfig,
    lambda_ds: &mut f64,
    b: &Batch,
    sync: Option<&ProcessGroup>,
) -> anyhow::Result<Losses> {
    train_step_with(m, opt, cfg, lambda_ds, b, &StepOptions { sync, ..StepOptions::default() })
}

/// [`train_step`] with options: bfloat16 autocast for the forward passes (it ends
/// before each backward pass), and the way R1 is computed.
pub fn train_step_with(
    m: &Models,
    opt: &mut Optimizers,
    cfg: &TrainConfig,
    lambda_ds: &mut f64,
    b: &Batch,
    o: &StepOptions,
) -> anyhow::Result<Losses> {
    let (sync, mixed) = (o.sync, o.mixed);
    let masks = m.fan.as_ref().map(|fan| fan.masks(&b.x_real));
    let masks = masks.as_ref();
    let x_real = b.x_real.detach();
    let lambda_ds_used = *lambda_ds;
    let mut terms: Vec<(&'static str, Tensor)> = Vec::with_capacity(14);

    // 1-2. Discriminator, with a latent then a reference style for the fakes.
    let d_params = opt.discriminator.tensors();
    for (prefix, src) in
        [("D/latent", StyleSource::Latent(&b.z_trg, &b.z_trg2)), ("D/ref", StyleSource::Reference(&b.x_ref, &b.x_ref2))]
    {
        let (loss, [real, fake, reg]) = d_loss(m, cfg, b, &x_real, src, masks, o)?;
        opt.discriminator.step(&grads(&loss, &d_params, sync)?)?;
        let names: [&'static str; 3] = if prefix == "D/latent" {
            ["D/latent_real", "D/latent_fake", "D/latent_reg"]
        } else {
            ["D/ref_real", "D/ref_fake", "D/ref_reg"]
        };
        terms.extend(names.into_iter().zip([real, fake, reg]));
    }

    // 3. Generator with latent styles: G, F and E are updated.
    let (loss, [adv, sty, ds, cyc]) =
        g_loss(m, cfg, lambda_ds_used, b, StyleSource::Latent(&b.z_trg, &b.z_trg2), masks, mixed)?;
    let (ng, nf) = (opt.generator.params.len(), opt.mapping_network.params.len());
    let mut params = opt.generator.tensors();
    params.extend(opt.mapping_network.tensors());
    params.extend(opt.style_encoder.tensors());
    let all = grads(&loss, &params, sync)?;
    opt.generator.step(&all[..ng])?;
    opt.mapping_network.step(&all[ng..ng + nf])?;
    opt.style_encoder.step(&all[ng + nf..])?;
    terms.extend(["G/latent_adv", "G/latent_sty", "G/latent_ds", "G/latent_cyc"].into_iter().zip([adv, sty, ds, cyc]));

    // 4. Generator with reference styles: only G is updated.
    let (loss, [adv, sty, ds, cyc]) =
        g_loss(m, cfg, lambda_ds_used, b, StyleSource::Reference(&b.x_ref, &b.x_ref2), masks, mixed)?;
    opt.generator.step(&grads(&loss, &opt.generator.tensors(), sync)?)?;
    terms.extend(["G/ref_adv", "G/ref_sty", "G/ref_ds", "G/ref_cyc"].into_iter().zip([adv, sty, ds, cyc]));

    // 5. EMA, then 6. the linear decay of λ_ds.
    ema::update(&m.nets.generator, &m.ema.generator, cfg.ema_beta)?;
    ema::update(&m.nets.mapping_network, &m.ema.mapping_network, cfg.ema_beta)?;
    ema::update(&m.nets.style_encoder, &m.ema.style_encoder, cfg.ema_beta)?;
    if *lambda_ds > 0.0 {
        *lambda_ds -= cfg.lambda_ds / cfg.ds_iter as f64;
    }
    Ok(Losses { terms, lambda_ds_used })
}
