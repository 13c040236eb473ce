//! The official sample grids (reference.md §2.6), as tensors of tiles, and their layout.

use image::RgbImage;
use tch::{Kind, Tensor};

use super::{truncate, Translator};
use crate::imaging;

/// Reference grid: the first row is a white tile followed by the sources; each further
/// row is a reference followed by the sources translated with its style.
pub fn reference_grid(t: &Translator, x_src: &Tensor, x_ref: &Tensor, y_ref: &Tensor) -> RgbImage {
    let n = x_src.size()[0];
    let (h, w) = (x_src.size()[2] as u32, x_src.size()[3] as u32);
    let masks = t.masks(x_src);
    let mut tiles = vec![imaging::blank(w, h)];
    tiles.extend(imaging::to_images(x_src));
    let s_ref = t.reference_style(x_ref, y_ref);
    for i in 0..x_ref.size()[0] {
        tiles.extend(imaging::to_images(&x_ref.narrow(0, i, 1)));
        let s = s_ref.narrow(0, i, 1).expand([n, -1], true);
        let out = t.generate_masked(x_src, &s, masks.as_ref());
        tiles.extend(imaging::to_images(&out));
    }
    imaging::grid(&tiles, n as usize + 1)
}

/// Latent grid at truncation ψ: the sources, then for each listed domain one row per
/// latent code (the same codes for every domain), styles pulled toward the domain's mean.
pub fn latent_grid(t: &Translator, x_src: &Tensor, domains: &[(i64, Tensor)], z_rows: &Tensor, psi: f64) -> RgbImage {
    let n = x_src.size()[0];
    let masks = t.masks(x_src);
    let mut tiles = imaging::to_images(x_src);
    for (domain, s_avg) in domains {
        let y = Tensor::full([n], *domain, (Kind::Int64, x_src.device()));
        for r in 0..z_rows.size()[0] {
            let z = z_rows.narrow(0, r, 1).expand([n, -1], true).to_device(x_src.device());
            let s = truncate(&s_avg.expand([n, -1], true), &t.latent_style(&z, &y), psi);
            let out = t.generate_masked(x_src, &s, masks.as_ref());
            tiles.extend(imaging::to_images(&out));
        }
    }
    imaging::grid(&tiles, n as usize)
}

/// Cycle-consistency grid: sources, references, translations with the references'
/// styles, and the reconstructions with the sources' own styles.
pub fn cycle_grid(t: &Translator, x_src: &Tensor, y_src: &Tensor, x_ref: &Tensor, y_ref: &Tensor) -> RgbImage {
    let n = x_src.size()[0];
    let fake = t.generate(x_src, &t.reference_style(x_ref, y_ref));
    let rec = t.generate(&fake, &t.reference_style(x_src, y_src));
    let mut tiles = imaging::to_images(x_src);
    tiles.extend(imaging::to_images(x_ref));
    tiles.extend(imaging::to_images(&fake));
    tiles.extend(imaging::to_images(&rec));
    imaging::grid(&tiles, n as usize)
}
