//! Applying a state dict to a network (with shape checks that name the likely wrong
//! flag) and inferring a model configuration from tensor shapes.

use std::collections::HashMap;

use tch::Tensor;

use super::{Checkpoint, CheckpointError};
use crate::config::ModelConfig;
use crate::model::blocks::HighPass;
use crate::model::{Module, DISCRIMINATOR, GENERATOR, MAPPING_NETWORK, STYLE_ENCODER};

/// A network's tensors by official key, in file order.
pub type StateDict = Vec<(String, Tensor)>;

/// The configuration flag that most likely explains a mismatch in tensor `name` of `net`.
fn hint(net: &str, name: &str) -> String {
    if name.contains("unshared") || (net == DISCRIMINATOR && name.ends_with(".bias") && !name.contains("conv")) {
        return "--num-domains (and --style-dim / --latent-dim)".into();
    }
    if net == DISCRIMINATOR && !name.contains("conv") {
        return "--num-domains".into();
    }
    match net {
        GENERATOR if name.starts_with("hpf") || name.starts_with("encode") || name.starts_with("decode") => {
            "--img-size and --w-hpf (AFHQ: --preset afhq, w_hpf 0; CelebA-HQ: --preset celeba-hq, w_hpf 1)".into()
        }
        MAPPING_NETWORK => "--latent-dim / --hidden-dim / --style-dim".into(),
        _ => "--img-size (and --preset)".into(),
    }
}

/// Copies the checkpoint's tensors into `module`. Every tensor of the module must be
/// present with the same shape, and the checkpoint may hold no tensor the module lacks;
/// the one exception is `hpf.filter`, which the released CelebA-HQ file predates and
/// which is recreated from `w_hpf`.
pub fn load_module(
    module: &dyn Module,
    net: &str,
    sd: &StateDict,
    path: &str,
    cfg: &ModelConfig,
) -> Result<(), CheckpointError> {
    let assignments = match_tensors(module, net, sd, path, cfg)?;
    tch::no_grad(|| {
        for (mut dst, src) in assignments {
            dst.copy_(&src);
        }
    });
    Ok(())
}

/// Like [`load_module`], with the same checks, but the module takes the checkpoint's
/// tensors over instead of copying them (converted first when the kind or device
/// differs), so the weights are never in memory twice. For inference: the state dict
/// is consumed, and networks that are never updated may share storage with it. The
/// module's own tensors can then be made with `Init::for_loading` (never initialised).
pub fn adopt_module(
    module: &dyn Module,
    net: &str,
    sd: StateDict,
    path: &str,
    cfg: &ModelConfig,
) -> Result<(), CheckpointError> {
    let assignments = match_tensors(module, net, &sd, path, cfg)?;
    drop(sd);
    tch::no_grad(|| {
        for (mut dst, src) in assignments {
            let src = src.to_device(dst.device()).to_kind(dst.kind());
            dst.set_data(&src);
        }
    });
    Ok(())
}

/// Pairs each tensor of `module` with its checkpoint tensor, checking names and shapes.
fn match_tensors(
    module: &dyn Module,
    net: &str,
    sd: &StateDict,
    path: &str,
    cfg: &ModelConfig,
) -> Result<Vec<(Tensor, Tensor)>, CheckpointError> {
    let by_name: HashMap<&str, &Tensor> = sd.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let targets = module.named_tensors();
    let mut used = 0usize;
    let assignments: Vec<(Tensor, Tensor)> = {
        let mut v = Vec::with_capacity(targets.len());
        for t in &targets {
            let src = match by_name.get(t.name.as_str()) {
                Some(s) => {
                    used += 1;
                    (*s).shallow_clone()
                }
                None if net == GENERATOR && t.name == "hpf.filter" => HighPass::kernel(cfg.w_hpf),
                None => {
                    return Err(CheckpointError::MissingTensor {
                        path: path.into(),
                        net: net.into(),
                        name: t.name.clone(),
                        hint: hint(net, &t.name),
                    })
                }
            };
            if src.size() != t.tensor.size() {
                return Err(CheckpointError::ShapeMismatch {
                    path: path.into(),
                    net: net.into(),
                    name: t.name.clone(),
                    expected: t.tensor.size(),
                    found: src.size(),
                    hint: hint(net, &t.name),
                });
            }
            v.push((t.tensor.shallow_clone(), src));
        }
        v
    };
    if used < sd.len() {
        let known: std::collections::HashSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        let extra: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).filter(|k| !known.contains(k)).collect();
        return Err(CheckpointError::UnexpectedTensors {
            path: path.into(),
            net: net.into(),
            examples: extra.iter().take(4).copied().collect::<Vec<_>>().join(", "),
            hint: hint(net, extra[0]),
        });
    }
    Ok(assignments)
}

