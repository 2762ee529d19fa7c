//! Docker image references (`[domain[:port]/]path[:tag][@digest]`), parsed, normalised and
//! validated the way Docker's `distribution/reference` package does it, with its error wording.
//!
//! The grammar (from distribution/reference):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := (domain-name | '[' ipv6 ']') [':' port-number]
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/
//! ```
//!
//! The parser is hand-written (no regex engine) and runs in linear time; inputs longer than
//! [`MAX_REFERENCE_BYTES`] are refused before any work is done.

use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The Docker Hub domain of old, normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a name-only reference gets.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path (the name without its domain) Docker accepts.
pub const MAX_PATH_CHARS: usize = 255;
/// Longest tag Docker accepts.
pub const MAX_TAG_CHARS: usize = 128;
/// Longest input we look at. Docker sets no overall limit, but a valid reference cannot come
/// near this (255-byte path, 128-byte tag, a DNS name, a sha512 digest).
pub const MAX_REFERENCE_BYTES: usize = 1024;

/// Why a string is not a valid image reference; `Display` is Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not follow the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The repository path (after domain normalisation) has uppercase letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NameNotLowercase(String),
    /// The reference would be valid lowercased (an uppercase letter where the domain was
    /// guessed to be a host name).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The reference has no repository name.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The repository path is longer than [`MAX_PATH_CHARS`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// The whole reference is a 64-character hex string, which would read as an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// A tag given on its own (for [`Reference::with_tag`]) is not a valid tag.
    #[error("invalid tag format")]
    TagInvalidFormat,
    /// A digest given on its own (for [`Reference::with_digest`]) is not a valid digest.
    #[error("invalid digest format")]
    DigestInvalidFormat,
    /// The digest's hex part is not lowercase hex.
    #[error("invalid checksum digest format")]
    ChecksumInvalidFormat,
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    ChecksumInvalidLength,
    /// A string that must be in full form (a stored reference) is not.
    #[error("repository name must be canonical")]
    NameNotCanonical,
    /// The digest's algorithm is not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A normalised, named image reference: `domain/path[:tag][@digest]`.
///
/// `domain` is empty only for the rare names whose first component looked like a host but is
/// not a valid one (Docker then keeps the whole string as the path, e.g. `foo_x.com/bar`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses a reference as a user writes it, normalising the familiar form:
    /// `busybox` -> `docker.io/library/busybox` (no tag is added; see [`Self::with_default_tag`]).
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() > MAX_REFERENCE_BYTES {
            return Err(ReferenceError::InvalidFormat);
        }
        if s.len() == 64 && is_lower_hex(s) {
            return Err(ReferenceError::HexName(s.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder,
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::NameNotLowercase(remote.to_owned()));
        }
        parse(&format!("{domain}/{remainder}"))
    }

    /// Docker's `Parse`: the grammar without normalisation (`busybox` stays a domain-less
    /// `busybox`, no `library/` is added). Prefer [`Self::parse_normalized`] for user input and
    /// [`Self::parse_full`] for stored references.
    pub fn parse_canonical(s: &str) -> Result<Reference, ReferenceError> {
        if s.len() > MAX_REFERENCE_BYTES {
            return Err(ReferenceError::InvalidFormat);
        }
        parse(s)
    }

    /// Docker's `ParseNamed`: a reference that must already be in its full, normalised form
    /// (`docker.io/library/busybox:latest`), as stored references are.
    pub fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
        let r = Reference::parse_normalized(s)?;
        if r.to_string() != s {
            return Err(ReferenceError::NameNotCanonical);
        }
        Ok(r)
    }

    /// Adds the tag `latest` when the reference has neither a tag nor a digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// Sets (or replaces) the tag; a digest, if any, is kept.
    pub fn with_tag(mut self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::TagInvalidFormat);
        }
        self.tag = Some(tag.to_owned());
        Ok(self)
    }

    /// Sets (or replaces) the digest (`sha256:<hex>`); a tag, if any, is kept.
    pub fn with_digest(mut self, digest: &str) -> Result<Reference, ReferenceError> {
        if !is_digest_syntax(digest) {
            return Err(ReferenceError::DigestInvalidFormat);
        }
        validate_digest(digest)?;
        self.digest = Some(digest.to_owned());
        Ok(self)
    }

    /// The reference without its tag and digest.
    pub fn trim(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// Like Docker's `ParseDockerRef` result: a reference with both a tag and a digest keeps
    /// only the digest; a name-only one gets `latest`.
    pub fn docker_ref(self) -> Reference {
        match (&self.tag, &self.digest) {
            (Some(_), Some(_)) => Reference { tag: None, ..self },
            _ => self.with_default_tag(),
        }
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The name as Docker shows it: `busybox`, `me/bb`, `127.0.0.1:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as Docker shows it: `busybox:latest`, `me/bb:1`,
    /// `busybox@sha256:...`, `a:1@sha256:...`.
    pub fn familiar_string(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    /// The registry host (`docker.io`, `localhost:5000`); empty for the rare domain-less name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<hex>`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// True when the reference has neither tag nor digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse_full(&s).map_err(serde::de::Error::custom)
    }
}

