//! The inference worker: one thread owns the model (tch tensors are `Send`, not `Sync`)
//! and takes jobs from a bounded queue, one at a time. A job whose client has gone away
//! is dropped unprocessed; the mean style of each domain (for ψ) is computed once.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::RgbImage;
use tch::{Kind, Tensor};
use tokio::sync::{mpsc, oneshot};

use crate::imaging;
use crate::infer::load::LoadedModel;
use crate::infer::translate::mean_style;
use crate::infer::truncate;
use crate::rng::{latent_codes, Stream};

/// Where a style comes from.
pub enum StyleSpec {
    /// Style `index` of the codes drawn from `seed`, pulled toward the domain's mean by ψ.
    Latent { seed: u64, index: i64, psi: f64 },
    /// The style of a reference image of the target domain.
    Reference(RgbImage),
}

pub enum Task {
    /// The source translated with each style.
    Translate { source: RgbImage, domain: i64, styles: Vec<StyleSpec> },
    /// The source translated with styles moving from one to another in `steps` frames.
    Interpolate { source: RgbImage, domain: i64, from: StyleSpec, to: StyleSpec, steps: usize },
}

/// One output image, PNG-encoded.
pub struct Output {
    pub label: String,
    pub png: Vec<u8>,
}

pub struct Job {
    pub task: Task,
    pub reply: oneshot::Sender<Result<Vec<Output>, String>>,
}

/// Latent codes averaged for each domain's mean style.
const MEAN_STYLE_SAMPLES: i64 = 10_000;

struct Worker {
    model: LoadedModel,
    means: HashMap<i64, Tensor>,
    cache: Option<std::path::PathBuf>,
}

impl Worker {
    fn source(&self, img: &RgbImage) -> Tensor {
        let s = self.model.cfg.img_size as u32;
        imaging::to_tensor(&imaging::resize(img, s, s)).unsqueeze(0).to_device(self.model.device)
    }

    fn style(&mut self, spec: &StyleSpec, domain: i64) -> Result<Tensor, String> {
        let m = &self.model;
        let t = m.translator();
        let y = Tensor::full([1], domain, (Kind::Int64, m.device));
        Ok(match spec {
            StyleSpec::Latent { seed, index, psi } => {
                let z = latent_codes(*seed, Stream::TranslateStyles, 0, index + 1, m.cfg.latent_dim)
                    .narrow(0, *index, 1)
                    .to_device(m.device);
                let s = t.latent_style(&z, &y);
                if *psi == 1.0 {
                    s
                } else {
                    if !self.means.contains_key(&domain) {
                        let avg = mean_style(m, domain, MEAN_STYLE_SAMPLES, self.cache.as_deref()).map_err(|e| {
                            // The details (paths) stay in the server's log.
                            eprintln!("mean style of domain {domain}: {e:#}");
                            "the mean style for ψ could not be computed; see the server log".to_string()
                        })?;
                        self.means.insert(domain, avg);
                    }
                    truncate(&self.means[&domain], &s, *psi)
                }
            }
            StyleSpec::Reference(img) => t.reference_style(&self.source(img), &y),
        })
    }

    /// Runs a task; `gone` tells when its client has stopped waiting, and the remaining
    /// images are then not made.
    fn run(&mut self, task: &Task, gone: &dyn Fn() -> bool) -> Result<Vec<Output>, String> {
        let abandoned = || Err("the client went away".to_string());
        match task {
            Task::Translate { source, domain, styles } => {
                let x = self.source(source);
                let name = self.model.domains[*domain as usize].clone();
                let mut out = Vec::with_capacity(styles.len());
                for (i, spec) in styles.iter().enumerate() {
                    if gone() {
                        return abandoned();
                    }
                    let s = self.style(spec, *domain)?;
                    let img = &imaging::to_images(&self.model.translator().generate(&x, &s))[0];
                    out.push(Output { label: format!("{name}-{}", i + 1), png: imaging::png_bytes(img) });
                }
                Ok(out)
            }
            Task::Interpolate { source, domain, from, to, steps } => {
                let x = self.source(source);
                let (a, b) = (self.style(from, *domain)?, self.style(to, *domain)?);
                let name = self.model.domains[*domain as usize].clone();
                let mut out = Vec::with_capacity(*steps);
                for k in 0..*steps {
                    if gone() {
                        return abandoned();
                    }
                    let alpha = k as f64 / (*steps - 1).max(1) as f64;
                    let img = &imaging::to_images(&self.model.translator().generate(&x, &a.lerp(&b, alpha)))[0];
                    out.push(Output { label: format!("{name}-step{}", k + 1), png: imaging::png_bytes(img) });
                }
                Ok(out)
            }
        }
    }
}

/// Runs jobs until every sender is gone. Call on a thread of its own.
pub fn serve_jobs(model: LoadedModel, cache: Option<std::path::PathBuf>, mut jobs: mpsc::Receiver<Job>) {
    let mut worker = Worker { model, means: HashMap::new(), cache };
    while let Some(job) = jobs.blocking_recv() {
        if job.reply.is_closed() {
            // The client disconnected or timed out while the job was queued.
            continue;
        }
        let gone = || job.reply.is_closed();
        let result = catch_unwind(AssertUnwindSafe(|| worker.run(&job.task, &gone)))
            .unwrap_or_else(|_| Err("the translation failed inside the model; see the server log".into()));
        let _ = job.reply.send(result);
    }
}
