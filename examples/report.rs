//! Redraws a run folder's `report.html` from its `log.jsonl` and `eval.jsonl`:
//! `cargo run --release --example report -- RUN_DIR`. The training loop writes the page
//! itself; this is for logs put together by hand, such as the shipped model's evaluations
//! across its training stages (`docs/curve/eval.jsonl`, drawn in `docs/images/fid-curve.png`).
fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: report RUN_DIR"))?;
    let dir = std::path::Path::new(&dir);
    anyhow::ensure!(dir.is_dir(), "{} is not a folder: give a run folder holding eval.jsonl", dir.display());
    stargan::train::report::write(dir)?;
    println!("wrote {}", dir.join("report.html").display());
    Ok(())
}
