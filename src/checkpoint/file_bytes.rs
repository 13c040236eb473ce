//! A checkpoint file opened for reading without holding its bytes twice.
//!
//! Headers and pickles are parsed from a read-only memory map, which touches only their
//! pages. Tensor data is copied straight from the file into each tensor's memory with
//! positioned reads, never through the map: mapped pages that have been read count as
//! this process's resident memory, and a 232 MB official checkpoint read whole (the
//! former way) held the file's bytes next to the tensors made from them.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::Mmap;
use tch::{Device, Kind, Tensor};

pub struct FileBytes {
    file: File,
    bytes: Bytes,
}

/// The file's bytes: mapped, or read into memory where mapping is not possible (some
/// network and FUSE file systems).
enum Bytes {
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl FileBytes {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this reader. Another process
        // truncating the file while it is open could fault a read of the header pages;
        // our own writers replace checkpoints by renaming a new file over the old path,
        // which leaves this file's contents intact.
        let bytes = match unsafe { Mmap::map(&file) } {
            Ok(map) => Bytes::Mapped(map),
            Err(_) => Bytes::Read(std::fs::read(path)?),
        };
        Ok(FileBytes { file, bytes })
    }

    /// The whole file, for format detection and header or pickle parsing.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Read(v) => v,
        }
    }

    /// A new CPU tensor of `shape` and `kind` holding the file's bytes in `range`
    /// (native byte order, which is little-endian on every platform libtorch supports).
    /// The caller checks that the range lies inside the file and matches the shape.
    pub fn tensor(&self, range: Range<usize>, shape: &[i64], kind: Kind) -> std::io::Result<Tensor> {
        let nbytes = range.len();
        let numel: i64 = shape.iter().product();
        assert_eq!(numel as usize * kind.elt_size_in_bytes(), nbytes, "range and shape disagree");
        let t = Tensor::empty(shape, (kind, Device::Cpu));
        if nbytes > 0 {
            // SAFETY: `t` is a fresh contiguous CPU tensor of exactly `nbytes` bytes that
            // nothing else references yet; the slice does not outlive this block.
            let buf = unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, nbytes) };
            self.file.read_exact_at(buf, range.start as u64)?;
        }
        Ok(t)
    }

    /// Where `part` (a slice of [`FileBytes::bytes`]) starts in the file.
    pub fn offset_of(&self, part: &[u8]) -> usize {
        let all = self.bytes();
        let (start, at) = (all.as_ptr() as usize, part.as_ptr() as usize);
        assert!(at >= start && at + part.len() <= start + all.len(), "slice is not from this file");
        at - start
    }
}
