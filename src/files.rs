//! Files the tool uses outside a run folder: the cache, the model shipped in `models/`,
//! the bundled example images, and content hashes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// The cache folder: `$STARGAN_CACHE`, else `$XDG_CACHE_HOME/stargan`, else
/// `~/.cache/stargan`. It holds fetched packages and weights, mean styles and the
/// Inception features of real images.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("STARGAN_CACHE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("stargan")
}

/// sha256 of a file's contents, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// File name of the model shipped in `models/`.
pub const SHIPPED_MODEL_FILE: &str = "emoji64.safetensors";

/// The repository's folder, as the build saw it (the binary's assets live there).
fn source_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the shipped model is: `$STARGAN_MODEL`, else `models/` of the checkout this
/// binary was built from, else `models/` below the current folder.
pub fn shipped_model() -> PathBuf {
    if let Some(p) = std::env::var_os("STARGAN_MODEL") {
        return PathBuf::from(p);
    }
    let built = source_root().join("models").join(SHIPPED_MODEL_FILE);
    if built.is_file() {
        return built;
    }
    PathBuf::from("models").join(SHIPPED_MODEL_FILE)
}

/// The bundled example emoji (held-out validation images, one folder per domain).
pub fn example_emoji() -> PathBuf {
    let built = source_root().join("assets").join("examples").join("emoji");
    if built.is_dir() {
        return built;
    }
    PathBuf::from("assets").join("examples").join("emoji")
}
