//! The distribution client: pull and push against registries, auth (bearer and basic), and the
//! daemon-side pull/push service that streams blobs into the image store.
//!
//! Our own client on hyper rather than oci-client: a pull must report every byte as it arrives
//! (Docker's progress stream), stream blobs straight into the content store without buffering,
//! and pass Docker's error texts through; push likewise streams files with progress.

mod client;
mod layer;
mod provenance;
mod pull;
mod push;
mod tls;
mod upload;

use std::net::IpAddr;
use std::sync::Arc;

use estiba_events::EventBus;
use estiba_image::reference::Reference;
use estiba_image::service::{ImageError, ImageService};

pub use client::Credentials;
pub use pull::{PullRequest, RemoteInfo};
pub use push::PushRequest;

/// Registry settings (dockerd's flags and daemon.json keys).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `--insecure-registry`: hosts or CIDRs reached over plain HTTP (127.0.0.0/8 always is).
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror`: mirrors for docker.io.
    pub mirrors: Vec<String>,
    /// `max-concurrent-downloads` (Docker's default 3).
    pub max_concurrent_downloads: usize,
    /// `max-concurrent-uploads` (Docker's default 5).
    pub max_concurrent_uploads: usize,
    /// Where the registry service keeps its state (blob provenance for mounts); in memory
    /// only when None.
    pub state_dir: Option<std::path::PathBuf>,
    /// Docker's per-registry certificate directories (`/etc/docker/certs.d`).
    pub certs_dir: std::path::PathBuf,
}

/// Errors of pull, push and login; the daemon maps each to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 404 — "manifest for x:1 not found: manifest unknown: manifest unknown".
    #[error("{0}")]
    NotFound(String),
    /// 401 — wrong or missing credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 400 — a reference or parameter that does not parse.
    #[error("{0}")]
    BadRequest(String),
    /// 500 — the registry sent something invalid or hostile (bad digest, bad JSON).
    #[error("{0}")]
    Invalid(String),
    /// 500 — a bounded answer was larger than its limit.
    #[error("answer larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// 500 — connection failed or broke off.
    #[error("{0}")]
    Unreachable(String),
    /// The image store refused or failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// One progress line, Docker's JSONMessage in domain form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub id: Option<String>,
    pub status: String,
    /// (current, total) bytes for "Downloading" / "Pushing".
    pub detail: Option<(u64, u64)>,
    /// Push result: (tag, digest, size).
    pub aux: Option<(String, String, u64)>,
}

impl Progress {
    pub(crate) fn line(status: impl Into<String>) -> Progress {
        Progress {
            status: status.into(),
            ..Default::default()
        }
    }

    pub(crate) fn of(id: &str, status: impl Into<String>) -> Progress {
        Progress {
            id: Some(id.to_string()),
            status: status.into(),
            ..Default::default()
        }
    }
}

/// Where progress lines go; a closed channel (client gone) does not stop the operation.
pub type ProgressSender = tokio::sync::mpsc::Sender<Progress>;

/// The pull/push service.
pub struct RegistryService {
    images: Arc<ImageService>,
    #[allow(dead_code)]
    events: Arc<EventBus>,
    config: RegistryConfig,
    /// Layer fetches under way, shared by concurrent pulls.
    inflight: Arc<layer::InFlight>,
    /// Which repositories hold which blobs (for cross-repository mounts).
    provenance: provenance::Provenance,
}

impl RegistryService {
    pub fn new(
        images: Arc<ImageService>,
        events: Arc<EventBus>,
        config: RegistryConfig,
    ) -> Arc<RegistryService> {
        Arc::new(RegistryService {
            images,
            events,
            provenance: provenance::Provenance::open(config.state_dir.clone()),
            config,
            inflight: Arc::default(),
        })
    }

    /// The base URL for a registry domain: plain HTTP for insecure registries; docker.io goes
    /// to its first mirror.
    pub(crate) fn endpoint(&self, r: &Reference) -> Result<String, RegistryError> {
        let domain = r.domain();
        if domain == estiba_image::reference::DEFAULT_DOMAIN {
            if let Some(m) = self.config.mirrors.first() {
                return Ok(m.trim_end_matches('/').to_string());
            }
        }
        if self.is_insecure(domain) {
            return Ok(format!("http://{domain}"));
        }
        if domain == estiba_image::reference::DEFAULT_DOMAIN {
            return Ok("https://registry-1.docker.io".to_string());
        }
        Ok(format!("https://{domain}"))
    }

    /// A session on `base` for `domain`'s repository `repo`, with `domain`'s TLS settings.
    pub(crate) fn session(
        &self,
        domain: &str,
        base: String,
        repo: String,
        creds: Credentials,
        push: bool,
    ) -> Result<client::Session, RegistryError> {
        let tls = tls::client_config(&self.config.certs_dir, domain)?;
        Ok(client::Session::new(base, repo, creds, push, tls))
    }

    fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        if host == "localhost" {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip.is_loopback() {
                return true;
            }
            if self
                .config
                .insecure_registries
                .iter()
                .any(|c| in_cidr(ip, c))
            {
                return true;
            }
        }
        self.config
            .insecure_registries
            .iter()
            .any(|r| r == domain || r == host)
    }

    /// Checks credentials against a registry (`docker login`).
    pub async fn login(&self, server: &str, creds: Credentials) -> Result<(), RegistryError> {
        let server = server
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        let r = Reference::parse_normalized(&format!("{server}/login-probe"))
            .map_err(|e| RegistryError::BadRequest(e.to_string()))?;
        let base = self.endpoint(&r)?;
        let mut s = self.session(r.domain(), base.clone(), String::new(), creds, false)?;
        let url = format!("{base}/v2/");
        let failed = |status: &str| {
            RegistryError::Unauthorized(format!(
                "login attempt to {url} failed with status: {status}"
            ))
        };
        let resp = match s
            .send(hyper::Method::GET, &url, None, bytes::Bytes::new(), &[])
            .await
        {
            Ok(r) => r,
            Err(RegistryError::Unauthorized(_)) => return Err(failed("401 Unauthorized")),
            Err(e) => return Err(e),
        };
        if resp.status().is_success() {
            return Ok(());
        }
        let st = resp.status();
        Err(failed(&format!(
            "{} {}",
            st.as_u16(),
            st.canonical_reason().unwrap_or_default()
        )))
    }
}

fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    domain.rsplit_once(':').map_or(domain, |(h, _)| h)
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_and_hosts() {
        assert!(in_cidr("10.1.2.3".parse().unwrap(), "10.0.0.0/8"));
        assert!(!in_cidr("11.1.2.3".parse().unwrap(), "10.0.0.0/8"));
        assert!(!in_cidr("10.1.2.3".parse().unwrap(), "bogus"));
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5000"), "::1");
        assert_eq!(host_of("example.com"), "example.com");
    }
}
