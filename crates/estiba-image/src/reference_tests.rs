//! Data-driven tests for image reference parsing, checked against Docker's behaviour and
//! distribution/reference's own test vectors.

use super::*;

const D: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";
const HEX64: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

/// (input, full form, familiar name, familiar string)
const VALID: &[(&str, &str, &str, &str)] = &[
    ("busybox", "docker.io/library/busybox", "busybox", "busybox"),
    (
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "busybox",
        "busybox:latest",
    ),
    (
        "busybox:1.36.1-glibc",
        "docker.io/library/busybox:1.36.1-glibc",
        "busybox",
        "busybox:1.36.1-glibc",
    ),
    ("me/bb:1", "docker.io/me/bb:1", "me/bb", "me/bb:1"),
    (
        "library/busybox",
        "docker.io/library/busybox",
        "busybox",
        "busybox",
    ),
    (
        "docker.io/busybox",
        "docker.io/library/busybox",
        "busybox",
        "busybox",
    ),
    (
        "docker.io/library/busybox:1",
        "docker.io/library/busybox:1",
        "busybox",
        "busybox:1",
    ),
    (
        "index.docker.io/busybox",
        "docker.io/library/busybox",
        "busybox",
        "busybox",
    ),
    ("index.docker.io/me/bb", "docker.io/me/bb", "me/bb", "me/bb"),
    (
        "docker.io/library/a/b",
        "docker.io/library/a/b",
        "library/a/b",
        "library/a/b",
    ),
    (
        "127.0.0.1:5000/x",
        "127.0.0.1:5000/x",
        "127.0.0.1:5000/x",
        "127.0.0.1:5000/x",
    ),
    (
        "127.0.0.1:5000/x:2",
        "127.0.0.1:5000/x:2",
        "127.0.0.1:5000/x",
        "127.0.0.1:5000/x:2",
    ),
    ("localhost/x", "localhost/x", "localhost/x", "localhost/x"),
    (
        "localhost:5000/ns/x:tag",
        "localhost:5000/ns/x:tag",
        "localhost:5000/ns/x",
        "localhost:5000/ns/x:tag",
    ),
    (
        "localhost:5000",
        "docker.io/library/localhost:5000",
        "localhost",
        "localhost:5000",
    ),
    (
        "localhost",
        "docker.io/library/localhost",
        "localhost",
        "localhost",
    ),
    (
        "example.com/a/b/c",
        "example.com/a/b/c",
        "example.com/a/b/c",
        "example.com/a/b/c",
    ),
    (
        "Example.COM/a",
        "Example.COM/a",
        "Example.COM/a",
        "Example.COM/a",
    ),
    ("Foo/bar", "Foo/bar", "Foo/bar", "Foo/bar"),
    (
        "my-reg:443/a",
        "my-reg:443/a",
        "my-reg:443/a",
        "my-reg:443/a",
    ),
    (
        "[::1]:5000/x:y",
        "[::1]:5000/x:y",
        "[::1]:5000/x",
        "[::1]:5000/x:y",
    ),
    ("[fe80::1]/x", "[fe80::1]/x", "[fe80::1]/x", "[fe80::1]/x"),
    (
        "foo_x.com/bar",
        "foo_x.com/bar",
        "foo_x.com/bar",
        "foo_x.com/bar",
    ),
    (
        "a.b__c-d---e/f_g.h",
        "a.b__c-d---e/f_g.h",
        "a.b__c-d---e/f_g.h",
        "a.b__c-d---e/f_g.h",
    ),
    ("a__b", "docker.io/library/a__b", "a__b", "a__b"),
    (
        "x:Tag_With.dots-1",
        "docker.io/library/x:Tag_With.dots-1",
        "x",
        "x:Tag_With.dots-1",
    ),
    ("x:_", "docker.io/library/x:_", "x", "x:_"),
    ("0", "docker.io/library/0", "0", "0"),
];

