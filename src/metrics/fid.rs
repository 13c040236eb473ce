//! FID: pool3 features of the TF Inception-v3 (2015-12-05, as TorchScript) and the
//! Fréchet distance between two Gaussians fitted to them, in float64.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::imaging;
use crate::model::layers;

/// Part of every feature-cache key: bumped whenever the input protocol (resizing,
/// scaling) changes, so that features made the old way are not reused.
const FEATURES_VERSION: &str = "tf-inception pool3, 256→299 bilinear, (x-128)/128, v1";

/// Side of the Inception input.
pub const INCEPTION_SIZE: u32 = 299;

pub struct Inception {
    module: tch::CModule,
    device: Device,
    /// Identifies the weights file (path, size, modification time) for feature caches.
    id: String,
}

impl Inception {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        // The profiling executor would re-specialise the graph for every new batch size
        // (the last batch of each folder differs); plain execution is as fast and
        // predictable for a fixed convolutional network.
        tch::jit::set_profiling_mode(false);
        tch::jit::set_graph_executor_optimize(false);
        let mut module = tch::CModule::load_on_device(path, device)
            .with_context(|| format!("{} is not a loadable TorchScript Inception network", path.display()))?;
        module.set_eval();
        if layers::prefers_channels_last(device, Kind::Float) {
            // oneDNN runs the convolutions on channels-last data without reordering each
            // input and output: 15–20 % less time per image on the CPU
            // (examples/inception_speed.rs), same features to ~1e-5.
            tch::no_grad(|| -> Result<()> {
                for (_, mut p) in module.named_parameters()? {
                    if p.dim() == 4 {
                        let cl = layers::to_channels_last(&p);
                        p.set_data(&cl);
                    }
                }
                Ok(())
            })?;
        }
        Ok(Inception { module, device, id: file_identity(path) })
    }

    /// 2048-d features of inputs N×3×299×299 already scaled to (x − 128) / 128.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.to_device(self.device).to_kind(Kind::Float);
        if layers::prefers_channels_last(self.device, Kind::Float) {
            x = layers::to_channels_last(&x);
        }
        let n = x.size()[0];
        let out = tch::no_grad(|| self.module.forward_ts(&[x]))?;
        Ok(out.view([n, -1]))
    }
}

/// The input protocol: resize to 256×256, then to 299×299 (bilinear, antialiased), as
/// 8-bit values, scaled to (x − 128) / 128.
pub fn preprocess(img: &RgbImage) -> Tensor {
    let img = imaging::resize(&imaging::resize(img, 256, 256), INCEPTION_SIZE, INCEPTION_SIZE);
    let data: Vec<f32> = img.as_raw().iter().map(|&v| (v as f32 - 128.0) / 128.0).collect();
    let s = INCEPTION_SIZE as i64;
    Tensor::from_slice(&data).view([s, s, 3]).permute([2, 0, 1])
}

/// Path, size and modification time of a file: what a cache entry depends on.
fn file_identity(path: &Path) -> String {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let meta = std::fs::metadata(path).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}|{}|{mtime}", canon.display(), meta.map(|m| m.len()).unwrap_or(0))
}

/// Inputs of a batch of images, decoded and resized on all cores (the resizes to 256 and
/// 299 px cost about as much as the network at small image sizes).
fn preprocess_all(images: &[RgbImage]) -> Tensor {
    use rayon::prelude::*;
    let xs: Vec<Tensor> = images.par_iter().map(preprocess).collect();
    Tensor::stack(&xs, 0)
}

/// Features (float64, N×2048) of image files, in batches.
pub fn features_of_files(net: &Inception, files: &[PathBuf], batch: usize, progress: &dyn Fn(usize)) -> Result<Tensor> {
    use rayon::prelude::*;
    let mut feats = Vec::new();
    for chunk in files.chunks(batch.max(1)) {
        let images: Vec<RgbImage> = chunk.par_iter().map(|p| imaging::load_rgb(p)).collect::<Result<_>>()?;
        feats.push(net.features(&preprocess_all(&images))?.to_kind(Kind::Double).to_device(Device::Cpu));
        progress(chunk.len());
    }
    Ok(Tensor::cat(&feats, 0))
}

/// [`features_of_files`], cached in `cache` (when given) under a key made of the
/// Inception weights and every file's path, size and modification time: the features of
/// a training set are computed once, not at every evaluation.
pub fn cached_features_of_files(
    net: &Inception,
    files: &[PathBuf],
    batch: usize,
    cache: Option<&Path>,
    progress: &dyn Fn(usize),
) -> Result<Tensor> {
    let Some(dir) = cache else {
        return features_of_files(net, files, batch, progress);
    };
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(FEATURES_VERSION.as_bytes());
        h.update(net.id.as_bytes());
        for f in files {
            h.update(b"\n");
            h.update(file_identity(f).as_bytes());
        }
        hex::encode(h.finalize())[..32].to_string()
    };
    let path = dir.join(format!("inception-{key}.safetensors"));
    if let Ok(v) = Tensor::read_safetensors(&path) {
        if let Some((_, t)) = v.into_iter().find(|(n, t)| n == "features" && t.size() == [files.len() as i64, 2048]) {
            progress(files.len());
            return Ok(t.to_kind(Kind::Double));
        }
    }
    let feats = features_of_files(net, files, batch, progress)?;
    // The network computes in float32: storing float32 loses nothing. A failed write only
    // costs the recomputation next time.
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join(format!(".inception-{key}.tmp-{}", std::process::id()));
    if Tensor::write_safetensors(&[("features", &feats.to_kind(Kind::Float))], &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    } else {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(feats)
}

