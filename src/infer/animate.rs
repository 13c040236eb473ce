//! Style-interpolation animation between consecutive references of the same domain, as
//! the official `video_ref`: each frame shows the sources above their translations with
//! a style lerped from one reference to the next, beside a sliding reference panel.
//! Written as an animated GIF, or as MP4 when `ffmpeg` is on the PATH.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use image::RgbImage;
use tch::Tensor;

use super::Translator;
use crate::imaging;

/// Interpolation weights: 0, sigmoid(−5 … 4.5 step 0.5), then 1 ten times (31 frames).
pub fn alphas() -> Vec<f64> {
    let mut a = vec![0.0];
    a.extend((0..20).map(|i| 1.0 / (1.0 + (-(-5.0 + 0.5 * i as f64)).exp())));
    a.extend(std::iter::repeat_n(1.0, 10));
    a
}

/// Width of the strip left of the reference panel.
const MARGIN: u32 = 32;

/// The sliding reference panel: `prev` above `next`, revealed from the top as α grows,
/// on black, 2H × (W + 32).
fn slide(prev: &RgbImage, next: &RgbImage, alpha: f64) -> RgbImage {
    let (w, h) = (prev.width(), prev.height());
    let mut merged = RgbImage::new(w, 2 * h);
    image::imageops::replace(&mut merged, prev, 0, 0);
    image::imageops::replace(&mut merged, next, 0, h as i64);
    let mut canvas = RgbImage::new(w + MARGIN, 2 * h);
    let top = (h as f64 * (1.0 - alpha)) as u32;
    let part = image::imageops::crop_imm(&merged, 0, 0, w, 2 * h - top).to_image();
    image::imageops::replace(&mut canvas, &part, 0, top as i64);
    canvas
}

/// All frames for references `x_ref` (N×3×H×W) with labels `y_ref`. Returns no frames
/// when no two consecutive references share a domain.
pub fn frames(t: &Translator, x_src: &Tensor, x_ref: &Tensor, y_ref: &[i64]) -> Vec<RgbImage> {
    let s_ref = t.reference_style(x_ref, &Tensor::from_slice(y_ref).to_device(x_ref.device()));
    let refs = imaging::to_images(x_ref);
    let srcs = imaging::to_images(x_src);
    let masks = t.masks(x_src);
    let (w, h) = (refs[0].width(), refs[0].height());
    let mut out = Vec::new();
    for i in 1..y_ref.len() {
        if y_ref[i] != y_ref[i - 1] {
            continue;
        }
        let (s_prev, s_next) = (s_ref.narrow(0, i as i64 - 1, 1), s_ref.narrow(0, i as i64, 1));
        for a in alphas() {
            let s = s_prev.lerp(&s_next, a).expand([x_src.size()[0], -1], true);
            let fake = imaging::to_images(&t.generate_masked(x_src, &s, masks.as_ref()));
            let mut frame = RgbImage::new(w + MARGIN + w * srcs.len() as u32, 2 * h);
            image::imageops::replace(&mut frame, &slide(&refs[i - 1], &refs[i], a), 0, 0);
            for (k, (src, f)) in srcs.iter().zip(&fake).enumerate() {
                let x = (w + MARGIN + k as u32 * w) as i64;
                image::imageops::replace(&mut frame, src, x, 0);
                image::imageops::replace(&mut frame, f, x, h as i64);
            }
            out.push(frame);
        }
    }
    if let Some(last) = out.last().cloned() {
        out.extend(std::iter::repeat_n(last, 10));
    }
    out
}

pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes the frames as `<stem>.mp4` (H.264 via ffmpeg, 30 fps played at half speed, as
/// officially) when ffmpeg exists and `prefer_mp4`, else as `<stem>.gif` (15 fps).
pub fn write(frames: &[RgbImage], stem: &Path, prefer_mp4: bool) -> Result<PathBuf> {
    if frames.is_empty() {
        bail!("no frames to write");
    }
    if prefer_mp4 && ffmpeg_available() {
        let path = stem.with_extension("mp4");
        let (w, h) = (frames[0].width(), frames[0].height());
        let mut child = Command::new("ffmpeg")
            .args([
                "-y",
                "-loglevel",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                &format!("{w}x{h}"),
                "-r",
                "30",
                "-i",
                "-",
            ])
            .args(["-vf", "setpts=2*PTS,pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .context("cannot start ffmpeg")?;
        {
            let stdin = child.stdin.as_mut().context("ffmpeg stdin")?;
            for f in frames {
                stdin.write_all(f.as_raw())?;
            }
        }
        if !child.wait()?.success() {
            bail!("ffmpeg failed to write {}", path.display());
        }
        return Ok(path);
    }
    let path = stem.with_extension("gif");
    let tmp = path.with_extension("gif.tmp");
    {
        let file = std::io::BufWriter::new(
            std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", path.display()))?,
        );
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(file, 10);
        enc.set_repeat(image::codecs::gif::Repeat::Infinite)?;
        for f in frames {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            let delay = image::Delay::from_numer_denom_ms(1000, 15);
            enc.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))?;
        }
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
