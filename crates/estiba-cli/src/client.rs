//! A small Engine API client: HTTP/1.1 over a Unix or TCP socket, docker's version negotiation
//! and docker's error wording.

use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The socket estiba's CLI talks to when neither -H nor DOCKER_HOST says otherwise.
pub(crate) const DEFAULT_HOST: &str = "unix:///run/estiba/estiba.sock";
/// The newest API version this client speaks; older servers are spoken to in their version.
pub(crate) const MAX_API_VERSION: &str = estiba_api::API_VERSION;
/// What docker assumes when a server does not announce a version.
const FALLBACK_API_VERSION: &str = "1.24";
/// Upper bound for any response body read into memory (lists, inspect, errors).
const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;
/// Upper bound for an error body: only the message is shown.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

pub(crate) type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// An error the daemon answered with: printed as docker prints it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub(crate) fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }
}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// Parses `unix:///path`, `tcp://host[:port]` (port 2375 by default, as docker).
pub(crate) fn parse_host(host: &str) -> anyhow::Result<Endpoint> {
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            bail!("unable to parse docker host `{host}`");
        }
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("unable to parse docker host `{host}`");
        }
        let has_port = match authority.rsplit_once(':') {
            Some((_, port)) => !port.contains(']'),
            None => false,
        };
        let addr = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:2375")
        };
        return Ok(Endpoint::Tcp(addr));
    }
    bail!("unable to parse docker host `{host}`")
}

/// One keep-alive connection to the daemon, with the negotiated version prefix.
pub(crate) struct Client {
    host: String,
    endpoint: Endpoint,
    sender: Option<SendRequest<ReqBody>>,
    version: Option<String>,
    /// X-Registry-Auth for pull and push (base64url JSON credentials).
    registry_auth: Option<String>,
    /// More headers for the following requests (`estiba build --secret`).
    extra_headers: Vec<(String, String)>,
}

impl Client {
    /// Sends `auth` as X-Registry-Auth on the following requests.
    pub(crate) fn set_registry_auth(&mut self, auth: Option<String>) {
        self.registry_auth = auth;
    }

    /// Sends the header `name: value` on the following requests.
    pub(crate) fn add_header(&mut self, name: &str, value: String) {
        self.extra_headers.push((name.to_string(), value));
    }

    pub(crate) fn new(host: &str) -> anyhow::Result<Client> {
        let endpoint = parse_host(host)?;
        Ok(Client {
            host: host.to_owned(),
            endpoint,
            sender: None,
            registry_auth: None,
            extra_headers: Vec::new(),
            version: None,
        })
    }

    fn cannot_connect(&self, err: &std::io::Error) -> anyhow::Error {
        if err.kind() == std::io::ErrorKind::PermissionDenied {
            return anyhow!(
                "permission denied while trying to connect to the estiba daemon socket at {}: {err}",
                self.host
            );
        }
        anyhow!(
            "Cannot connect to the estiba daemon at {}. Is the estiba daemon running?",
            self.host
        )
    }

