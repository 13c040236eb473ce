//! Writes a fuzz input to a file in memory (/dev/shm), for readers that take a path.
pub fn as_file(data: &[u8], ext: &str) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(format!("/dev/shm/stargan-fuzz-{}.{ext}", std::process::id()));
    std::fs::write(&p, data).expect("/dev/shm is writable");
    p
}
