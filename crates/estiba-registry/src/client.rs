//! A minimal distribution-spec HTTP client on hyper: endpoints, Basic and Bearer auth, bounded
//! reads, streamed blob bodies.

use std::io;

use base64::Engine;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::RegistryError;

/// Bearer token answers larger than this are refused.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Error bodies we read for their message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Redirects followed for one blob.
const MAX_REDIRECTS: usize = 5;

pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

/// Credentials from X-Registry-Auth (docker's AuthConfig).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
}

impl Credentials {
    /// Decodes an X-Registry-Auth header (base64url JSON; docker also sends padded base64).
    pub fn from_header(value: &str) -> Option<Credentials> {
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let engines = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &base64::engine::general_purpose::STANDARD,
        ];
        let bytes = engines.iter().find_map(|e| e.decode(value).ok())?;
        serde_json::from_slice(&bytes).ok()
    }

    fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty()
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// One repository on one registry, with the auth state of this operation.
#[derive(Clone)]
pub(crate) struct Session {
    http: HyperClient<HttpsConnector<HttpConnector>, ReqBody>,
    /// "http://127.0.0.1:5000".
    base: String,
    /// "team/app".
    repo: String,
    creds: Credentials,
    authorization: Option<String>,
    /// Scope asked of a token server ("repository:team/app:pull").
    actions: &'static str,
}

pub(crate) fn full_body(b: Bytes) -> ReqBody {
    Full::new(b).map_err(|never| match never {}).boxed()
}

