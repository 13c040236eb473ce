//! `stargan serve` over real HTTP: every security rule and limit, with raw requests on
//! loopback (so that headers such as a foreign Host can be sent as an attacker would).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const BOUNDARY: &str = "----stargan-test-boundary";

/// A multipart body of text fields and (name, file name, bytes) files.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        write!(b, "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").unwrap();
    }
    for (k, name, bytes) in files {
        write!(
            b,
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    write!(b, "--{BOUNDARY}--\r\n").unwrap();
    b
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends one request with the given extra header lines; `host` None sends the server's.
fn request(port: u16, method: &str, path: &str, host: Option<&str>, headers: &[&str], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let host = host.map(String::from).unwrap_or_else(|| format!("127.0.0.1:{port}"));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before the whole body is sent.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply { status, head: head.to_ascii_lowercase(), body: body.to_string() }
}

fn translate(port: u16, fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Reply {
    request(port, "POST", "/api/translate", None, &[], &multipart(fields, files))
}

fn example_png() -> Vec<u8> {
    std::fs::read(example_emoji().join("noto/1f339.png")).unwrap()
}

#[test]
fn answers_its_own_page_with_safety_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tiny_emoji_model(dir.path()), &[]);
    let r = request(server.port, "GET", "/", None, &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<script src=\"/app.js\""));
    for h in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "x-frame-options: deny",
    ] {
        assert!(r.head.contains(h), "missing {h} in {}", r.head);
    }
    let info = request(server.port, "GET", "/api/info", Some(&format!("localhost:{}", server.port)), &[], b"");
    assert_eq!(info.status, 200);
    let v: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(v["domains"].as_array().unwrap().len(), 4);
    assert_eq!(request(server.port, "GET", "/api/examples/0.png", None, &[], b"").status, 200);
    assert_eq!(request(server.port, "GET", "/api/examples/999.png", None, &[], b"").status, 404);
    // No client path reaches the file system.
    assert_eq!(request(server.port, "GET", "/../../etc/passwd", None, &[], b"").status, 404);
    assert_eq!(request(server.port, "GET", "/api/examples/..%2F..%2FCargo.toml", None, &[], b"").status, 404);
}

#[test]
fn foreign_hosts_and_cross_site_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tiny_emoji_model(dir.path()), &[]);
    let p = server.port;
    // DNS rebinding: a page of evil.example resolving to 127.0.0.1 sends its own Host.
    let r = request(p, "GET", "/api/info", Some(&format!("evil.example:{p}")), &[], b"");
    assert_eq!(r.status, 403);
    assert!(r.head.contains("content-security-policy"), "refusals carry the headers too");
    assert_eq!(request(p, "GET", "/", Some("127.0.0.1"), &[], b"").status, 403, "wrong port");
    let body = multipart(&[("domain", "noto"), ("source_example", "0")], &[]);
    let cross = request(p, "POST", "/api/translate", None, &["Sec-Fetch-Site: cross-site"], &body);
    assert_eq!(cross.status, 403);
    let origin = request(p, "POST", "/api/translate", None, &["Origin: http://evil.example"], &body);
    assert_eq!(origin.status, 403);
    // The page's own requests pass.
    let own = request(
        p,
        "POST",
        "/api/translate",
        None,
        &["Sec-Fetch-Site: same-origin", &format!("Origin: http://127.0.0.1:{p}")],
        &body,
    );
    assert_eq!(own.status, 200, "{}", own.body);
}

#[test]
fn inputs_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tiny_emoji_model(dir.path()), &[]);
    let p = server.port;
    let ok = translate(
        p,
        &[("domain", "noto"), ("seed", "7"), ("psi", "0.5"), ("styles", "3"), ("source_example", "4")],
        &[],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 3);
    for (fields, expect) in [
        (vec![("domain", "klingon"), ("source_example", "0")], "unknown domain"),
        (vec![("domain", "noto"), ("psi", "1.5"), ("source_example", "0")], "between 0 and 1"),
        (vec![("domain", "noto"), ("psi", "NaN"), ("source_example", "0")], "between 0 and 1"),
        (vec![("domain", "noto"), ("styles", "9"), ("source_example", "0")], "from 1 to 8"),
        (vec![("domain", "noto"), ("seed", "-1"), ("source_example", "0")], "whole number"),
        (vec![("domain", "noto"), ("seed", "18446744073709551616"), ("source_example", "0")], "whole number"),
        (vec![("domain", "noto"), ("mode", "dream"), ("source_example", "0")], "latent or reference"),
        (vec![("domain", "noto")], "source image"),
        (vec![("domain", "noto"), ("source_example", "99")], "no example"),
        (vec![("domain", "noto"), ("path", "/etc/passwd"), ("source_example", "0")], "unknown field"),
    ] {
        let r = translate(p, &fields, &[]);
        assert_eq!(r.status, 400, "{fields:?}: {}", r.body);
        assert!(r.body.contains(expect), "{fields:?}: {}", r.body);
        assert!(!r.body.contains("panicked") && !r.body.contains("src/"), "no internals: {}", r.body);
    }
    // Uploads: a real PNG works; other types are 415.
    let png = example_png();
    assert_eq!(translate(p, &[("domain", "twemoji")], &[("source", "rose.png", &png)]).status, 200);
    let gif = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(8, 8).write_to(&mut out, image::ImageFormat::Gif).unwrap();
        out.into_inner()
    };
    for (name, bytes) in [("a.gif", &gif[..]), ("a.txt", b"hello, not an image" as &[u8])] {
        let r = translate(p, &[("domain", "noto")], &[("source", name, bytes)]);
        assert_eq!(r.status, 415, "{name}: {}", r.body);
        assert!(r.body.contains("not a PNG, JPEG or WebP"));
    }
    // A truncated PNG is a clear 400.
    let r = translate(p, &[("domain", "noto")], &[("source", "cut.png", &png[..png.len() / 2])]);
    assert_eq!(r.status, 400, "{}", r.body);
}