    async fn connect(&mut self) -> anyhow::Result<&mut SendRequest<ReqBody>> {
        let usable = matches!(&self.sender, Some(s) if !s.is_closed());
        if !usable {
            self.sender = None;
            let sender = match &self.endpoint {
                Endpoint::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| self.cannot_connect(&e))?;
                    handshake(stream).await?
                }
                Endpoint::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|e| self.cannot_connect(&e))?;
                    // Requests are small and latency matters more than batching.
                    let _ = stream.set_nodelay(true);
                    handshake(stream).await?
                }
            };
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection to the daemon"))
    }

    fn host_header(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(_) => "api.moby.localhost".to_owned(),
            Endpoint::Tcp(addr) => addr.clone(),
        }
    }

    async fn send(&mut self, req: Request<ReqBody>) -> anyhow::Result<Response<Incoming>> {
        let host = self.host.clone();
        let sender = self.connect().await?;
        sender.ready().await.map_err(|_| {
            anyhow!("Cannot connect to the estiba daemon at {host}. Is the estiba daemon running?")
        })?;
        sender
            .send_request(req)
            .await
            .map_err(|e| anyhow!("error during connect: {e}"))
    }

    /// The negotiated API version (`GET /_ping`, then min(server, ours)), cached.
    pub(crate) async fn api_version(&mut self) -> anyhow::Result<String> {
        if let Some(v) = &self.version {
            return Ok(v.clone());
        }
        let req = self.build(Method::GET, "/_ping".to_owned(), empty_body(), None)?;
        let resp = self.send(req).await?;
        let server = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or(FALLBACK_API_VERSION)
            .to_owned();
        // Drain the body so the connection can be reused.
        let _ = read_limited(resp.into_body(), MAX_ERROR_BODY_BYTES).await;
        let version = negotiate(&server, MAX_API_VERSION);
        self.version = Some(version.clone());
        Ok(version)
    }

    fn build(
        &self,
        method: Method,
        uri: String,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> anyhow::Result<Request<ReqBody>> {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", self.host_header())
            .header("user-agent", concat!("estiba/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        if let Some(auth) = &self.registry_auth {
            b = b.header("x-registry-auth", auth);
        }
        for (k, v) in &self.extra_headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(body).context("building the request")
    }

    /// Sends a request to `/v1.NN{path}`; any status >= 400 becomes an [`ApiError`].
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: ReqBody,
        content_type: Option<&str>,
    ) -> anyhow::Result<Response<Incoming>> {
        let version = self.api_version().await?;
        let req = self.build(method, format!("/v{version}{path}"), body, content_type)?;
        let resp = self.send(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status();
            let is_json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let body = read_limited(resp.into_body(), MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            return Err(error_from_body(status, is_json, &body, path, &version).into());
        }
        Ok(resp)
    }

    /// A second client to the same daemon (its own connection), for requests that run
    /// alongside another one: `wait` while `attach` streams, signal forwarding.
    pub(crate) fn fork(&self) -> Client {
        Client {
            host: self.host.clone(),
            endpoint: self.endpoint.clone(),
            sender: None,
            registry_auth: None,
            extra_headers: Vec::new(),
            version: self.version.clone(),
        }
    }

    /// POSTs a JSON body and reads the JSON answer (`null` for an empty one).
    pub(crate) async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let body = Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let resp = self
            .request(Method::POST, path, body, Some("application/json"))
            .await?;
        let bytes = read_limited(resp.into_body(), MAX_BODY_BYTES).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).context("decoding the daemon's response")
    }

    /// Docker's hijack: POST `path` on a connection of its own with `Connection: Upgrade`,
    /// `Upgrade: tcp`; after the daemon's 101 the connection carries the raw streams.
    pub(crate) async fn hijack(
        &mut self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<TokioIo<hyper::upgrade::Upgraded>> {
        let version = self.api_version().await?;
        let mut sender = match &self.endpoint {
            Endpoint::Unix(p) => {
                let stream = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| self.cannot_connect(&e))?;
                handshake_upgradable(stream).await?
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| self.cannot_connect(&e))?;
                let _ = stream.set_nodelay(true);
                handshake_upgradable(stream).await?
            }
        };
        let (body, content_type) = match body {
            Some(v) => (
                Full::new(Bytes::from(v.to_string()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
                Some("application/json"),
            ),
            None => (empty_body(), None),
        };
        let mut req = self.build(
            Method::POST,
            format!("/v{version}{path}"),
            body,
            content_type,
        )?;
        req.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        req.headers_mut().insert(
            hyper::header::UPGRADE,
            hyper::header::HeaderValue::from_static("tcp"),
        );
        sender.ready().await.context("connecting to the daemon")?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| anyhow!("error during connect: {e}"))?;
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            let is_json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let body = read_limited(resp.into_body(), MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            return Err(error_from_body(status, is_json, &body, path, &version).into());
        }
        if status != StatusCode::SWITCHING_PROTOCOLS {
            bail!("unable to upgrade to tcp, received {}", status.as_u16());
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .context("upgrading the connection")?;
        Ok(TokioIo::new(upgraded))
    }

    /// GET a JSON document.
    pub(crate) async fn get_json(&mut self, path: &str) -> anyhow::Result<serde_json::Value> {
        let bytes = self.get_bytes(path).await?;
        serde_json::from_slice(&bytes).context("decoding the daemon's response")
    }

    /// GET a body as bytes (bounded).
    pub(crate) async fn get_bytes(&mut self, path: &str) -> anyhow::Result<Bytes> {
        let resp = self.request(Method::GET, path, empty_body(), None).await?;
        read_limited(resp.into_body(), MAX_BODY_BYTES).await
    }

    /// A request whose JSON answer is read whole.
    pub(crate) async fn call_json(
        &mut self,
        method: Method,
        path: &str,
    ) -> anyhow::Result<serde_json::Value> {
        let resp = self.request(method, path, empty_body(), None).await?;
        let bytes = read_limited(resp.into_body(), MAX_BODY_BYTES).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).context("decoding the daemon's response")
    }
}

