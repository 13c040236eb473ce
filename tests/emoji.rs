//! The emoji dataset builder: index, renderers, and a real build from the pinned npm
//! packages (a network fetch: `npm pack` into the tests' own cache, sha256-checked).

mod common;

use common::test_cache;
use stargan::data::emoji::{build, index, render_raster, render_svg, select, EmojiOptions, PACKAGES};
use stargan::data::ImageFolder;

#[test]
fn index_selects_the_documented_counts() {
    let all = index();
    assert_eq!(all.len(), 3511);
    let base = select(&all, false, None);
    assert_eq!(base.len(), 1599, "core-4 base emoji");
    assert_eq!(base.iter().filter(|e| e.split == "val").count(), 140);
    assert_eq!(select(&all, true, None).len(), 3119);
    let few = select(&all, false, Some(5));
    assert_eq!(few.iter().filter(|e| e.split == "train").count(), 5);
    assert_eq!(few.iter().filter(|e| e.split == "val").count(), 5);
    // The Fluent 3D skin-tone fix is in the index: the medium-light key maps to the
    // upstream medium file.
    let thumbs = all.iter().find(|e| e.key == "1f44d-1f3fc").unwrap();
    assert!(thumbs.sources["fluent3d"].contains("1f3fd"), "{:?}", thumbs.sources);
}

#[test]
fn content_box_fit_centres_and_fills_88_percent() {
    // A small red square in a corner of a large viewBox ends up centred and filling 88 %.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect x="5" y="5" width="20" height="20" fill="red"/></svg>"#;
    let img = render_svg(svg, 64).unwrap();
    let red: Vec<(u32, u32)> =
        img.enumerate_pixels().filter(|(_, _, p)| p.0[0] > 200 && p.0[1] < 60).map(|(x, y, _)| (x, y)).collect();
    let (x0, x1) = (red.iter().map(|p| p.0).min().unwrap(), red.iter().map(|p| p.0).max().unwrap());
    let (y0, y1) = (red.iter().map(|p| p.1).min().unwrap(), red.iter().map(|p| p.1).max().unwrap());
    let side = (x1 - x0 + 1) as f64;
    // 88 % of the canvas for the probe box, which is padded by half a probe pixel.
    assert!((0.80..=0.89).contains(&(side / 64.0)), "side {side}");
    assert!(
        ((x0 + x1) as i64 - 63).abs() <= 2 && ((y0 + y1) as i64 - 63).abs() <= 2,
        "centred: {x0}..{x1}, {y0}..{y1}"
    );
    assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255], "white background");

    // Raster input with alpha: same fit, alpha-blended on white.
    let rgba = image::RgbaImage::from_fn(100, 100, |x, y| {
        if (60..90).contains(&x) && (10..40).contains(&y) {
            image::Rgba([0, 0, 255, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(rgba)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let img = render_raster(&png, 50).unwrap();
    assert_eq!(img.get_pixel(25, 25).0, [0, 0, 255]);
    assert_eq!(img.get_pixel(1, 1).0, [255, 255, 255]);
    assert!(render_svg(b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'/>", 32).is_err(), "empty drawing");
    assert!(render_svg(b"not svg", 32).is_err());
}

#[test]
fn builds_a_small_emoji_set_from_the_pinned_packages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emoji");
    let opts = EmojiOptions { size: 32, out: out.clone(), cache: test_cache(), with_tones: false, limit: Some(3) };
    let s = build(&opts, &|_, _| {}).unwrap();
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    assert_eq!(s.written, 4 * 6);
    for split in ["train", "val"] {
        let f = ImageFolder::open(&out.join(split)).unwrap();
        assert_eq!(f.domains, ["fluent3d", "noto", "openmoji", "twemoji"]);
        for files in &f.files {
            assert_eq!(files.len(), 3);
            let img = image::open(&files[0]).unwrap();
            assert_eq!((img.width(), img.height()), (32, 32));
        }
        // The same emoji exists in every domain (paired data).
        let names: Vec<Vec<_>> =
            f.files.iter().map(|v| v.iter().map(|p| p.file_name().unwrap().to_owned()).collect()).collect();
        assert!(names.windows(2).all(|w| w[0] == w[1]));
    }
    let notice = std::fs::read_to_string(out.join("ATTRIBUTION.md")).unwrap();
    for p in PACKAGES.iter() {
        assert!(notice.contains(p.spec) && notice.contains(p.license));
    }
    // A tampered cached tarball is refused, then fetched again.
    let cached = test_cache().join("npm").join(PACKAGES[3].tarball);
    std::fs::write(&cached, b"tampered").unwrap();
    let fixed = stargan::data::emoji::fetch(&PACKAGES[3], &test_cache()).unwrap();
    assert!(std::fs::metadata(fixed).unwrap().len() > 1_000_000);
}
