//! The HTTP API of the page: model information, the bundled examples, and the two
//! translation endpoints, which validate every input, decode uploads under limits and
//! hand the work to the inference worker through a bounded queue.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use image::RgbImage;
use tokio::sync::{mpsc, oneshot};

use super::assets::{self, EXAMPLES};
use super::worker::{Job, Output, StyleSpec, Task};
use crate::imaging::{self, UntrustedImageError};

/// Largest request body (uploads included).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Largest accepted image side, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 4096;
pub const MAX_STYLES: usize = 8;
pub const MAX_STEPS: usize = 16;

#[derive(Clone)]
pub struct AppState {
    pub jobs: mpsc::Sender<Job>,
    pub domains: Vec<String>,
    pub img_size: i64,
    pub model_name: String,
    pub inference_timeout: Duration,
    /// Time allowed to receive the whole form.
    pub upload_timeout: Duration,
}

/// An error answer: a status and a message for the user, as JSON. Never a stack trace.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

fn with_type(body: &'static [u8], content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    res
}

pub async fn index() -> Response {
    with_type(assets::INDEX_HTML.as_bytes(), "text/html; charset=utf-8")
}

pub async fn app_js() -> Response {
    with_type(assets::APP_JS.as_bytes(), "text/javascript; charset=utf-8")
}

pub async fn app_css() -> Response {
    with_type(assets::APP_CSS.as_bytes(), "text/css; charset=utf-8")
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page")
}

pub async fn info(State(s): State<AppState>) -> Json<serde_json::Value> {
    let examples: Vec<_> = EXAMPLES
        .iter()
        .enumerate()
        .map(|(id, e)| serde_json::json!({ "id": id, "domain": e.domain, "name": e.name }))
        .collect();
    Json(serde_json::json!({
        "model": s.model_name,
        "domains": s.domains,
        "img_size": s.img_size,
        "examples": examples,
        "limits": {
            "max_body_bytes": MAX_BODY_BYTES,
            "max_image_side": MAX_IMAGE_SIDE,
            "max_styles": MAX_STYLES,
            "max_steps": MAX_STEPS,
            "types": ["image/png", "image/jpeg", "image/webp"],
        },
    }))
}

pub async fn example(Path(id): Path<String>) -> Result<Response, ApiError> {
    let e = id
        .strip_suffix(".png")
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| EXAMPLES.get(i))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such example"))?;
    Ok(with_type(e.png, "image/png"))
}

/// The fields of a translation form.
#[derive(Default)]
struct Form {
    text: HashMap<String, String>,
    files: HashMap<String, Vec<u8>>,
}

const FILE_FIELDS: [&str; 3] = ["source", "reference", "reference2"];
const TEXT_FIELDS: [&str; 10] = [
    "domain",
    "mode",
    "seed",
    "seed2",
    "psi",
    "styles",
    "steps",
    "source_example",
    "reference_example",
    "reference2_example",
];

/// Whether an error was caused by the request body taking too long to arrive.
fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if is_body_timeout(&e) {
        return ApiError::new(StatusCode::REQUEST_TIMEOUT, "the upload took too long");
    }
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(status, format!("the upload is larger than {} MB", MAX_BODY_BYTES / (1024 * 1024)));
    }
    ApiError::new(status, format!("the form could not be read: {}", e.body_text()))
}

async fn read_form(mut mp: Multipart) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if FILE_FIELDS.contains(&name.as_str()) {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if !bytes.is_empty() {
                form.files.insert(name, bytes.to_vec());
            }
        } else if TEXT_FIELDS.contains(&name.as_str()) {
            let text = field.text().await.map_err(multipart_error)?;
            if text.len() > 64 {
                return Err(ApiError::bad(format!("the field '{name}' is too long")));
            }
            form.text.insert(name, text.trim().to_string());
        } else {
            return Err(ApiError::bad(format!("unknown field '{name}'")));
        }
    }
    Ok(form)
}

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.text.get(key).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn seed(&self, key: &str, default: u64) -> Result<u64, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                v.parse().map_err(|_| ApiError::bad(format!("{key} must be a whole number from 0 to {}", u64::MAX)))
            }
        }
    }

    fn psi(&self) -> Result<f64, ApiError> {
        let v = match self.get("psi") {
            None => return Ok(1.0),
            Some(v) => v.parse::<f64>().map_err(|_| ApiError::bad("ψ must be a number between 0 and 1"))?,
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(ApiError::bad(format!("ψ must be between 0 and 1, got {v}")));
        }
        Ok(v)
    }

    fn count(&self, key: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
        let v = match self.get(key) {
            None => return Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| ApiError::bad(format!("{key} must be a whole number")))?,
        };
        if !(min..=max).contains(&v) {
            return Err(ApiError::bad(format!("{key} must be from {min} to {max}, got {v}")));
        }
        Ok(v)
    }

    fn domain(&self, s: &AppState) -> Result<i64, ApiError> {
        let name = self.get("domain").ok_or_else(|| ApiError::bad("choose a target domain"))?;
        s.domains.iter().position(|d| d.eq_ignore_ascii_case(name)).map(|i| i as i64).ok_or_else(|| {
            ApiError::bad(format!("unknown domain '{name}': this model's domains are {}", s.domains.join(", ")))
        })
    }

    fn latent(&self) -> Result<bool, ApiError> {
        match self.get("mode").unwrap_or("latent") {
            "latent" => Ok(true),
            "reference" => Ok(false),
            other => Err(ApiError::bad(format!("mode must be latent or reference, got '{other}'"))),
        }
    }

    /// An uploaded image (taken out of the form), or a bundled example by number, at
    /// the model's size; `what` names it in errors. Decoding and resizing happen on a
    /// blocking thread, and only the small image is kept.
    async fn image(&mut self, file: &str, example: &str, what: &str, size: u32) -> Result<RgbImage, ApiError> {
        if let Some(bytes) = self.files.remove(file) {
            let decoded = tokio::task::spawn_blocking(move || {
                imaging::decode_untrusted(&bytes, MAX_IMAGE_SIDE).map(|img| imaging::resize(&img, size, size))
            })
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the image decoder failed"))?;
            return decoded.map_err(|e| {
                let status = match e {
                    UntrustedImageError::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    UntrustedImageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    UntrustedImageError::Corrupt(_) => StatusCode::BAD_REQUEST,
                };
                ApiError::new(status, format!("the {what}: {e}"))
            });
        }
        if let Some(id) = self.get(example) {
            let e = id
                .parse::<usize>()
                .ok()
                .and_then(|i| EXAMPLES.get(i))
                .ok_or_else(|| ApiError::bad(format!("no example number '{id}'")))?;
            return imaging::decode_untrusted(e.png, MAX_IMAGE_SIDE)
                .map(|img| imaging::resize(&img, size, size))
                .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "a bundled example is damaged"));
        }
        Err(ApiError::bad(format!("upload or pick a {what}")))
    }
}

