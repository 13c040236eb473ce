//! The official-checkpoint importer (legacy pickle and zip forms) and config inference.
mod common;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = common::as_file(data, "ckpt");
        if let Ok(c) = stargan::checkpoint::Checkpoint::open(&path) {
            let _ = c.config_or_inferred();
        }
    });
}
