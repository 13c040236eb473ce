//! Our safetensors loader: header, tensors, metadata and the config JSON in it, and
//! loading the inference networks it describes.
mod common;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let path = common::as_file(data, "safetensors");
        if stargan::checkpoint::Checkpoint::open(&path).is_ok() {
            let src = stargan::infer::load::ModelSource { checkpoint: path, ..Default::default() };
            let _ = stargan::infer::load::load_model(&src, tch::Device::Cpu);
        }
    });
}