#[test]
fn valid_references_normalise_like_docker() {
    for (input, full, familiar_name, familiar) in VALID {
        let r = Reference::parse_normalized(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
        assert_eq!(r.to_string(), *full, "full form of {input:?}");
        assert_eq!(
            r.familiar_name(),
            *familiar_name,
            "familiar name of {input:?}"
        );
        assert_eq!(
            r.familiar_string(),
            *familiar,
            "familiar string of {input:?}"
        );
        // The full form parses back to the same reference, both ways.
        assert_eq!(
            Reference::parse_normalized(full).as_ref(),
            Ok(&r),
            "{full:?}"
        );
        assert_eq!(
            Reference::parse_canonical(full).as_ref(),
            Ok(&r),
            "{full:?}"
        );
        assert_eq!(full.parse::<Reference>().as_ref(), Ok(&r));
    }
}

#[test]
fn digests() {
    let cases: &[(String, &str, &str, Option<&str>)] = &[
        (
            format!("busybox@{D}"),
            "docker.io/library/busybox",
            "busybox",
            None,
        ),
        (format!("a:1@{D}"), "docker.io/library/a", "a", Some("1")),
        (
            format!("localhost:5000/a:1@{D}"),
            "localhost:5000/a",
            "localhost:5000/a",
            Some("1"),
        ),
    ];
    for (input, name, familiar, tag) in cases {
        let r = Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.name(), *name);
        assert_eq!(r.tag(), *tag);
        assert_eq!(r.digest(), Some(D));
        let mut familiar_string = familiar.to_string();
        if let Some(t) = tag {
            familiar_string.push(':');
            familiar_string.push_str(t);
        }
        familiar_string.push('@');
        familiar_string.push_str(D);
        assert_eq!(r.familiar_string(), familiar_string);
        // A digest keeps with_default_tag from adding a tag.
        assert_eq!(r.clone().with_default_tag(), r);
    }
    let sha512 = format!("x@sha512:{}", "ab".repeat(64));
    assert!(Reference::parse_normalized(&sha512).is_ok());
    let sha384 = format!("x@sha384:{}", "ab".repeat(48));
    assert!(Reference::parse_normalized(&sha384).is_ok());
}

