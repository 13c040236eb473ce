//! The official training augmentation: with probability `randcrop_prob` a random resized
//! crop (scale 0.8–1.0, aspect ratio 0.9–1.1), resize to img_size, horizontal flip with
//! probability 0.5, normalisation to [-1, 1].

use image::RgbImage;
use rand::Rng;
use tch::Tensor;

use crate::imaging;

#[derive(Clone, Copy, Debug)]
pub struct Augment {
    pub img_size: u32,
    pub randcrop_prob: f64,
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
}

impl Augment {
    pub fn new(img_size: u32, randcrop_prob: f64) -> Self {
        Augment { img_size, randcrop_prob, scale: (0.8, 1.0), ratio: (0.9, 1.1) }
    }

    /// The crop box (top, left, height, width) of torchvision's RandomResizedCrop.
    pub fn crop_box<R: Rng>(&self, width: u32, height: u32, rng: &mut R) -> (u32, u32, u32, u32) {
        let (wf, hf) = (width as f64, height as f64);
        let area = wf * hf;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target_area = area * rng.random_range(self.scale.0..=self.scale.1);
            let aspect = rng.random_range(lr0..=lr1).exp();
            let w = (target_area * aspect).sqrt().round() as u32;
            let h = (target_area / aspect).sqrt().round() as u32;
            if w > 0 && w <= width && h > 0 && h <= height {
                let i = rng.random_range(0..=height - h);
                let j = rng.random_range(0..=width - w);
                return (i, j, h, w);
            }
        }
        // Fallback: central crop with the ratio clamped.
        let in_ratio = wf / hf;
        let (w, h) = if in_ratio < self.ratio.0 {
            (width, (wf / self.ratio.0).round() as u32)
        } else if in_ratio > self.ratio.1 {
            ((hf * self.ratio.1).round() as u32, height)
        } else {
            (width, height)
        };
        ((height - h) / 2, (width - w) / 2, h, w)
    }

    pub fn apply<R: Rng>(&self, img: &RgbImage, rng: &mut R) -> Tensor {
        let s = self.img_size;
        let img = if rng.random_bool(self.randcrop_prob) {
            let (i, j, h, w) = self.crop_box(img.width(), img.height(), rng);
            let crop = image::imageops::crop_imm(img, j, i, w, h).to_image();
            imaging::resize(&crop, s, s)
        } else {
            imaging::resize(img, s, s)
        };
        let img = if rng.random_bool(0.5) { image::imageops::flip_horizontal(&img) } else { img };
        imaging::to_tensor(&img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn crops_stay_inside_and_respect_scale_and_ratio() {
        let a = Augment::new(64, 1.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (w, h) in [(512u32, 512u32), (300, 200), (64, 64), (37, 90)] {
            for _ in 0..200 {
                let (i, j, ch, cw) = a.crop_box(w, h, &mut rng);
                assert!(i + ch <= h && j + cw <= w && ch > 0 && cw > 0);
            }
        }
        // On a square image every crop comes from the sampling loop: area 0.8–1.0.
        for _ in 0..200 {
            let (_, _, ch, cw) = a.crop_box(512, 512, &mut rng);
            let frac = (ch * cw) as f64 / (512.0 * 512.0);
            assert!((0.78..=1.0).contains(&frac), "{frac}");
        }
    }

    #[test]
    fn output_is_normalised_and_sized() {
        let img = RgbImage::from_fn(100, 80, |x, y| image::Rgb([(x * 2) as u8, (y * 3) as u8, 255]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let t = Augment::new(32, 0.5).apply(&img, &mut rng);
        assert_eq!(t.size(), [3, 32, 32]);
        let (mn, mx) = (t.min().double_value(&[]), t.max().double_value(&[]));
        assert!(mn >= -1.0 && mx <= 1.0 && mx > 0.99, "{mn} {mx}");
    }
}
