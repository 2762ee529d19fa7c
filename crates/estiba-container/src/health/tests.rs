//! Unit tests of the health-check rules (parsing, merging, validation, result handling).

use serde_json::json;

use super::*;

fn probe(retries: i64, start_period: Duration) -> Probe {
    Probe {
        cmd: vec!["true".into()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        start_period,
        retries,
    }
}

fn result(exit_code: i64) -> HealthResult {
    HealthResult {
        exit_code,
        ..HealthResult::default()
    }
}

#[test]
fn probes_from_the_api_shape() {
    let p = probe_of(Some(
        &json!({"Test": ["CMD-SHELL", "curl -f localhost || exit 1"],
        "Interval": 2_000_000_000i64, "Retries": 5}),
    ))
    .expect("a probe");
    assert_eq!(p.cmd, ["/bin/sh", "-c", "curl -f localhost || exit 1"]);
    assert_eq!(p.interval, Duration::from_secs(2));
    assert_eq!(p.timeout, DEFAULT_TIMEOUT);
    assert_eq!(p.start_period, Duration::ZERO);
    assert_eq!(p.retries, 5);

    let p = probe_of(Some(&json!({"Test": ["CMD", "pg_isready", "-q"]}))).expect("a probe");
    assert_eq!(p.cmd, ["pg_isready", "-q"]);
    assert_eq!((p.interval, p.retries), (DEFAULT_INTERVAL, DEFAULT_RETRIES));

    for none in [
        json!({"Test": ["NONE"]}),
        json!({"Test": []}),
        json!({"Test": ["CMD"]}),
        json!({"Test": ["BOGUS", "x"]}),
        json!({}),
    ] {
        assert_eq!(probe_of(Some(&none)), None, "{none}");
    }
    assert_eq!(probe_of(None), None);
}

#[test]
fn validation_as_dockerd() {
    assert!(validate(Some(&json!({"Interval": 1_000_000}))).is_ok());
    assert!(validate(Some(&json!({"Interval": 0, "Retries": 0}))).is_ok());
    let err = |v: serde_json::Value| validate(Some(&v)).expect_err("refused").to_string();
    assert_eq!(
        err(json!({"Interval": 999_999})),
        "Interval in Healthcheck cannot be less than 1ms"
    );
    assert_eq!(
        err(json!({"Timeout": 5})),
        "Timeout in Healthcheck cannot be less than 1ms"
    );
    assert_eq!(
        err(json!({"StartPeriod": 1})),
        "StartPeriod in Healthcheck cannot be less than 1ms"
    );
    assert_eq!(
        err(json!({"Retries": -1})),
        "Retries in Healthcheck cannot be negative"
    );
}

#[test]
fn the_users_fields_over_the_images() {
    let image = json!({"Test": ["CMD", "check"], "Interval": 5, "Retries": 7});
    let merged = merge(
        Some(json!({"Test": [], "Interval": 9})),
        Some(image.clone()),
    )
    .expect("merged");
    assert_eq!(merged["Test"], json!(["CMD", "check"]));
    assert_eq!(merged["Interval"], 9);
    assert_eq!(merged["Retries"], 7);
    assert_eq!(merge(None, Some(image.clone())), Some(image.clone()));
    let user = json!({"Test": ["NONE"]});
    let kept = merge(Some(user.clone()), Some(image)).expect("merged");
    assert_eq!(kept["Test"], user["Test"]);
    assert_eq!(merge(None, None), None);
}

#[test]
fn results_move_the_status_as_dockerd() {
    let p = probe(2, Duration::from_secs(10));
    let mut h = Health {
        status: STARTING.into(),
        ..Health::default()
    };
    // Failures inside the start period do not count while starting.
    apply_result(&mut h, result(1), &p, Duration::from_secs(1));
    assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
    apply_result(&mut h, result(0), &p, Duration::from_secs(2));
    assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
    // Once healthy, failures count even inside the start period.
    apply_result(&mut h, result(1), &p, Duration::from_secs(3));
    assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
    apply_result(&mut h, result(-1), &p, Duration::from_secs(4));
    assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
    for _ in 0..5 {
        apply_result(&mut h, result(0), &p, Duration::from_secs(20));
    }
    assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
    assert_eq!(h.status, HEALTHY);
}

#[test]
fn probe_output_is_unframed_and_bounded() {
    let (a, mut b) = UnixStream::pair().expect("socket pair");
    let mut frames = Vec::new();
    for (kind, text) in [(1u8, "out\n".repeat(2000)), (2u8, "err\n".into())] {
        frames.extend_from_slice(&[kind, 0, 0, 0]);
        frames.extend_from_slice(&(text.len() as u32).to_be_bytes());
        frames.extend_from_slice(text.as_bytes());
    }
    std::io::Write::write_all(&mut b, &frames).expect("write");
    drop(b);
    let mut out = Vec::new();
    assert!(read_output(
        a,
        Instant::now() + Duration::from_secs(5),
        &mut out
    ));
    assert_eq!(out.len(), MAX_OUTPUT_BYTES);
    assert!(out.starts_with(b"out\nout\n"));

    let (a, _b) = UnixStream::pair().expect("socket pair");
    let mut out = Vec::new();
    assert!(!read_output(
        a,
        Instant::now() + Duration::from_millis(50),
        &mut out
    ));
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
}
