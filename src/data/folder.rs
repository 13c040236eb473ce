//! An ImageFolder: one sub-folder per domain, labels = sorted folder names, images
//! (png/jpg/jpeg/webp, any case) found recursively.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DataError {
    #[error("data folder {0} does not exist: point --data at a folder with one sub-folder per domain (e.g. data/afhq/train)")]
    Missing(PathBuf),
    #[error(
        "data folder {0} is a file: point --data at a folder with one sub-folder per domain (e.g. data/afhq/train)"
    )]
    NotAFolder(PathBuf),
    // `reason` is not a `source`: the message already shows it, and a source would make
    // error chains print it twice.
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: std::io::Error },
    #[error(
        "{0} has no sub-folders: put the images of each domain in their own sub-folder (e.g. train/cat, train/dog)"
    )]
    NoDomains(PathBuf),
    #[error("domain folder {0} has no images (png, jpg, jpeg or webp): add images or remove the folder")]
    EmptyDomain(PathBuf),
    #[error("{path} has {found} domain folders ({names}) but the model has {expected} domains: use --num-domains {found} or fix the folder")]
    DomainCount { path: PathBuf, found: usize, expected: i64, names: String },
    #[error("{path}: domain folders ({found}) differ from the model's domains ({expected}); use the same sub-folder names for training and validation")]
    DomainNames { path: PathBuf, found: String, expected: String },
    #[error("domain '{domain}' has only one image ({path}); reference pairs need at least two images per domain")]
    SingleImage { domain: String, path: PathBuf },
}

pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp"];

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Every image file under `dir`, recursively, sorted.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|reason| DataError::Io { path: d.clone(), reason })?;
        for e in entries {
            let e = e.map_err(|reason| DataError::Io { path: d.clone(), reason })?;
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_image(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct ImageFolder {
    pub root: PathBuf,
    /// Domain names in label order.
    pub domains: Vec<String>,
    /// Files of each domain.
    pub files: Vec<Vec<PathBuf>>,
}

impl ImageFolder {
    pub fn open(root: &Path) -> Result<Self, DataError> {
        if root.is_file() {
            return Err(DataError::NotAFolder(root.to_path_buf()));
        }
        if !root.is_dir() {
            return Err(DataError::Missing(root.to_path_buf()));
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .map_err(|reason| DataError::Io { path: root.to_path_buf(), reason })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(DataError::NoDomains(root.to_path_buf()));
        }
        let mut domains = Vec::new();
        let mut files = Vec::new();
        for d in dirs {
            let imgs = list_images(&d)?;
            if imgs.is_empty() {
                return Err(DataError::EmptyDomain(d));
            }
            domains.push(d.file_name().unwrap().to_string_lossy().to_string());
            files.push(imgs);
        }
        Ok(ImageFolder { root: root.to_path_buf(), domains, files })
    }

    /// Fails unless the folder has exactly `k` domains.
    pub fn expect_domains(&self, k: i64) -> Result<(), DataError> {
        if self.domains.len() as i64 != k {
            return Err(DataError::DomainCount {
                path: self.root.clone(),
                found: self.domains.len(),
                expected: k,
                names: self.domains.join(", "),
            });
        }
        Ok(())
    }

    /// Fails unless the domain names equal `names` (e.g. val vs. train).
    pub fn expect_names(&self, names: &[String]) -> Result<(), DataError> {
        if self.domains != names {
            return Err(DataError::DomainNames {
                path: self.root.clone(),
                found: self.domains.join(", "),
                expected: names.join(", "),
            });
        }
        Ok(())
    }

    /// Fails if a domain cannot provide two different reference images.
    pub fn expect_pairs(&self) -> Result<(), DataError> {
        for (d, f) in self.domains.iter().zip(&self.files) {
            if f.len() < 2 {
                return Err(DataError::SingleImage { domain: d.clone(), path: f[0].clone() });
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.files.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (path, label) of every image, domain by domain.
    pub fn items(&self) -> Vec<(PathBuf, i64)> {
        self.files.iter().enumerate().flat_map(|(k, f)| f.iter().map(move |p| (p.clone(), k as i64))).collect()
    }
}
