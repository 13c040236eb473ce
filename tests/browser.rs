//! The web page of `stargan serve` in a real browser: Debian's Chromium, driven over
//! the DevTools protocol. Upload a source, choose a domain, translate, switch to a
//! reference style, translate again, make an interpolation strip; every output image
//! must decode, no script may throw, and a screenshot is taken and checked.
//!
//! Chromium is found at `$STARGAN_CHROME`, else `/usr/bin/chromium` or
//! `/usr/bin/chromium-headless-shell`; `.ci/run` and `make test` install it with apt-get
//! when missing. Without one the test fails: it is never skipped.

mod common;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

fn chrome() -> PathBuf {
    if let Some(p) = std::env::var_os("STARGAN_CHROME") {
        return PathBuf::from(p);
    }
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-headless-shell", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "no Chromium found: install Debian's (apt-get install chromium) or set STARGAN_CHROME to a Chrome or \
         Chromium binary"
    );
}

/// Evaluates `expr` until it is true, or fails after `secs`.
fn wait_true(tab: &Tab, expr: &str, secs: u64) {
    let start = Instant::now();
    loop {
        let v = tab.evaluate(expr, false).unwrap().value;
        if v == Some(serde_json::Value::Bool(true)) {
            return;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let banner = tab.evaluate("document.getElementById('banner').textContent", false).unwrap().value;
            panic!("timed out waiting for `{expr}` (banner: {banner:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when `selector` matches exactly `n` images and all of them have decoded.
fn all_decoded(selector: &str, n: usize) -> String {
    format!(
        "(() => {{ const im = [...document.querySelectorAll('{selector}')]; \
         return im.length === {n} && im.every(i => i.complete && i.naturalWidth > 0); }})()"
    )
}

#[test]
fn the_page_translates_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped model: what `make serve` shows.
    let server = Server::start(&stargan::files::shipped_model(), &[]);
    let source = dir.path().join("my upload.png");
    std::fs::copy(example_emoji().join("twemoji/1f980.png"), &source).unwrap();

    let profile = dir.path().join("profile");
    let flags = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
    let browser = Browser::new(LaunchOptions {
        headless: true,
        sandbox: false,
        path: Some(chrome()),
        user_data_dir: Some(profile),
        window_size: Some((1280, 1100)),
        args: flags.iter().map(OsStr::new).collect(),
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    })
    .expect("Chromium starts");
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = errors.clone();
    tab.enable_runtime().unwrap();
    tab.add_event_listener(Arc::new(move |e: &Event| {
        if let Event::RuntimeExceptionThrown(ex) = e {
            sink.lock().unwrap().push(format!("{:?}", ex.params.exception_details));
        }
    }))
    .unwrap();

    tab.navigate_to(&server.url).unwrap().wait_until_navigated().unwrap();
    // The model's information arrived: domains and examples are on the page.
    tab.wait_for_element("#source-examples button").unwrap();
    wait_true(&tab, "document.querySelectorAll('#domain option').length === 4", 10);

    // 1. Upload a source, choose a domain, four random styles.
    tab.find_element("#source-file").unwrap().set_input_files(&[source.to_str().unwrap()]).unwrap();
    wait_true(&tab, "!document.getElementById('source-preview').hidden", 10);
    tab.evaluate(
        "const d = document.getElementById('domain'); d.value = 'openmoji'; d.dispatchEvent(new Event('change'));",
        false,
    )
    .unwrap();
    tab.find_element("#translate").unwrap().click().unwrap();
    wait_true(&tab, &all_decoded("#gallery img", 4), 60);
    wait_true(&tab, "document.querySelectorAll('#gallery a[download]').length === 4", 5);

    // 2. A reference image's style: two example references of the target domain.
    tab.find_element("input[name=mode][value=reference]").unwrap().click().unwrap();
    wait_true(&tab, "!document.getElementById('reference-options').hidden", 5);
    let refs = tab.find_elements("#ref-examples button").unwrap();
    assert_eq!(refs.len(), 8, "the eight bundled examples of the domain");
    refs[0].click().unwrap();
    refs[1].click().unwrap();
    tab.find_element("#translate").unwrap().click().unwrap();
    wait_true(&tab, &all_decoded("#gallery img", 1), 60);

    // 3. The interpolation strip from reference A to reference B.
    tab.find_element("#interpolate").unwrap().click().unwrap();
    wait_true(&tab, &all_decoded("#strip img", 8), 60);
    assert_eq!(
        tab.evaluate("document.getElementById('banner').hidden", false).unwrap().value,
        Some(serde_json::Value::Bool(true)),
        "no error message"
    );

    // The page as a user sees it after these steps (the README's picture comes from here).
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-page.png");
    std::fs::write(&shot, &png).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert!(img.width() >= 1000 && img.height() >= 800, "{}×{}", img.width(), img.height());
    // Not a blank page: many distinct colours (the emoji and the translations).
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(colours.len() > 500, "only {} colours in {}", colours.len(), shot.display());

    // 4. A file of the wrong type is refused with a message, before any upload.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    tab.find_element("#source-file").unwrap().set_input_files(&[text.to_str().unwrap()]).unwrap();
    wait_true(&tab, "!document.getElementById('banner').hidden", 10);
    let msg = tab.evaluate("document.getElementById('banner').textContent", false).unwrap().value.unwrap();
    assert!(msg.as_str().unwrap().contains("not a PNG, JPEG or WebP"), "{msg}");

    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "JavaScript exceptions: {errors:?}");
}
