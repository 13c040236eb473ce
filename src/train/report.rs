//! A self-contained HTML page of a run: loss curves (inline SVG, from `log.jsonl`) and
//! the newest sample grids.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

const GROUPS: &[(&str, &[&str])] = &[
    ("Discriminator", &["D/latent_real", "D/latent_fake", "D/latent_reg", "D/ref_real", "D/ref_fake", "D/ref_reg"]),
    ("Generator: adversarial and style", &["G/latent_adv", "G/ref_adv", "G/latent_sty", "G/ref_sty"]),
    ("Generator: diversity and cycle", &["G/latent_ds", "G/ref_ds", "G/latent_cyc", "G/ref_cyc", "G/lambda_ds"]),
];
/// Plots of `eval.jsonl` (evaluations while training).
const EVAL_GROUPS: &[(&str, &[&str])] = &[
    ("FID (lower is better)", &["FID_latent/mean", "FID_reference/mean"]),
    ("Style accuracy (higher is better)", &["ACC_latent/mean", "ACC_reference/mean"]),
    ("Paired distance to the real target rendering (lower is better)", &["paired_LPIPS/mean", "paired_L1/mean"]),
    ("LPIPS diversity", &["LPIPS_latent/mean", "LPIPS_reference/mean"]),
];

/// The records of a `.jsonl` log by iteration (lines without one are not records). A
/// resumed run starts again after its checkpoint: a record at or before the previous one
/// ends the earlier attempt, whose records from that iteration on are dropped, so the
/// curve is the one of the run that went on.
fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by_iteration = std::collections::BTreeMap::new();
    for v in text.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        if let Some(it) = v["iteration"].as_i64() {
            by_iteration.split_off(&it);
            by_iteration.insert(it, v);
        }
    }
    by_iteration.into_values().collect()
}

const COLORS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

