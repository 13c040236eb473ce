//! A bounded load check of `stargan serve` (a benchmark, not a test): N clients on
//! loopback post translations for a fixed time; prints requests/s, latency percentiles,
//! the answers by status and the server's peak RSS. Every answer must be 200 or 503.
//!
//!   cargo build --release && cargo run --release --example serve_load -- [CLIENTS] [SECONDS] [STYLES] [-- serve flags…]
//!
//! Defaults: 8 clients, 30 s, 4 random styles a request, the shipped model on the CPU.
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BOUNDARY: &str = "----stargan-load";

fn body(seed: u64, styles: usize, example: usize) -> Vec<u8> {
    let mut b = String::new();
    let fields = [
        ("domain", "twemoji".to_string()),
        ("mode", "latent".into()),
        ("seed", seed.to_string()),
        ("psi", "0.7".into()),
        ("styles", styles.to_string()),
        ("source_example", example.to_string()),
    ];
    for (k, v) in fields {
        b.push_str(&format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    b.push_str(&format!("--{BOUNDARY}--\r\n"));
    b.into_bytes()
}

fn post(port: u16, body: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let head = format!(
        "POST /api/translate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ours, serve_flags) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (&args[..], &[][..]),
    };
    let clients: usize = ours.first().map(|s| s.parse().unwrap()).unwrap_or(8);
    let seconds: u64 = ours.get(1).map(|s| s.parse().unwrap()).unwrap_or(30);
    let styles: usize = ours.get(2).map(|s| s.parse().unwrap()).unwrap_or(4);
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("stargan");
    let mut server = std::process::Command::new(&bin)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(serve_flags)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("target/release/stargan (cargo build --release first)");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.split("127.0.0.1:").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    // Warm-up: the mean styles are computed once per domain.
    assert_eq!(post(port, &body(0, 1, 0)), 200, "the server answers");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let results: Vec<(u16, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut k = 0u64;
                    while Instant::now() < deadline {
                        let b = body(c as u64 * 1_000_000 + k, styles, (c + k as usize) % 32);
                        let t = Instant::now();
                        let status = post(port, &b);
                        out.push((status, t.elapsed().as_secs_f64() * 1e3));
                        if status == 503 {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        k += 1;
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let rss = peak_rss_mib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (s, _) in &results {
        *by_status.entry(*s).or_default() += 1;
    }
    let mut ok: Vec<f64> = results.iter().filter(|(s, _)| *s == 200).map(|(_, ms)| *ms).collect();
    ok.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct =
        |p: f64| ok.get(((ok.len() as f64 * p) as usize).min(ok.len().saturating_sub(1))).copied().unwrap_or(f64::NAN);
    println!(
        "{clients} clients, {seconds} s, {styles} styles a request: {:.2} translations/s ({:.1} images/s), \
         p50 {:.0} ms, p99 {:.0} ms, answers {by_status:?}, server peak RSS {rss:.0} MiB",
        ok.len() as f64 / seconds as f64,
        (ok.len() * styles) as f64 / seconds as f64,
        pct(0.5),
        pct(0.99)
    );
    let failed: usize = by_status.iter().filter(|(s, _)| **s != 200 && **s != 503).map(|(_, n)| n).sum();
    assert_eq!(failed, 0, "answers other than 200 and 503");
}
