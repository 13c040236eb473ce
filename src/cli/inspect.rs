use std::path::PathBuf;

use anyhow::Result;

use crate::checkpoint::Checkpoint;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Checkpoint file (.safetensors, or an official .ckpt).
    pub file: PathBuf,
    /// Also list every tensor with its shape and type.
    #[arg(long)]
    pub tensors: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ckpt = Checkpoint::open(&args.file)?;
    println!("file:    {}", args.file.display());
    println!("format:  {}", ckpt.format);
    if let Some(v) = ckpt.metadata.get(crate::checkpoint::native::META_VERSION) {
        println!("version: {v}");
    }
    match (&ckpt.config, ckpt.config_or_inferred()) {
        (Some(c), _) => println!("config:  {}", serde_json::to_string(c)?),
        (None, Ok(c)) => println!("config (inferred from shapes): {}", serde_json::to_string(&c)?),
        (None, Err(e)) => println!("config:  unknown ({e})"),
    }
    if let Some(d) = &ckpt.domains {
        println!("domains: {}", d.join(", "));
    }
    for (k, v) in &ckpt.metadata {
        if !matches!(k.as_str(), "format" | "format_version" | "model_config" | "domains") {
            let short: String = v.chars().take(120).collect();
            println!("meta {k}: {short}{}", if v.len() > 120 { "…" } else { "" });
        }
    }
    println!("networks:");
    for (net, sd) in &ckpt.nets {
        let floats: i64 = sd
            .iter()
            .filter(|(k, t)| {
                t.is_floating_point()
                    && !k.ends_with("running_mean")
                    && !k.ends_with("running_var")
                    && !k.ends_with(".filter")
            })
            .map(|(_, t)| t.numel() as i64)
            .sum();
        println!("  {net:<16} {:>4} tensors  {:>12} parameters", sd.len(), group_digits(floats));
        if args.tensors {
            for (k, t) in sd {
                println!("      {k:<48} {:?} {:?}", t.size(), t.kind());
            }
        }
    }
    if !ckpt.other_entries.is_empty() {
        println!("other entries (ignored): {}", ckpt.other_entries.join(", "));
    }
    Ok(())
}

/// 43467395 → "43,467,395".
pub fn group_digits(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