async fn handshake<S>(stream: S) -> anyhow::Result<SendRequest<ReqBody>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("http handshake with the daemon")?;
    tokio::spawn(async move {
        // The connection ends when the daemon closes it or the CLI exits; errors surface on the
        // request that was in flight.
        let _ = conn.await;
    });
    Ok(sender)
}

async fn handshake_upgradable<S>(stream: S) -> anyhow::Result<SendRequest<ReqBody>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("http handshake with the daemon")?;
    tokio::spawn(async move {
        // Ends when the upgraded stream is dropped or the daemon hangs up.
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// docker's wording for an error answer.
fn error_from_body(
    status: StatusCode,
    is_json: bool,
    body: &[u8],
    path: &str,
    version: &str,
) -> ApiError {
    let message = if is_json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
    } else {
        None
    };
    let message = match message {
        Some(m) => m,
        None => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            if text.is_empty() {
                let path = path.split('?').next().unwrap_or(path);
                format!(
                    "request returned {} for API route and version /v{version}{path}, check if the server supports the requested API version",
                    status_text(status)
                )
            } else {
                text
            }
        }
    };
    ApiError { status, message }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(mut body: Incoming, limit: usize) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the daemon's response")?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                bail!("the daemon's response is larger than {limit} bytes");
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

pub(crate) fn empty_body() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// min(server, ours), compared numerically per component ("1.9" < "1.41").
pub(crate) fn negotiate(server: &str, ours: &str) -> String {
    if version_lt(server, ours) {
        server.to_owned()
    } else {
        ours.to_owned()
    }
}

/// `a < b` for dotted version numbers.
pub(crate) fn version_lt(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (a, b) = (parse(a), parse(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

/// Builds a query string (`?a=1&b=x`) from the pairs whose value is present.
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            out.push(if out.is_empty() { '?' } else { '&' });
            out.push_str(&encode(k, ""));
            out.push('=');
            out.push_str(&encode(v, ""));
        }
    }
    out
}

/// Escapes an image or object name for use in a URL path ('/', ':' and '@' kept, as docker does).
pub(crate) fn path_escape(name: &str) -> String {
    encode(name, "/:@")
}

fn encode(s: &str, keep: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let c = char::from(b);
        if b.is_ascii_alphanumeric() || "-_.~".contains(c) || (b.is_ascii() && keep.contains(c)) {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_down_only() {
        let cases = [
            ("1.41", "1.51", "1.41"),
            ("1.51", "1.51", "1.51"),
            ("1.52", "1.51", "1.51"),
            ("1.9", "1.51", "1.9"),
            ("1.100", "1.51", "1.51"),
        ];
        for (server, ours, want) in cases {
            assert_eq!(negotiate(server, ours), want, "{server} vs {ours}");
        }
    }

    #[test]
    fn parses_hosts() {
        assert_eq!(
            parse_host("unix:///run/x.sock").ok(),
            Some(Endpoint::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://1.2.3.4:99").ok(),
            Some(Endpoint::Tcp("1.2.3.4:99".into()))
        );
        assert_eq!(
            parse_host("tcp://localhost").ok(),
            Some(Endpoint::Tcp("localhost:2375".into()))
        );
        assert!(parse_host("/run/x.sock").is_err());
        assert!(parse_host("unix://").is_err());
    }

    #[test]
    fn encodes_queries_and_paths() {
        assert_eq!(
            query(&[
                ("all", Some("1".into())),
                ("x", None),
                ("filters", Some(r#"{"a":{"b=c":true}}"#.into()))
            ]),
            "?all=1&filters=%7B%22a%22%3A%7B%22b%3Dc%22%3Atrue%7D%7D"
        );
        assert_eq!(
            path_escape("localhost:5000/a/b:1@sha256:ab"),
            "localhost:5000/a/b:1@sha256:ab"
        );
        assert_eq!(path_escape("a b?#"), "a%20b%3F%23");
    }

    #[test]
    fn error_wording() {
        let e = error_from_body(
            StatusCode::NOT_FOUND,
            true,
            br#"{"message":"No such image: x:latest"}"#,
            "/images/x/json",
            "1.51",
        );
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such image: x:latest"
        );
        assert!(e.is_not_found());
        let e = error_from_body(StatusCode::NOT_FOUND, false, b"", "/nope?x=1", "1.41");
        assert_eq!(
            e.to_string(),
            "Error response from daemon: request returned 404 Not Found for API route and version /v1.41/nope, check if the server supports the requested API version"
        );
    }
}