fn svg_plot(records: &[serde_json::Value], keys: &[&str]) -> String {
    let (w, h, pad) = (640.0, 240.0, 40.0);
    let series: Vec<Vec<(f64, f64)>> = keys
        .iter()
        .map(|k| {
            records
                .iter()
                .filter_map(|r| Some((r["iteration"].as_f64()?, r[*k].as_f64()?)))
                .filter(|(_, v)| v.is_finite())
                .collect()
        })
        .collect();
    let all: Vec<(f64, f64)> = series.iter().flatten().copied().collect();
    if all.is_empty() {
        return "<p>no data yet</p>".into();
    }
    let (x0, x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (x1, y1) = (if x1 > x0 { x1 } else { x0 + 1.0 }, if y1 > y0 { y1 } else { y0 + 1.0 });
    let sx = |x: f64| pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - (y - y0) / (y1 - y0) * (h - 2.0 * pad);
    let mut s = format!("<svg width='{w}' height='{h}' xmlns='http://www.w3.org/2000/svg' style='background:#fff;border:1px solid #ddd'>");
    let _ = write!(
        s,
        "<text x='4' y='14' font-size='11'>{y1:.3}</text><text x='4' y='{}' font-size='11'>{y0:.3}</text>",
        h - pad
    );
    let _ = write!(
        s,
        "<text x='{pad}' y='{}' font-size='11'>{x0}</text><text x='{}' y='{}' font-size='11'>{x1}</text>",
        h - 8.0,
        w - pad - 30.0,
        h - 8.0
    );
    for (i, (k, pts)) in keys.iter().zip(&series).enumerate() {
        let c = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
        let _ = write!(s, "<polyline fill='none' stroke='{c}' stroke-width='1.5' points='{}'/>", path.join(" "));
        // Sparse series (evaluations) get a dot per point, so that one point is visible too.
        if pts.len() <= 60 {
            for (x, y) in pts {
                let _ = write!(s, "<circle cx='{:.1}' cy='{:.1}' r='3' fill='{c}'/>", sx(*x), sy(*y));
            }
        }
        let _ =
            write!(s, "<text x='{}' y='{}' font-size='11' fill='{c}'>{k}</text>", w - 150.0, 16.0 + 13.0 * i as f64);
    }
    s.push_str("</svg>");
    s
}

/// Writes `<run>/report.html`.
pub fn write(run: &Path) -> Result<()> {
    let records = read_jsonl(&run.join("log.jsonl"));
    let evals = read_jsonl(&run.join("eval.jsonl"));
    let mut html = String::from(
        "<!doctype html><html><head><meta charset='utf-8'><title>StarGAN v2 run</title>\
         <style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}</style>\
         </head><body><h1>StarGAN v2 training run</h1>",
    );
    if let Some(last) = records.last() {
        let _ = write!(
            html,
            "<p>Iteration {} · {:.2} it/s · {:.0} s elapsed</p>",
            last["iteration"],
            last["it_per_s"].as_f64().unwrap_or(0.0),
            last["elapsed_s"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(last) = evals.last() {
        let _ = write!(
            html,
            "<h2>Evaluation</h2><p>EMA networks on {} validation images per domain, every evaluation on the same \
             images and codes. Latest, at iteration {}: FID latent {:.2}, reference {:.2}; style accuracy latent \
             {:.3}, reference {:.3}.</p>",
            last["images_per_domain"],
            last["iteration"],
            last["FID_latent/mean"].as_f64().unwrap_or(f64::NAN),
            last["FID_reference/mean"].as_f64().unwrap_or(f64::NAN),
            last["ACC_latent/mean"].as_f64().unwrap_or(f64::NAN),
            last["ACC_reference/mean"].as_f64().unwrap_or(f64::NAN),
        );
        for (title, keys) in EVAL_GROUPS {
            if keys.iter().any(|k| last.get(*k).is_some()) {
                let _ = write!(html, "<h3>{title}</h3>{}", svg_plot(&evals, keys));
            }
        }
    }
    html.push_str("<h2>Losses</h2>");
    for (title, keys) in GROUPS {
        let _ = write!(html, "<h3>{title}</h3>{}", svg_plot(&records, keys));
    }
    let mut samples: Vec<String> = std::fs::read_dir(run.join("samples"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    // Newest by iteration number (names sort as text only up to six digits).
    let iteration = |n: &String| n.split('_').next().and_then(|i| i.parse::<u64>().ok());
    samples.sort_by_key(|n| (iteration(n), n.clone()));
    if let Some((newest, number)) = samples.last().and_then(|n| Some((n.split('_').next()?.to_string(), iteration(n)?)))
    {
        let _ = write!(html, "<h2>Samples at iteration {number}</h2>");
        for (title, suffix) in [
            (
                "Reference-guided (first row: sources; each row: a reference, then the sources in its style)",
                "reference",
            ),
            ("Latent-guided, ψ = 1.0 (first row: sources; then one row per latent code and domain)", "latent_psi_1.0"),
            ("Latent-guided, ψ = 0.7", "latent_psi_0.7"),
            ("Latent-guided, ψ = 0.5", "latent_psi_0.5"),
            ("Cycle consistency (sources, references, translations, reconstructions)", "cycle_consistency"),
        ] {
            if let Some(f) = samples.iter().find(|n| n.starts_with(&format!("{newest}_")) && n.contains(suffix)) {
                let _ = write!(html, "<h3>{title}</h3><img src='samples/{f}'>");
            }
        }
    }
    html.push_str("</body></html>");
    let tmp = run.join(".report.html.tmp");
    std::fs::write(&tmp, html)?;
    std::fs::rename(tmp, run.join("report.html"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_replaces_the_records_of_the_attempt_it_restarted_from() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.jsonl");
        // Logged to 5500, crashed; resumed from the checkpoint at 5000 and stopped at 5200.
        let its = [5000, 5100, 5500, 5100, 5200];
        let lines: Vec<String> =
            its.iter().enumerate().map(|(n, i)| format!(r#"{{"iteration":{i},"n":{n}}}"#)).collect();
        std::fs::write(&log, lines.join("\n") + "\nnot json\n{\"other\":1}\n").unwrap();
        let kept: Vec<(i64, i64)> =
            read_jsonl(&log).iter().map(|r| (r["iteration"].as_i64().unwrap(), r["n"].as_i64().unwrap())).collect();
        assert_eq!(kept, [(5000, 0), (5100, 3), (5200, 4)]);
    }
}