/// True when `s` can name an image by ID or ID prefix: 1 to 64 lowercase hex characters,
/// optionally after `sha256:`.
pub fn is_image_id_prefix(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (1..=64).contains(&hex.len()) && is_lower_hex(hex)
}

/// True when `s` is a valid tag on its own (`[\w][\w.-]{0,127}`).
pub fn is_tag(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(first) if is_word(first) => {}
        _ => return false,
    }
    s.len() <= MAX_TAG_CHARS && bytes.all(|b| is_word(b) || b == b'.' || b == b'-')
}

/// Docker's `splitDockerDomain`: decides whether the first component is a registry host and
/// adds `docker.io` and `library/` where the familiar form leaves them out.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, remote) = if maybe_domain == "localhost" {
        (maybe_domain, maybe_remote)
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        // An uppercase first component cannot be a namespace, so Docker reads it as a host.
        (maybe_domain, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain, remote.to_owned())
}

/// Docker's `Parse` restricted to named references.
fn parse(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::NameEmpty);
    }
    let Some(parts) = match_reference(s) else {
        let lower = s.to_lowercase();
        if lower != s && match_reference(&lower).is_some() {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    if parts.path.len() > MAX_PATH_CHARS {
        return Err(ReferenceError::NameTooLong);
    }
    if let Some(digest) = parts.digest {
        validate_digest(digest)?;
    }
    if parts.path.is_empty() {
        return Err(ReferenceError::NameEmpty);
    }
    Ok(Reference {
        domain: parts.domain.to_owned(),
        path: parts.path.to_owned(),
        tag: parts.tag.map(str::to_owned),
        digest: parts.digest.map(str::to_owned),
    })
}

/// The pieces of a string that matches the reference grammar.
struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches the anchored reference grammar; the split is the one Go's leftmost-first regexp
/// gives (a first component that is a valid host is the domain).
fn match_reference(s: &str) -> Option<Parts<'_>> {
    // Neither name nor tag can hold '@', and the digest cannot either: split on the first.
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => {
            if !is_digest_syntax(digest) {
                return None;
            }
            (name_tag, Some(digest))
        }
        None => (s, None),
    };
    // A ':' after the last '/' can only start a tag (a port is always followed by a '/').
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            let tag = &name_tag[colon + 1..];
            if !is_tag(tag) {
                return None;
            }
            (&name_tag[..colon], Some(tag))
        }
        _ => (name_tag, None),
    };
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) && is_remote_name(rest) => (first, rest),
        _ if is_remote_name(name) => ("", name),
        _ => return None,
    };
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `path-component ['/' path-component]*`
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && is_lower_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `(domain-name | '[' ipv6 ']') [':' port]`
fn is_domain(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        return !inner.is_empty()
            && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            && is_optional_port(after);
    }
    let (host, port) = match s.find(':') {
        Some(colon) => s.split_at(colon),
        None => (s, ""),
    };
    is_optional_port(port) && host.split('.').all(is_domain_component)
}

/// `(?::[0-9]+)?`
fn is_optional_port(s: &str) -> bool {
    match s.strip_prefix(':') {
        Some(port) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => s.is_empty(),
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|component| {
        let mut bytes = component.bytes();
        matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Digest.Validate`, for a string that already has the digest syntax.
fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ReferenceError::ChecksumInvalidFormat);
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != hex_len {
        return Err(ReferenceError::ChecksumInvalidLength);
    }
    if !is_lower_hex(hex) {
        return Err(ReferenceError::ChecksumInvalidFormat);
    }
    Ok(())
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Go's `\w`: ASCII letters, digits and '_'.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
