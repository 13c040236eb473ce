use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;

use super::model_args::{cache_dir, ModelArgs};
use crate::serve::{run as serve, ServeOptions};

/// Serve a local web page to translate images: upload or pick a source, choose a domain
/// and random styles (seed, ψ) or a reference image, and download the results.
///
/// It listens on 127.0.0.1 only, unless --allow-remote is given for another address.
///
/// Examples:
///   stargan serve                                  (the shipped emoji model, http://127.0.0.1:8080/)
///   stargan serve --checkpoint 100000_nets_ema.ckpt --preset afhq --device cuda --addr 127.0.0.1:9000
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Allow an address other than loopback (the server has no authentication).
    #[arg(long)]
    pub allow_remote: bool,
    /// Another host name the server answers to (repeatable), e.g. the machine's name.
    #[arg(long = "host-name")]
    pub host_names: Vec<String>,
    /// Requests that may wait for the model; more are answered 503 (try again).
    #[arg(long, default_value_t = 8)]
    pub queue: usize,
    /// Seconds a translation may take before the request is answered 504.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Seconds a request body may take to arrive before the request is answered 408.
    #[arg(long, default_value_t = 30)]
    pub upload_timeout: u64,
}

pub fn run(a: Args) -> Result<()> {
    let model = a.model.load()?;
    serve(
        model,
        ServeOptions {
            addr: a.addr,
            allow_remote: a.allow_remote,
            host_names: a.host_names,
            queue: a.queue,
            inference_timeout: Duration::from_secs(a.timeout.max(1)),
            upload_timeout: Duration::from_secs(a.upload_timeout.max(1)),
            cache: Some(cache_dir()),
        },
    )
}