fn shape(sd: &StateDict, key: &str) -> Option<Vec<i64>> {
    sd.iter().find(|(k, _)| k == key).map(|(_, t)| t.size())
}

/// Infers the model configuration of an official checkpoint from its tensor shapes.
pub fn infer_config(ckpt: &Checkpoint) -> Result<ModelConfig, CheckpointError> {
    let err = |what: &str| CheckpointError::Invalid {
        path: ckpt.path.clone(),
        what: format!("cannot infer the model configuration: {what}; pass --preset or the config flags"),
    };
    let g = ckpt.net(GENERATOR)?;
    let dim_in = shape(g, "from_rgb.weight").ok_or_else(|| err("generator.from_rgb.weight missing"))?[0];
    let encode_blocks =
        g.iter().filter(|(k, _)| k.starts_with("encode.") && k.ends_with(".conv1.weight")).count() as i64;
    let max_conv_dim = g
        .iter()
        .filter(|(k, t)| k.ends_with("conv2.weight") && t.dim() == 4)
        .map(|(_, t)| t.size()[0])
        .max()
        .ok_or_else(|| err("no generator convolutions"))?;

    // The style encoder's ResBlks go from img_size to 4 px: R = log2(img) - 2.
    let (img_size, num_domains, style_dim) = if let Ok(e) = ckpt.net(STYLE_ENCODER) {
        let resblks = e.iter().filter(|(k, _)| k.starts_with("shared.") && k.ends_with(".conv1.weight")).count() as i64;
        let k = e.iter().filter(|(k, _)| k.starts_with("unshared.") && k.ends_with(".weight")).count() as i64;
        let s = shape(e, "unshared.0.weight").ok_or_else(|| err("style_encoder.unshared.0.weight missing"))?[0];
        (1i64 << (resblks + 2), k, s)
    } else {
        // G alone: assume no high-pass path.
        (1i64 << (encode_blocks - 2 + 4), 0, 0)
    };
    let repeat = encode_blocks - 2;
    let log2 = 63 - img_size.leading_zeros() as i64;
    let w_hpf = if repeat == log2 - 3 {
        match g.iter().find(|(k, _)| k == "hpf.filter") {
            Some((_, f)) => 8.0 / f.double_value(&[1, 1]),
            None => 1.0,
        }
    } else {
        0.0
    };
    let (latent_dim, hidden_dim, num_domains, style_dim) = match ckpt.net(MAPPING_NETWORK) {
        Ok(f) => {
            let s0 = shape(f, "shared.0.weight").ok_or_else(|| err("mapping_network.shared.0.weight missing"))?;
            let k = f.iter().filter(|(k, _)| k.starts_with("unshared.") && k.ends_with(".0.weight")).count() as i64;
            (s0[1], s0[0], if num_domains > 0 { num_domains } else { k }, style_dim)
        }
        Err(_) => (16, 512, num_domains, style_dim),
    };
    let cfg = ModelConfig { img_size, num_domains, latent_dim, style_dim, hidden_dim, dim_in, max_conv_dim, w_hpf };
    cfg.validate().map_err(|e| err(&e.to_string()))?;
    Ok(cfg)
}