#[test]
fn invalid_references_get_dockers_errors() {
    use ReferenceError::*;
    let long_path = "a".repeat(248);
    let ok_path = "a".repeat(247);
    let long_tag = format!("x:{}", "t".repeat(129));
    let cases: Vec<(String, ReferenceError)> = vec![
        ("".into(), InvalidFormat),
        (":tag".into(), InvalidFormat),
        ("busybox:".into(), InvalidFormat),
        ("-x".into(), InvalidFormat),
        ("x-".into(), InvalidFormat),
        ("a:b:c".into(), InvalidFormat),
        ("a//b".into(), InvalidFormat),
        ("a/".into(), InvalidFormat),
        ("/a".into(), InvalidFormat),
        ("a..b".into(), InvalidFormat),
        ("a___b".into(), InvalidFormat),
        ("a b".into(), InvalidFormat),
        ("a:-tag".into(), InvalidFormat),
        ("a:.tag".into(), InvalidFormat),
        ("a@b@c".into(), InvalidFormat),
        ("a@".into(), InvalidFormat),
        ("a:t@sha256".into(), InvalidFormat),
        ("a:b/c".into(), InvalidFormat),
        ("http://example.com/a".into(), InvalidFormat),
        ("example.com:port/a".into(), InvalidFormat),
        ("-example.com/a".into(), InvalidFormat),
        ("busybox@sha256:abc".into(), InvalidFormat),
        (long_tag, InvalidFormat),
        ("busybÖx".into(), NameNotLowercase("library/busybÖx".into())),
        ("Busybox".into(), NameNotLowercase("library/Busybox".into())),
        (
            "Busybox:Latest".into(),
            NameNotLowercase("library/Busybox".into()),
        ),
        ("a/B".into(), NameNotLowercase("a/B".into())),
        ("localhost:5000/Foo".into(), NameNotLowercase("Foo".into())),
        (
            "example.com/a/Foo:1".into(),
            NameNotLowercase("a/Foo".into()),
        ),
        ("Foo_x/bar".into(), NameContainsUppercase),
        (long_path.clone(), NameTooLong),
        (format!("example.com/{}", "b".repeat(256)), NameTooLong),
        (HEX64.into(), HexName(HEX64.into())),
        (
            "busybox@sha999:0123456789abcdef0123456789abcdef".into(),
            DigestUnsupported,
        ),
        (
            "busybox@sha256:0123456789abcdef0123456789abcdef".into(),
            ChecksumInvalidLength,
        ),
        (
            format!("busybox@sha256:{}", HEX64.to_uppercase()),
            ChecksumInvalidFormat,
        ),
        (
            format!("example.com/{}", "a".repeat(MAX_REFERENCE_BYTES)),
            InvalidFormat,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(Reference::parse_normalized(&input), Err(want), "{input:?}");
    }
    assert!(Reference::parse_normalized(&ok_path).is_ok());
    assert!(Reference::parse_normalized(&format!("example.com/{}", "b".repeat(255))).is_ok());
    // A 64-hex string with anything else around it is an ordinary name.
    assert!(Reference::parse_normalized(&format!("{HEX64}:1")).is_ok());
    assert!(Reference::parse_normalized(&format!("me/{HEX64}")).is_ok());
}

/// Vectors from distribution/reference's own tests (TestValidateReferenceName and
/// TestValidateRemoteName), run through the normalising parser.
#[test]
fn distribution_name_vectors() {
    let valid = [
        "docker/docker",
        "library/debian",
        "localhost/library/debian",
        "LOCALDOMAIN/library/debian",
        "LOCALDOMAIN/debian",
        "index.docker.io/library/debian",
        "127.0.0.1:5000/library/debian",
        "192.168.0.1",
        "192.168.0.1:80",
        "192.168.0.1:8/debian",
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "[fc00::1]:5000/docker/docker",
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "Docker/docker",
        "DOCKER/docker",
        "docker---rules/docker",
        "d/docker",
        "dock__er/docker",
    ];
    for input in valid {
        assert!(
            Reference::parse_normalized(input).is_ok(),
            "{input:?} should be valid"
        );
    }
    let invalid = [
        "https://github.com/docker/docker",
        "docker/Docker",
        "-docker",
        "-docker/docker",
        "-docker.io/docker/docker",
        "docker///docker",
        "docker.io/docker/Docker",
        "[fc00::1]",
        "[fc00::1]:5000",
        "fc00::1:5000/debian",
        "[fe80::1%eth0]:5000/debian",
        "[2001:db8:3:4::192.0.2.33]:5000/debian",
        "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
        "docker-/docker",
        "____/____",
        "_docker/_docker",
        "dock..er/docker",
        "dock_.er/docker",
        "dock-.er/docker",
        "docker/",
    ];
    for input in invalid {
        assert!(
            Reference::parse_normalized(input).is_err(),
            "{input:?} should be invalid"
        );
    }
}

/// Vectors from distribution/reference's TestReferenceParse, through the non-normalising
/// parser: (input, domain, path, tag, digest) or the error.
#[test]
fn distribution_parse_vectors() {
    use ReferenceError::*;
    let f64 = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    type Want<'a> = Result<(&'a str, &'a str, Option<&'a str>, Option<&'a str>), ReferenceError>;
    let deep = format!("{}a", "a/".repeat(127));
    let deep_path = format!("{}a", "a/".repeat(126));
    let cases: Vec<(String, Want)> = vec![
        ("test_com".into(), Ok(("", "test_com", None, None))),
        (
            "test.com:5000".into(),
            Ok(("", "test.com", Some("5000"), None)),
        ),
        (
            "test:5000/repo".into(),
            Ok(("test:5000", "repo", None, None)),
        ),
        (
            format!("test:5000/repo:tag@{f64}"),
            Ok(("test:5000", "repo", Some("tag"), Some(f64))),
        ),
        ("".into(), Err(NameEmpty)),
        (":justtag".into(), Err(InvalidFormat)),
        (format!("@{f64}"), Err(InvalidFormat)),
        (
            "repo@sha256:ffffffffffffffffffffffffffffffffff".into(),
            Err(ChecksumInvalidLength),
        ),
        (
            format!("validname@invaliddigest:{}", "f".repeat(64)),
            Err(DigestUnsupported),
        ),
        ("Uppercase:tag".into(), Err(NameContainsUppercase)),
        (
            "test:5000/Uppercase/lowercase:tag".into(),
            Err(NameContainsUppercase),
        ),
        (
            "lowercase:Uppercase".into(),
            Ok(("", "lowercase", Some("Uppercase"), None)),
        ),
        (format!("domain/{}:tag", "a".repeat(256)), Err(NameTooLong)),
        (
            format!("{deep}:tag-puts-this-over-max"),
            Ok(("a", &deep_path, Some("tag-puts-this-over-max"), None)),
        ),
        ("aa/asdf$$^/aa".into(), Err(InvalidFormat)),
        (
            "b.gcr.io/test.example.com/my-app:test.example.com".into(),
            Ok((
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
                None,
            )),
        ),
        (
            "foo_bar.com:8080".into(),
            Ok(("", "foo_bar.com", Some("8080"), None)),
        ),
        (
            "foo/foo_bar.com:8080".into(),
            Ok(("foo", "foo_bar.com", Some("8080"), None)),
        ),
        (
            "192.168.1.1:5000/repo:5050".into(),
            Ok(("192.168.1.1:5000", "repo", Some("5050"), None)),
        ),
        ("[2001:db8::1]".into(), Err(InvalidFormat)),
        ("[2001:db8::1]:5000".into(), Err(InvalidFormat)),
        ("[2001:db8::1]:tag".into(), Err(InvalidFormat)),
        (
            format!("[2001:db8::1]:5000/repo:tag@{f64}"),
            Ok(("[2001:db8::1]:5000", "repo", Some("tag"), Some(f64))),
        ),
        (
            "[2001:db8::]:5000/repo".into(),
            Ok(("[2001:db8::]:5000", "repo", None, None)),
        ),
        ("[fe80::1%eth0]:5000/repo".into(), Err(InvalidFormat)),
        (
            "[fe80::1%@invalidzone]:5000/repo".into(),
            Err(InvalidFormat),
        ),
    ];
    for (input, want) in cases {
        let got = Reference::parse_canonical(&input);
        let got = got
            .as_ref()
            .map(|r| (r.domain(), r.path(), r.tag(), r.digest()));
        assert_eq!(got, want.as_ref().map(|w| *w), "{input:?}");
    }
}

#[test]
fn error_wording() {
    let cases: &[(&str, &str)] = &[
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("a:b:c", "invalid reference format"),
        (HEX64, "invalid repository name (7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa), cannot specify 64-byte hexadecimal strings"),
        ("busybox@sha999:0123456789abcdef0123456789abcdef", "unsupported digest algorithm"),
    ];
    for (input, want) in cases {
        let err = Reference::parse_normalized(input)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(*want), "{input:?}");
    }
    assert_eq!(
        ReferenceError::NameTooLong.to_string(),
        "repository name must not be more than 255 characters"
    );
    assert_eq!(
        ReferenceError::NameEmpty.to_string(),
        "repository name must have at least one component"
    );
}

