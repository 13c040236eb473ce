//! Conversions between images and tensors, resizing, grids and safe image writing.

use std::path::Path;

use anyhow::{Context, Result};
use image::{imageops::FilterType, RgbImage};
use tch::{Kind, Tensor};

/// Largest image file the tool decodes, per side and in pixels. Every model works at
/// 256 px or less, so larger files only cost memory; the limits keep a small file that
/// declares a huge image (found by fuzzing: 1.5 KB declaring 65,285 × 1,535 px) from
/// allocating hundreds of megabytes.
pub const MAX_FILE_SIDE: u32 = 16384;
pub const MAX_FILE_PIXELS: u64 = 64 << 20;

/// Decodes an image file to RGB (alpha is composited on white, as emoji need).
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let open = || -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
        image::ImageReader::open(path)
            .with_context(|| format!("cannot open image {}", path.display()))?
            .with_guessed_format()
            .with_context(|| format!("cannot read image {}", path.display()))
    };
    let unreadable = || format!("{} is not a readable image (png, jpg or webp)", path.display());
    let (w, h) = open()?.into_dimensions().with_context(unreadable)?;
    if w > MAX_FILE_SIDE || h > MAX_FILE_SIDE || w as u64 * h as u64 > MAX_FILE_PIXELS {
        anyhow::bail!(
            "{}: {w}×{h} px is larger than this tool reads (at most {MAX_FILE_SIDE} px a side and {} megapixels); \
             downscale it first",
            path.display(),
            MAX_FILE_PIXELS >> 20
        );
    }
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_FILE_SIDE);
    limits.max_image_height = Some(MAX_FILE_SIDE);
    // RGBA at the largest accepted size, plus the decoders' own buffers.
    limits.max_alloc = Some(2 * 4 * MAX_FILE_PIXELS);
    reader.limits(limits);
    let img = reader.decode().with_context(unreadable)?;
    Ok(if img.color().has_alpha() { flatten_on_white(&img.to_rgba8()) } else { img.to_rgb8() })
}

fn flatten_on_white(img: &image::RgbaImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y).0;
        let a = p[3] as u32;
        let c = |v: u8| ((v as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([c(p[0]), c(p[1]), c(p[2])])
    })
}

/// Bilinear resize with antialiasing when shrinking (like PIL's BILINEAR).
pub fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if img.width() == w && img.height() == h {
        return img.clone();
    }
    image::imageops::resize(img, w, h, FilterType::Triangle)
}

/// RGB image → 3×H×W float tensor in [-1, 1] (ToTensor then Normalize(0.5, 0.5)).
pub fn to_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let data: Vec<f32> = img.as_raw().iter().map(|&v| v as f32 / 255.0 * 2.0 - 1.0).collect();
    Tensor::from_slice(&data).view([h, w, 3]).permute([2, 0, 1]).contiguous()
}

/// Loads an image file as a 1×3×size×size tensor in [-1, 1].
pub fn load_tensor(path: &Path, size: u32) -> Result<Tensor> {
    Ok(to_tensor(&resize(&load_rgb(path)?, size, size)).unsqueeze(0))
}

/// N×3×H×W tensor in [-1, 1] → images, clamped as the official `save_image` does:
/// (x + 1) / 2, clamp to [0, 1], ×255, round.
pub fn to_images(t: &Tensor) -> Vec<RgbImage> {
    let t = t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float);
    let u8s = ((t + 1.0) / 2.0).clamp(0.0, 1.0).multiply_scalar(255.0).g_add_scalar(0.5).floor().to_kind(Kind::Uint8);
    let (n, h, w) = (u8s.size()[0], u8s.size()[2] as u32, u8s.size()[3] as u32);
    (0..n)
        .map(|i| {
            let hwc = u8s.get(i).permute([1, 2, 0]).contiguous();
            let mut buf = vec![0u8; (h * w * 3) as usize];
            let len = buf.len();
            hwc.copy_data_u8(&mut buf, len);
            RgbImage::from_raw(w, h, buf).expect("buffer size")
        })
        .collect()
}

/// Lays out equally sized tiles row-major, `ncol` per row, no padding (as the official
/// grids); missing tiles are white.
pub fn grid(tiles: &[RgbImage], ncol: usize) -> RgbImage {
    assert!(!tiles.is_empty() && ncol > 0);
    let (tw, th) = (tiles[0].width(), tiles[0].height());
    let nrow = tiles.len().div_ceil(ncol);
    let mut out = RgbImage::from_pixel(tw * ncol as u32, th * nrow as u32, image::Rgb([255, 255, 255]));
    for (i, t) in tiles.iter().enumerate() {
        let (r, c) = ((i / ncol) as u32, (i % ncol) as u32);
        image::imageops::replace(&mut out, t, (c * tw) as i64, (r * th) as i64);
    }
    out
}

/// A white tile.
pub fn blank(w: u32, h: u32) -> RgbImage {
    RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]))
}

/// Writes an image atomically (temporary file + rename), creating parent folders; the
/// format follows the extension (png, jpg, webp).
pub fn save(img: &RgbImage, path: &Path) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let fmt = image::ImageFormat::from_path(path)
        .with_context(|| format!("unknown image extension in {}", path.display()))?;
    let tmp =
        dir.join(format!(".{}.tmp-{}", path.file_name().unwrap_or_default().to_string_lossy(), std::process::id()));
    if let Err(e) =
        img.save_with_format(&tmp, fmt).map_err(anyhow::Error::from).and_then(|()| Ok(std::fs::rename(&tmp, path)?))
    {
        // A full disk leaves no partial file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

/// Why untrusted image bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedImageError {
    #[error("not a PNG, JPEG or WebP image")]
    UnsupportedFormat,
    #[error("the image is {width}×{height} pixels; at most {max}×{max} are accepted")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// Decodes image bytes from an untrusted source: PNG, JPEG or WebP only, at most
/// `max_side` pixels on each side, and decoders held to an allocation budget, so that a
/// small file declaring a huge image (a decompression bomb) is refused before its pixels
/// are allocated. Alpha is composited on white, as [`load_rgb`] does.
pub fn decode_untrusted(bytes: &[u8], max_side: u32) -> Result<RgbImage, UntrustedImageError> {
    use image::ImageFormat;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| UntrustedImageError::Corrupt(e.to_string()))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)) {
        return Err(UntrustedImageError::UnsupportedFormat);
    }
    let (width, height) = reader.into_dimensions().map_err(|e| UntrustedImageError::Corrupt(e.to_string()))?;
    if width > max_side || height > max_side {
        return Err(UntrustedImageError::TooLarge { width, height, max: max_side });
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| UntrustedImageError::Corrupt(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    // RGBA at the largest accepted size, plus the decoders' own buffers.
    limits.max_alloc = Some(2 * 4 * max_side as u64 * max_side as u64);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => UntrustedImageError::TooLarge { width, height, max: max_side },
        other => UntrustedImageError::Corrupt(other.to_string()),
    })?;
    Ok(if img.color().has_alpha() { flatten_on_white(&img.to_rgba8()) } else { img.to_rgb8() })
}

/// PNG bytes of an image.
pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encoding to memory does not fail");
    out.into_inner()
}