/// A PNG that declares `w`×`h` pixels but holds only a few bytes of image data.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for b in data {
            c ^= *b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a few thousand zero bytes: rows of a black image.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 20]).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn oversize_bodies_and_decompression_bombs_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tiny_emoji_model(dir.path()), &[]);
    let p = server.port;
    let before = server.peak_rss_kb();
    // 11 MB body: 413.
    let big = vec![0u8; 11 * 1024 * 1024];
    let r = translate(p, &[("domain", "noto")], &[("source", "big.png", &big)]);
    assert_eq!(r.status, 413, "{}", r.body);
    // A 100,000 × 100,000 PNG (30 GB of pixels) in a few kB: refused from its header.
    let bomb = bomb_png(100_000, 100_000);
    assert!(bomb.len() < 64 * 1024);
    let r = translate(p, &[("domain", "noto")], &[("source", "bomb.png", &bomb)]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("at most 4096"), "{}", r.body);
    // Within the side limit but a lie about its data: an error, not a crash.
    let r = translate(p, &[("domain", "noto")], &[("source", "lie.png", &bomb_png(4000, 4000))]);
    assert!((400..500).contains(&r.status), "{}: {}", r.status, r.body);
    let grown_mb = (server.peak_rss_kb().saturating_sub(before)) / 1024;
    assert!(grown_mb < 200, "peak RSS grew by {grown_mb} MB");
    // Still serving.
    assert_eq!(translate(p, &[("domain", "noto"), ("source_example", "1")], &[]).status, 200);
}

#[test]
fn slow_uploads_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&tiny_emoji_model(dir.path()), &["--upload-timeout", "1"]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/translate HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n--{BOUNDARY}\r\n",
        server.port
    );
    s.write_all(head.as_bytes()).unwrap();
    // Then nothing more: the server gives up on the body.
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("took too long"), "{text}");
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    use stargan::checkpoint::native::{metadata, save_modules};
    use stargan::model::{Init, TranslationNets};
    let dir = tempfile::tempdir().unwrap();
    // A model slow enough on the CPU (128 px, eight styles a request) that requests pile up.
    let cfg = stargan::config::ModelConfig { img_size: 128, dim_in: 32, max_conv_dim: 128, ..tiny_model(4) };
    let nets = TranslationNets::new(&Init::new(tch::Device::Cpu, tch::Kind::Float), &cfg);
    let ckpt = dir.path().join("slow.safetensors");
    let names: Vec<String> = ["fluent3d", "noto", "openmoji", "twemoji"].iter().map(|s| s.to_string()).collect();
    save_modules(&ckpt, &nets.modules(), metadata(&cfg, &names, &[])).unwrap();
    let server = Server::start(&ckpt, &["--queue", "1"]);
    let port = server.port;
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                s.spawn(move || {
                    let seed = i.to_string();
                    translate(
                        port,
                        &[("domain", "noto"), ("styles", "8"), ("seed", &seed), ("source_example", "2")],
                        &[],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert_eq!(
        ok + busy.len(),
        replies.len(),
        "only 200 and 503: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(ok >= 1 && !busy.is_empty(), "{ok} answered, {} refused", busy.len());
    assert!(busy.iter().all(|r| r.head.contains("retry-after: 2") && r.body.contains("busy")));
}

#[test]
fn a_remote_address_needs_an_explicit_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_emoji_model(dir.path());
    let o = stargan_bin()
        .args(["serve", "--device", "cpu", "--addr", "0.0.0.0:0", "--checkpoint"])
        .arg(&ckpt)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--allow-remote"));
}