/// A place in the worker's queue, taken before the request's body is read: a full queue
/// answers 503 at once, and no more requests than the queue holds are ever decoding
/// uploads at the same time.
fn reserve(s: &AppState) -> Result<mpsc::Permit<'_, Job>, ApiError> {
    s.jobs.try_reserve().map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server is busy with other translations; try again in a moment".into(),
            retry_after: Some(2),
        },
        mpsc::error::TrySendError::Closed(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the inference worker has stopped")
        }
    })
}

/// Reads the form within the upload time limit.
async fn form_within(s: &AppState, mp: Multipart) -> Result<Form, ApiError> {
    tokio::time::timeout(s.upload_timeout, read_form(mp))
        .await
        .map_err(|_| ApiError::new(StatusCode::REQUEST_TIMEOUT, "the upload took too long"))?
}

/// Queues a task in its reserved place and waits for its result, within the inference
/// timeout.
async fn dispatch(s: &AppState, slot: mpsc::Permit<'_, Job>, task: Task) -> Result<Vec<Output>, ApiError> {
    let (reply, result) = oneshot::channel();
    slot.send(Job { task, reply });
    match tokio::time::timeout(s.inference_timeout, result).await {
        Ok(Ok(Ok(outputs))) => Ok(outputs),
        Ok(Ok(Err(message))) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)),
        Ok(Err(_)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the inference worker has stopped")),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("the translation took longer than {} s", s.inference_timeout.as_secs()),
        )),
    }
}

fn answer(outputs: Vec<Output>) -> Json<serde_json::Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let images: Vec<_> =
        outputs.into_iter().map(|o| serde_json::json!({ "label": o.label, "png": b64.encode(&o.png) })).collect();
    Json(serde_json::json!({ "images": images }))
}

/// POST /api/translate: the source with `styles` random styles, or with a reference's.
pub async fn translate(State(s): State<AppState>, mp: Multipart) -> Result<Json<serde_json::Value>, ApiError> {
    let slot = reserve(&s)?;
    let mut form = form_within(&s, mp).await?;
    let size = s.img_size as u32;
    let domain = form.domain(&s)?;
    let styles = if form.latent()? {
        let (seed, psi) = (form.seed("seed", 0)?, form.psi()?);
        let count = form.count("styles", 1, 1, MAX_STYLES)?;
        (0..count as i64).map(|index| StyleSpec::Latent { seed, index, psi }).collect()
    } else {
        vec![StyleSpec::Reference(form.image("reference", "reference_example", "reference image", size).await?)]
    };
    let source = form.image("source", "source_example", "source image", size).await?;
    Ok(answer(dispatch(&s, slot, Task::Translate { source, domain, styles }).await?))
}

/// POST /api/interpolate: the source with styles moving from one seed (or reference) to
/// another.
pub async fn interpolate(State(s): State<AppState>, mp: Multipart) -> Result<Json<serde_json::Value>, ApiError> {
    let slot = reserve(&s)?;
    let mut form = form_within(&s, mp).await?;
    let size = s.img_size as u32;
    let domain = form.domain(&s)?;
    let steps = form.count("steps", 8, 2, MAX_STEPS)?;
    let (from, to) = if form.latent()? {
        let psi = form.psi()?;
        let seed = form.seed("seed", 0)?;
        let seed2 = form.seed("seed2", seed.wrapping_add(1))?;
        (StyleSpec::Latent { seed, index: 0, psi }, StyleSpec::Latent { seed: seed2, index: 0, psi })
    } else {
        (
            StyleSpec::Reference(form.image("reference", "reference_example", "first reference image", size).await?),
            StyleSpec::Reference(form.image("reference2", "reference2_example", "second reference image", size).await?),
        )
    };
    let source = form.image("source", "source_example", "source image", size).await?;
    Ok(answer(dispatch(&s, slot, Task::Interpolate { source, domain, from, to, steps }).await?))
}
