//! The official sample mode: the reference grid, latent grids per domain, and the
//! style-interpolation animation.

use std::path::PathBuf;

use anyhow::Result;
use tch::{Kind, Tensor};

use super::load::LoadedModel;
use super::{animate, grids, translate::mean_style};
use crate::data::ImageFolder;
use crate::imaging;
use crate::rng::{latent_codes, Stream};

pub struct SampleOptions {
    pub src: PathBuf,
    pub refs: PathBuf,
    pub out: PathBuf,
    /// At most this many sources and references (officially the first batch of 32).
    pub limit: usize,
    pub psi: f64,
    pub seed: u64,
    pub mean_style_samples: i64,
    pub animation: bool,
    pub prefer_mp4: bool,
    pub cache: Option<PathBuf>,
}

pub struct SampleReport {
    pub files: Vec<PathBuf>,
    /// Why the animation was not written, if it was not.
    pub animation_skipped: Option<String>,
}

/// The first `limit` images of a folder in label order, with their labels.
fn first_images(folder: &ImageFolder, limit: usize, size: u32) -> Result<(Tensor, Vec<i64>)> {
    let items: Vec<(PathBuf, i64)> = folder.items().into_iter().take(limit).collect();
    let xs: Vec<Tensor> = items.iter().map(|(p, _)| imaging::load_tensor(p, size)).collect::<Result<_>>()?;
    Ok((Tensor::cat(&xs, 0), items.iter().map(|(_, y)| *y).collect()))
}

pub fn run(m: &LoadedModel, o: &SampleOptions) -> Result<SampleReport> {
    let size = m.cfg.img_size as u32;
    let d = m.device;
    let src = ImageFolder::open(&o.src)?;
    let refs = ImageFolder::open(&o.refs)?;
    src.expect_domains(m.cfg.num_domains)?;
    refs.expect_domains(m.cfg.num_domains)?;
    let (x_src, _) = first_images(&src, o.limit, size)?;
    let (x_ref, y_ref) = first_images(&refs, o.limit, size)?;
    let (x_src, x_ref) = (x_src.to_device(d), x_ref.to_device(d));
    let t = m.translator();
    let mut files = Vec::new();

    let path = o.out.join("reference.png");
    imaging::save(&grids::reference_grid(&t, &x_src, &x_ref, &Tensor::from_slice(&y_ref).to_device(d)), &path)?;
    files.push(path);

    let z_rows = latent_codes(o.seed, Stream::SampleGridRows, 0, 10, m.cfg.latent_dim);
    for (k, name) in m.domains.iter().enumerate() {
        let avg = if o.psi == 1.0 {
            Tensor::zeros([1, m.cfg.style_dim], (Kind::Float, d))
        } else {
            mean_style(m, k as i64, o.mean_style_samples, o.cache.as_deref())?
        };
        let g = grids::latent_grid(&t, &x_src, &[(k as i64, avg)], &z_rows, o.psi);
        let path = o.out.join(format!("latent_{name}_psi_{:.1}.png", o.psi));
        imaging::save(&g, &path)?;
        files.push(path);
    }

    let mut animation_skipped = None;
    if o.animation {
        let frames = animate::frames(&t, &x_src, &x_ref, &y_ref);
        if frames.is_empty() {
            animation_skipped = Some(
                "no two consecutive references share a domain, so there is nothing to interpolate; \
                 put at least two references in one domain folder"
                    .to_string(),
            );
        } else {
            files.push(animate::write(&frames, &o.out.join("video_ref"), o.prefer_mp4)?);
        }
    } else {
        animation_skipped = Some("disabled".into());
    }
    Ok(SampleReport { files, animation_skipped })
}