impl Session {
    /// A session on `base` ("https://host" or, for an insecure registry, "http://host"),
    /// speaking TLS with `tls`.
    pub(crate) fn new(
        base: String,
        repo: String,
        creds: Credentials,
        push: bool,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Session {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Session {
            http,
            base,
            repo,
            creds,
            authorization: None,
            actions: if push { "pull,push" } else { "pull" },
        }
    }

    pub(crate) fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repo)
    }

    fn request(
        &self,
        method: &Method,
        url: &str,
        accept: Option<&str>,
        body: ReqBody,
        headers: &[(&'static str, String)],
    ) -> Result<Request<ReqBody>, RegistryError> {
        let mut b = Request::builder().method(method.clone()).uri(url);
        if let Some(a) = accept {
            b = b.header(ACCEPT, a);
        }
        if let Some(auth) = &self.authorization {
            b = b.header(AUTHORIZATION, auth);
        }
        for (k, v) in headers {
            b = b.header(*k, v);
        }
        b.body(body)
            .map_err(|e| RegistryError::Invalid(format!("bad request to {url}: {e}")))
    }

    async fn send_once(&self, req: Request<ReqBody>) -> Result<Response<Incoming>, RegistryError> {
        let url = req.uri().to_string();
        self.http.request(req).await.map_err(|e| {
            let why = causes(&e);
            match x509_text(&why) {
                // Docker's words for a certificate that fails verification.
                Some(x509) => RegistryError::Unreachable(format!("Get \"{url}\": {x509}")),
                None => RegistryError::Unreachable(format!("{}: {why}", self.base)),
            }
        })
    }

    /// Sends a request with a small (replayable) body, authenticating once on a 401.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        url: &str,
        accept: Option<&str>,
        body: Bytes,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, RegistryError> {
        let req = self.request(&method, url, accept, full_body(body.clone()), headers)?;
        let resp = self.send_once(req).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.authenticate(&challenge).await?;
        let req = self.request(&method, url, accept, full_body(body), headers)?;
        let resp = self.send_once(req).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let msg = error_message(resp).await;
            return Err(RegistryError::Unauthorized(msg));
        }
        Ok(resp)
    }

    /// Sends a request whose body streams (not replayable); auth must be settled before.
    pub(crate) async fn send_stream(
        &self,
        method: Method,
        url: &str,
        body: ReqBody,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, RegistryError> {
        let req = self.request(&method, url, None, body, headers)?;
        self.send_once(req).await
    }

    /// GET following redirects (blob storage often redirects to a CDN).
    pub(crate) async fn get_following(
        &mut self,
        url: &str,
    ) -> Result<Response<Incoming>, RegistryError> {
        self.get_following_with(url, &[]).await
    }

    /// [`Session::get_following`] with extra headers (a Range for a resumed blob).
    pub(crate) async fn get_following_with(
        &mut self,
        url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            let resp = self
                .send(Method::GET, &url, None, Bytes::new(), headers)
                .await?;
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok(resp);
            };
            url = self.resolve(loc);
        }
        Err(RegistryError::Invalid(format!(
            "too many redirects for {url}"
        )))
    }

    /// An absolute URL for a Location header (which may be relative).
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    async fn authenticate(&mut self, challenge: &str) -> Result<(), RegistryError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            if self.creds.is_empty() {
                return Err(RegistryError::Unauthorized(
                    "no basic auth credentials".to_string(),
                ));
            }
            self.authorization = Some(self.creds.basic());
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(RegistryError::Unauthorized(format!(
                "unsupported authentication challenge {challenge:?}"
            )));
        }
        let param = |name: &str| -> Option<String> {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k.trim().eq_ignore_ascii_case(name))
                    .then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let realm = param("realm").ok_or_else(|| {
            RegistryError::Unauthorized("bearer challenge without a realm".to_string())
        })?;
        let mut url = format!("{realm}?scope=repository:{}:{}", self.repo, self.actions);
        if let Some(s) = param("service") {
            url.push_str(&format!("&service={s}"));
        }
        let mut b = Request::builder().method(Method::GET).uri(&url);
        if !self.creds.is_empty() {
            b = b.header(AUTHORIZATION, self.creds.basic());
        }
        let req = b
            .body(full_body(Bytes::new()))
            .map_err(|e| RegistryError::Invalid(format!("bad token url {url}: {e}")))?;
        let resp = self.send_once(req).await?;
        if !resp.status().is_success() {
            let msg = error_message(resp).await;
            return Err(RegistryError::Unauthorized(msg));
        }
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let body = read_bounded(resp, MAX_TOKEN_BYTES).await?;
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Invalid(format!("invalid token answer: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if HeaderValue::from_str(&token).is_err() || token.is_empty() {
            return Err(RegistryError::Invalid("invalid bearer token".to_string()));
        }
        self.authorization = Some(format!("Bearer {token}"));
        Ok(())
    }
}

/// An error and its sources: "client error (SendRequest): connection closed before message
/// completed".
/// Go's x509 error text for rustls's certificate verdicts, as the docker CLI shows them.
fn x509_text(causes: &str) -> Option<&'static str> {
    if causes.contains("UnknownIssuer") {
        Some("x509: certificate signed by unknown authority")
    } else if causes.contains("NotValidForName") {
        Some("x509: certificate is not valid for this host")
    } else if causes.contains("Expired") {
        Some("x509: certificate has expired or is not yet valid")
    } else if causes.contains("invalid peer certificate") {
        Some("x509: certificate verification failed")
    } else {
        None
    }
}

pub(crate) fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_bounded(
    resp: Response<Incoming>,
    limit: usize,
) -> Result<Bytes, RegistryError> {
    let declared = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(RegistryError::TooLarge(limit));
    }
    Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                RegistryError::TooLarge(limit)
            } else {
                RegistryError::Unreachable(format!("read answer: {e}"))
            }
        })
}

/// The distribution error body's first message ("manifest unknown: manifest unknown"), or
/// the HTTP status text.
pub(crate) async fn error_message(resp: Response<Incoming>) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = resp.status();
    let body = read_bounded(resp, MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => {
            let first = &e.errors[0];
            format!(
                "{}: {}",
                first.code.to_lowercase().replace('_', " "),
                first.message
            )
        }
        _ => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("error")
        ),
    }
}
