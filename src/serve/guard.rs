//! What keeps a local tool from becoming a hole: requests must name this server in
//! their `Host` (a DNS-rebinding page names its own domain), must not come from another
//! site (`Sec-Fetch-Site`, `Origin`), and every response carries headers that stop
//! sniffing, framing, referrers and foreign scripts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The `Host` values this server answers to.
#[derive(Clone, Debug)]
pub struct AllowedHosts(Arc<HashSet<String>>);

impl AllowedHosts {
    /// The bound address itself and, for a loopback address, `localhost` on its port;
    /// plus any names the user allowed.
    pub fn new(bound: SocketAddr, extra: &[String]) -> Self {
        let port = bound.port();
        let mut set = HashSet::new();
        set.insert(bound.to_string());
        if bound.ip().is_loopback() {
            set.insert(format!("localhost:{port}"));
            set.insert(format!("127.0.0.1:{port}"));
            set.insert(format!("[::1]:{port}"));
        }
        for name in extra {
            let name = name.to_ascii_lowercase();
            set.insert(if name.contains(':') { name } else { format!("{name}:{port}") });
        }
        AllowedHosts(Arc::new(set))
    }

    fn allows_host(&self, host: &str) -> bool {
        self.0.contains(&host.to_ascii_lowercase())
    }

    /// An `Origin` header value (`http://host:port`) naming this server.
    fn allows_origin(&self, origin: &str) -> bool {
        origin.strip_prefix("http://").is_some_and(|h| self.allows_host(h))
    }
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Refuses requests for another host name and cross-site requests.
pub async fn check_origin(State(allowed): State<AllowedHosts>, req: Request, next: Next) -> Response {
    let h = req.headers();
    match header_str(h, header::HOST) {
        Some(host) if allowed.allows_host(host) => {}
        _ => {
            return forbidden(
                "this server only answers requests addressed to it (the Host header names another server)",
            )
        }
    }
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return forbidden("cross-site requests are refused");
        }
    }
    if let Some(origin) = header_str(h, header::ORIGIN) {
        if !allowed.allows_origin(origin) {
            return forbidden("cross-origin requests are refused");
        }
    }
    next.run(req).await
}

/// Content-Security-Policy of every response: only this server's own script and style,
/// images from it or from data/blob URLs (the outputs and the upload previews).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                       connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers to a response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_extra_names_are_allowed() {
        let a = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), &["Studio.local".into()]);
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080", "studio.local:8080"] {
            assert!(a.allows_host(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "localhost:8081", "127.0.0.1", "localhost"] {
            assert!(!a.allows_host(bad), "{bad}");
        }
        assert!(a.allows_origin("http://localhost:8080"));
        assert!(!a.allows_origin("http://evil.example:8080"));
        assert!(!a.allows_origin("null"));
    }
}
