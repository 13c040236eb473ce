//! Lays out images in a grid: `cargo run --example montage -- OUT.png NCOL IMG...` (a
//! developer aid for looking at data sets and outputs).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ncol: usize = args[1].parse().unwrap();
    let tiles: Vec<image::RgbImage> =
        args[2..].iter().map(|p| stargan::imaging::load_rgb(std::path::Path::new(p)).unwrap()).collect();
    stargan::imaging::save(&stargan::imaging::grid(&tiles, ncol), std::path::Path::new(&args[0])).unwrap();
}
