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
    /// The bound address itself (unless it is a wildcard address) and, for a loopback
    /// address, `localhost`, on its port; plus any names the user allowed (`name`,
    /// `name:port`, an IPv4 or IPv6 address). On port 80 the bare name too: browsers
    /// leave the default port out of Host and Origin.
    pub fn new(bound: SocketAddr, extra: &[String]) -> Self {
        let mut hosts: Vec<(String, Option<u16>)> = Vec::new();
        if !bound.ip().is_unspecified() {
            hosts.push((bracketed(bound.ip()), None));
        }
        if bound.ip().is_loopback() {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(|h| (h.to_string(), None)));
        }
        hosts.extend(extra.iter().map(|n| parse_host_name(n)));
        let mut set = HashSet::new();
        for (host, port) in hosts {
            let port = port.unwrap_or(bound.port());
            set.insert(format!("{host}:{port}"));
            if port == 80 {
                set.insert(host);
            }
        }
        AllowedHosts(Arc::new(set))
    }

    /// Whether no name at all would be accepted (a wildcard address without host names).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn allows_host(&self, host: &str) -> bool {
        self.0.contains(&host.to_ascii_lowercase())
    }

    /// An `Origin` header value (`http://host:port`) naming this server.
    fn allows_origin(&self, origin: &str) -> bool {
        origin.strip_prefix("http://").is_some_and(|h| self.allows_host(h))
    }
}

/// An address as it appears in a Host header: IPv6 in brackets.
fn bracketed(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// A `--host-name` value as (host as in a Host header, port if given).
fn parse_host_name(name: &str) -> (String, Option<u16>) {
    let name = name.trim().to_ascii_lowercase();
    if let Ok(ip) = name.parse::<std::net::Ipv6Addr>() {
        return (format!("[{ip}]"), None);
    }
    if let Some((inside, after)) = name.strip_prefix('[').and_then(|r| r.split_once(']')) {
        return (format!("[{inside}]"), after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match name.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host.to_string(), port.parse().ok()),
        _ => (name, None),
    }
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
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

    #[test]
    fn wildcard_addresses_need_names_and_port_80_may_be_left_out() {
        let wild = AllowedHosts::new("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(wild.is_empty() && !wild.allows_host("0.0.0.0:8080"));
        let named =
            AllowedHosts::new("0.0.0.0:80".parse().unwrap(), &["studio".into(), "fe80::1".into(), "box:9000".into()]);
        for ok in ["studio:80", "studio", "[fe80::1]:80", "[fe80::1]", "box:9000"] {
            assert!(named.allows_host(ok), "{ok}");
        }
        assert!(!named.allows_host("box:80"));
        assert!(named.allows_origin("http://studio"));
    }
}
