//! Image decoding: untrusted uploads (the web page) and image files (data sets, inputs).
mod common;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = stargan::imaging::decode_untrusted(data, 4096);
        let path = common::as_file(data, "png");
        let _ = stargan::imaging::load_rgb(&path);
    });
}
