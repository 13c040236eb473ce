//! The LPIPS weights reader: pickled numpy arrays.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = stargan::metrics::numpy::read_arrays(data);
    });
}
