//! Every command with bad input, as a user would give it: one clear error and a non-zero
//! exit, never a panic or a backtrace; odd but valid images work. Each row here is a row
//! of the table in docs/reliability.md.

mod common;

use std::path::PathBuf;

use common::*;

/// What a row expects.
enum Expect {
    /// Fails (exit 1, or 2 for a flag clap rejects) with this in its one-line message.
    Error(&'static str),
    /// Succeeds.
    Works,
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        tiny_emoji_model(dir.path());
        let f = Fixture { dir };
        std::fs::write(f.path("empty.safetensors"), b"").unwrap();
        std::fs::write(f.path("notes.png"), b"this is text, not an image").unwrap();
        std::fs::create_dir_all(f.path("empty-dir")).unwrap();
        std::fs::write(f.path("bad-config.json"), b"{ not json").unwrap();
        std::fs::write(f.path("unknown-key.json"), br#"{"train": {"learning_rate": 1}}"#).unwrap();
        let img = |name: &str, w: u32, h: u32| {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]))
                .save(f.path(name))
                .unwrap()
        };
        img("one.png", 1, 1);
        img("wide.png", 300, 2);
        img("small.png", 40, 30);
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(50, 50, |x, _| image::Luma([x as u8 * 5])))
            .save(f.path("gray.png"))
            .unwrap();
        image::DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(40, 40, |x, y| {
            image::Rgb([x as u16 * 1600, y as u16 * 1600, 40000])
        }))
        .save(f.path("sixteen-bit.png"))
        .unwrap();
        image::RgbaImage::from_fn(40, 40, |x, _| image::Rgba([200, 10, 10, (x * 6) as u8]))
            .save(f.path("alpha.png"))
            .unwrap();
        let cmyk: Vec<u8> = (0..32 * 32).flat_map(|i| [(i % 255) as u8, 40, 200, 10]).collect();
        jpeg_encoder::Encoder::new_file(f.path("cmyk.jpg"), 90)
            .unwrap()
            .encode(&cmyk, 32, 32, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        // A data set: one domain folder with tiny and odd images, one empty domain.
        for (d, files) in [("a", ["one.png", "wide.png", "gray.png"]), ("b", ["alpha.png", "small.png", "cmyk.jpg"])] {
            std::fs::create_dir_all(f.path(&format!("data/{d}"))).unwrap();
            for n in files {
                std::fs::copy(f.path(n), f.path(&format!("data/{d}/{n}"))).unwrap();
            }
        }
        std::fs::create_dir_all(f.path("data-empty-domain/a")).unwrap();
        std::fs::create_dir_all(f.path("data-empty-domain/b")).unwrap();
        std::fs::copy(f.path("one.png"), f.path("data-empty-domain/a/one.png")).unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// With `STARGAN_RELIABILITY_TABLE=<file>`, every row is also appended to that file as
/// a Markdown table row (how the table of docs/reliability.md is made).
fn record(f: &Fixture, args: &[String], status: Option<i32>, err: &str) {
    let Some(file) = std::env::var_os("STARGAN_RELIABILITY_TABLE") else { return };
    let tmp = f.dir.path().display().to_string();
    let cmd = args.iter().map(|a| a.replace(&tmp, "…")).collect::<Vec<_>>().join(" ");
    let msg = err.lines().find(|l| l.starts_with("error")).unwrap_or("(works)").replace(&tmp, "…").replace('|', "\\|");
    let row = format!("| `stargan {cmd}` | {} | {msg} |\n", status.map(|c| c.to_string()).unwrap_or_default());
    use std::io::Write;
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(file).unwrap();
    out.write_all(row.as_bytes()).unwrap();
}

fn check(f: &Fixture, args: &[String], expect: Expect) {
    let o = stargan_bin().args(args).current_dir(f.dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    record(f, args, o.status.code(), &err);
    let shown = format!("stargan {}\n{err}", args.join(" "));
    for bad in ["panicked", "internal error", "stack backtrace", "RUST_BACKTRACE", "Exception raised from"] {
        assert!(!err.contains(bad), "{bad} in the output of {shown}");
    }
    match expect {
        Expect::Works => assert!(o.status.success(), "expected success: {shown}"),
        Expect::Error(msg) => {
            assert!(!o.status.success(), "expected an error: {shown}");
            let code = o.status.code();
            assert!(code == Some(1) || code == Some(2), "exit code {code:?}: {shown}");
            assert!(err.contains(msg), "expected {msg:?}: {shown}");
            let lines = err.lines().filter(|l| l.starts_with("error")).count();
            assert_eq!(lines, 1, "one error line: {shown}");
        }
    }
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn files_and_folders() {
    let f = Fixture::new();
    let m = f.s("tiny-emoji.safetensors");
    let translate = |input: &str, extra: &[&str]| -> Vec<String> {
        let mut a = args(&["translate", "--device", "cpu", "--checkpoint", &m, "--domain", "noto", "--out", "out"]);
        a.extend(args(&["--input", input]));
        a.extend(args(extra));
        a
    };
    for (a, e) in [
        (args(&["inspect", "missing.safetensors"]), Expect::Error("cannot read missing.safetensors")),
        (args(&["inspect", &f.s("empty.safetensors")]), Expect::Error("is not a checkpoint")),
        (args(&["inspect", "/proc/self/mem"]), Expect::Error("cannot read /proc/self/mem")),
        (args(&["inspect", &f.s("empty-dir")]), Expect::Error("is a folder, not a checkpoint file")),
        (translate("missing.png", &[]), Expect::Error("missing.png does not exist")),
        (translate(&f.s("empty-dir"), &[]), Expect::Error("contains no images")),
        (translate(&f.s("notes.png"), &[]), Expect::Error("is not a readable image")),
        (
            args(&[
                "translate",
                "--device",
                "cpu",
                "--checkpoint",
                &f.s("empty-dir"),
                "--input",
                &f.s("one.png"),
                "--domain",
                "noto",
                "--out",
                "o",
            ]),
            Expect::Error("is a folder, not a checkpoint file"),
        ),
        (
            args(&["train", "--data", "missing-dir", "--device", "cpu"]),
            Expect::Error("data folder missing-dir does not exist"),
        ),
        (args(&["train", "--data", &f.s("one.png"), "--device", "cpu"]), Expect::Error("is a file")),
        (args(&["train", "--data", &f.s("empty-dir"), "--device", "cpu"]), Expect::Error("has no sub-folders")),
        (args(&["train", "--data", &f.s("data-empty-domain"), "--device", "cpu"]), Expect::Error("has no images")),
        (
            args(&["train", "--config", &f.s("bad-config.json"), "--data", &f.s("data")]),
            Expect::Error("is not a valid config file"),
        ),
        (
            args(&["train", "--config", &f.s("unknown-key.json"), "--data", &f.s("data")]),
            Expect::Error("unknown setting 'learning_rate'"),
        ),
        (
            args(&["demo", "--device", "cpu", "--checkpoint", &m, "--examples", "missing-dir"]),
            Expect::Error("missing-dir does not exist"),
        ),
        (args(&["lpips", &f.s("one.png"), &f.s("small.png")]), Expect::Error("LPIPS compares images of the same size")),
    ] {
        check(&f, &a, e);
    }
}

#[test]
fn flags_out_of_range() {
    let f = Fixture::new();
    let m = f.s("tiny-emoji.safetensors");
    let data = f.s("data");
    let base = |v: &[&str]| {
        let mut a = args(&["translate", "--checkpoint", &m, "--input", &f.s("one.png"), "--out", "o"]);
        if !v.contains(&"--device") {
            a.extend(args(&["--device", "cpu"]));
        }
        a.extend(args(v));
        a
    };
    let train = |v: &[&str]| {
        let mut a = args(&["train", "--device", "cpu", "--data", &data, "--out", "run", "--total-iters", "1"]);
        a.extend(args(v));
        a
    };
    for (a, e) in [
        (base(&["--domain", "noto", "--psi", "NaN"]), Expect::Error("--psi must be between 0 and 1, got NaN")),
        (base(&["--domain", "noto", "--psi", "2"]), Expect::Error("--psi must be between 0 and 1, got 2")),
        (base(&["--domain", "klingon"]), Expect::Error("unknown domain 'klingon'")),
        (base(&["--domain", "noto", "--preset", "ffhq"]), Expect::Error("unknown preset 'ffhq'")),
        (base(&["--domain", "a", "--domains", "a,b"]), Expect::Error("2 domain names given")),
        (base(&["--domain", "noto", "--styles", "0"]), Expect::Error("--styles must be at least 1")),
        (base(&["--domain", "noto", "--device", "tpu"]), Expect::Error("invalid device 'tpu'")),
        (train(&["--lr", "NaN"]), Expect::Error("lr must be > 0, got NaN")),
        (train(&["--lr", "-1"]), Expect::Error("lr must be > 0, got -1")),
        (train(&["--batch-size", "0"]), Expect::Error("batch_size must be at least 1")),
        (train(&["--img-size", "100"]), Expect::Error("img_size 100 is not supported")),
        (train(&["--ema-beta", "1.5"]), Expect::Error("ema_beta must be in [0, 1)")),
        (train(&["--precision", "fp8"]), Expect::Error("--precision fp8")),
        (train(&["--r1", "magic"]), Expect::Error("--r1 magic")),
        (train(&["--preset", "ffhq"]), Expect::Error("unknown preset 'ffhq'")),
        (train(&["--num-domains", "5"]), Expect::Error("has 2 domain folders")),
        (args(&["--threads", "0", "inspect", &m]), Expect::Error("0 is not in 1..=1024")),
        (args(&["eval", "--data", &data, "--num-outs", "0"]), Expect::Error("--num-outs must be at least 1")),
        (args(&["data", "emoji", "--size", "7", "--out", "e"]), Expect::Error("--size 7 is out of range")),
        (
            args(&["serve", "--checkpoint", &m, "--queue", "0", "--device", "cpu"]),
            Expect::Error("--queue must be at least 1"),
        ),
    ] {
        check(&f, &a, e);
    }
}

#[test]
fn odd_images_work_and_other_architectures_are_named() {
    let f = Fixture::new();
    let m = f.s("tiny-emoji.safetensors");
    for img in ["one.png", "wide.png", "gray.png", "sixteen-bit.png", "alpha.png", "cmyk.jpg"] {
        let a = args(&[
            "translate",
            "--device",
            "cpu",
            "--checkpoint",
            &m,
            "--domain",
            "noto",
            "--input",
            &f.s(img),
            "--out",
            "o",
            "--styles",
            "1",
        ]);
        check(&f, &a, Expect::Works);
    }
    // Training on a data set of 1×1, 300×2, grayscale, alpha and CMYK images.
    let data = f.s("data");
    let run = ["--total-iters", "1", "--batch-size", "2", "--sample-every", "0", "--no-progress"];
    let a = args(&[&["train", "--device", "cpu", "--data", &data, "--out", "run"], TINY_MODEL_ARGS, &run].concat());
    check(&f, &a, Expect::Works);
    // An official checkpoint of one architecture loaded as another.
    let afhq = parity_dir().join("afhq_tiny.legacy_nets_ema.ckpt");
    let a = args(&[
        "translate",
        "--device",
        "cpu",
        "--checkpoint",
        afhq.to_str().unwrap(),
        "--preset",
        "celeba-hq",
        "--domain",
        "male",
        "--input",
        &f.s("one.png"),
        "--out",
        "o",
    ]);
    check(&f, &a, Expect::Error("the checkpoint was made for another configuration"));
}

/// Inputs the fuzzers flagged (docs/reliability.md), replayed: each is handled, fast.
#[test]
fn fuzz_regressions_are_handled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    // A 1.5 KB JPEG declaring 65,285 × 1,535 pixels: an upload is refused from its header.
    let bomb = std::fs::read(dir.join("jpeg-65285x1535-header.jpg")).unwrap();
    let t = std::time::Instant::now();
    match stargan::imaging::decode_untrusted(&bomb, 4096) {
        Err(stargan::imaging::UntrustedImageError::TooLarge { width: 65285, height: 1535, max: 4096 }) => {}
        other => panic!("expected TooLarge, got {:?}", other.map(|i| i.dimensions())),
    }
    assert!(t.elapsed().as_secs_f64() < 0.5, "refused from the header, not after decoding");
    // As an image file (data sets, `translate` inputs) it is refused from its header too.
    let t = std::time::Instant::now();
    let err = stargan::imaging::load_rgb(&dir.join("jpeg-65285x1535-header.jpg")).unwrap_err();
    assert!(format!("{err:#}").contains("65285×1535 px is larger than this tool reads"), "{err:#}");
    assert!(t.elapsed().as_secs_f64() < 0.5);
}
