//! `stargan serve`: a local web page to translate images with a model.
//!
//! One inference worker thread owns the model; HTTP handlers (axum on tokio) validate
//! the requests and talk to it through a bounded queue, answering 503 with
//! `Retry-After` when it is full. The page, its script and the example images are
//! embedded in the binary. See [`guard`] for what keeps the server from becoming a hole.

pub mod api;
pub mod assets;
pub mod guard;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::infer::load::LoadedModel;

pub struct ServeOptions {
    pub addr: SocketAddr,
    /// Needed to bind anything but a loopback address.
    pub allow_remote: bool,
    /// Further names (or name:port) the server answers to, besides its address.
    pub host_names: Vec<String>,
    /// Jobs that may wait for the worker; more get 503.
    pub queue: usize,
    pub inference_timeout: Duration,
    /// Time allowed to receive a request body.
    pub upload_timeout: Duration,
    /// Mean-style cache folder.
    pub cache: Option<PathBuf>,
}

/// The application: routes, limits and safety layers around `state`.
pub fn router(state: api::AppState, allowed: guard::AllowedHosts, o: &ServeOptions) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/app.js", get(api::app_js))
        .route("/app.css", get(api::app_css))
        .route("/api/info", get(api::info))
        .route("/api/examples/{id}", get(api::example))
        .route("/api/translate", post(api::translate))
        .route("/api/interpolate", post(api::interpolate))
        .fallback(api::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(o.upload_timeout))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            o.upload_timeout + o.inference_timeout + Duration::from_secs(5),
        ))
        .layer(axum::middleware::from_fn_with_state(allowed, guard::check_origin))
        .layer(axum::middleware::from_fn(guard::security_headers))
}

/// Serves until Ctrl-C. Prints the URL (with the real port when the address asked for
/// port 0) on stdout.
pub fn run(model: LoadedModel, o: ServeOptions) -> Result<()> {
    if !o.addr.ip().is_loopback() && !o.allow_remote {
        bail!(
            "--addr {} would make the server reachable from other machines; it has no authentication. \
             Add --allow-remote to do it anyway, or bind 127.0.0.1",
            o.addr
        );
    }
    if o.queue == 0 {
        bail!("--queue must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(o.addr).await.with_context(|| format!("cannot listen on {}", o.addr))?;
        let bound = listener.local_addr()?;
        let allowed = guard::AllowedHosts::new(bound, &o.host_names);
        if allowed.is_empty() {
            bail!(
                "--addr {bound} listens on every interface, and the server answers only requests addressed to a name \
                 it knows: add --host-name with the name or address clients use (e.g. --host-name studio.local)"
            );
        }
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: serving on {bound}, reachable from other machines, without authentication; anyone who can \
                 reach it can use the model"
            );
        }
        let (tx, rx) = tokio::sync::mpsc::channel(o.queue);
        let state = api::AppState {
            jobs: tx,
            domains: model.domains.clone(),
            img_size: model.cfg.img_size,
            model_name: model.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
            inference_timeout: o.inference_timeout,
            upload_timeout: o.upload_timeout,
        };
        let cache = o.cache.clone();
        let worker = std::thread::Builder::new()
            .name("inference".into())
            .spawn(move || worker::serve_jobs(model, cache, rx))
            .context("cannot start the inference worker")?;
        let app = router(state, allowed, &o);
        println!("serving on http://{bound}/ (Ctrl-C to stop)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the server stopped")?;
        // The router (and with it every sender) is gone: the worker's queue closes.
        let _ = worker.join();
        Ok(())
    })
}