/// Features of images given as tensors in [-1, 1], quantised to 8 bits first as when
/// generated images are saved and read back.
pub fn features_of_tensors(net: &Inception, x: &Tensor) -> Result<Tensor> {
    Ok(net.features(&preprocess_all(&imaging::to_images(x)))?.to_kind(Kind::Double).to_device(Device::Cpu))
}

/// Mean and covariance (unbiased, rows = samples) of features.
pub struct Gaussian {
    pub mu: Tensor,
    pub sigma: Tensor,
    /// With fewer samples than dimensions: A with Σ = AᵀA (the centred samples / √(n−1)).
    pub factor: Option<Tensor>,
}

pub fn fit(features: &Tensor) -> Gaussian {
    let f = features.to_kind(Kind::Double);
    let (n, d) = (f.size()[0], f.size()[1]);
    let mu = f.mean_dim([0i64].as_slice(), false, None::<Kind>);
    let a = (&f - &mu) / ((n - 1).max(1) as f64).sqrt();
    let sigma = a.transpose(0, 1).matmul(&a);
    Gaussian { mu, sigma, factor: (n <= d).then_some(a) }
}

/// Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0).
fn psd_sqrt(m: &Tensor) -> Tensor {
    let (vals, vecs) = m.linalg_eigh("L");
    let s = vals.clamp_min(0.0).sqrt();
    (&vecs * s.unsqueeze(0)).matmul(&vecs.transpose(0, 1))
}

/// Tr((Σ₁Σ₂)^½) as the sum of square roots of the eigenvalues of the symmetric
/// Σ₁^½ Σ₂ Σ₁^½ (same spectrum as Σ₁Σ₂), which stays real and stable when the
/// covariances are singular.
pub fn trace_sqrt_product_eigen(s1: &Tensor, s2: &Tensor) -> f64 {
    let r = psd_sqrt(s1);
    let m = r.matmul(s2).matmul(&r);
    let m = (&m + m.transpose(0, 1)) / 2.0;
    m.linalg_eigvalsh("L").clamp_min(0.0).sqrt().sum(Kind::Double).double_value(&[])
}

/// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½). When both sets have fewer samples than
/// dimensions, Σ₁ = AᵀA and Σ₂ = BᵀB, and Tr((Σ₁Σ₂)^½) is exactly the sum of the
/// singular values of A Bᵀ (n₁ × n₂): no 2048 × 2048 eigendecomposition is needed.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let diff = (&a.mu - &b.mu).square().sum(Kind::Double).double_value(&[]);
    let tr_covmean = match (&a.factor, &b.factor) {
        (Some(fa), Some(fb)) => {
            let (_, singular, _) = fa.matmul(&fb.transpose(0, 1)).svd(true, false);
            singular.sum(Kind::Double).double_value(&[])
        }
        _ => trace_sqrt_product_eigen(&a.sigma, &b.sigma),
    };
    let tr = a.sigma.trace().double_value(&[]) + b.sigma.trace().double_value(&[]);
    diff + tr - 2.0 * tr_covmean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_rank_and_eigen_paths_agree() {
        tch::manual_seed(3);
        let a = fit(&Tensor::randn([5, 12], (Kind::Double, Device::Cpu)));
        let b = fit(&(Tensor::randn([7, 12], (Kind::Double, Device::Cpu)) * 2.0 + 0.5));
        assert!(a.factor.is_some() && b.factor.is_some());
        let fast = frechet_distance(&a, &b);
        let slow = {
            let diff = (&a.mu - &b.mu).square().sum(Kind::Double).double_value(&[]);
            diff + a.sigma.trace().double_value(&[]) + b.sigma.trace().double_value(&[])
                - 2.0 * trace_sqrt_product_eigen(&a.sigma, &b.sigma)
        };
        // The eigen path takes square roots of rounding-level eigenvalues of the singular
        // product (~1e-8 each), so it agrees to ~1e-7 here; the factor path is exact.
        assert!((fast - slow).abs() < 1e-6 * slow.abs(), "{fast} vs {slow}");
        // Full-rank sets take the eigen path; identical sets are at distance 0.
        let c = fit(&Tensor::randn([40, 6], (Kind::Double, Device::Cpu)));
        assert!(c.factor.is_none());
        assert!(frechet_distance(&c, &c).abs() < 1e-9);
    }
}