#[test]
fn tags_and_default_tag() {
    let r = Reference::parse_normalized("busybox").unwrap_or_else(|e| panic!("{e}"));
    assert!(r.is_name_only());
    assert_eq!(r.tag(), None);
    let latest = r.clone().with_default_tag();
    assert_eq!(latest.to_string(), "docker.io/library/busybox:latest");
    assert_eq!(latest.familiar_string(), "busybox:latest");
    assert_eq!(latest.clone().with_default_tag(), latest);
    let tagged = r.clone().with_tag("v1.2").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tagged.to_string(), "docker.io/library/busybox:v1.2");
    assert_eq!(tagged.clone().with_default_tag(), tagged);
    assert_eq!(tagged.trim(), r);
    for bad in ["", "-a", ".a", "a/b", "a:b", &"t".repeat(129)] {
        assert_eq!(
            r.clone().with_tag(bad),
            Err(ReferenceError::TagInvalidFormat),
            "{bad:?}"
        );
    }
    assert!(r.clone().with_tag(&"t".repeat(128)).is_ok());
    let digested = tagged
        .clone()
        .with_digest(D)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(digested.familiar_string(), format!("busybox:v1.2@{D}"));
    assert_eq!(
        digested.clone().docker_ref().familiar_string(),
        format!("busybox@{D}")
    );
    assert_eq!(r.clone().docker_ref(), latest);
    assert_eq!(
        r.clone().with_digest("sha256:xyz"),
        Err(ReferenceError::DigestInvalidFormat)
    );
}

#[test]
fn image_id_prefixes() {
    let cases: &[(&str, bool)] = &[
        ("0", true),
        ("09b23f020198", true),
        (HEX64, true),
        (D, true),
        ("sha256:09b", true),
        ("", false),
        ("sha256:", false),
        ("09B23F", false),
        ("busybox", false),
        ("sha512:09b", false),
    ];
    for (input, want) in cases {
        assert_eq!(is_image_id_prefix(input), *want, "{input:?}");
    }
    assert!(!is_image_id_prefix(&format!("{HEX64}0")));
}

#[test]
fn serde_round_trip() {
    let r = Reference::parse_normalized("localhost:5000/a:1").unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string(&r).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json, "\"localhost:5000/a:1\"");
    let back: Reference = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, r);
    // Stored references are in full form; anything else is refused.
    let short: Result<Reference, _> = serde_json::from_str("\"busybox:latest\"");
    assert!(short.is_err());
    assert_eq!(
        Reference::parse_full("busybox"),
        Err(ReferenceError::NameNotCanonical)
    );
    assert_eq!(
        Reference::parse_full("docker.io/library/busybox:1").map(|r| r.familiar_string()),
        Ok("busybox:1".to_owned())
    );
}

#[test]
fn ordering_is_by_name_then_tag() {
    let mut refs: Vec<Reference> = ["b:1", "a:2", "a:1", "a"]
        .iter()
        .filter_map(|s| Reference::parse_normalized(s).ok())
        .collect();
    refs.sort();
    let shown: Vec<String> = refs.iter().map(Reference::familiar_string).collect();
    assert_eq!(shown, ["a", "a:1", "a:2", "b:1"]);
}
