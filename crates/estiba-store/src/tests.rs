//! Unit tests of the metadata database against a temp dir.

use super::*;

fn image(id: &str) -> ImageRecord {
    ImageRecord {
        id: id.to_string(),
        config_size_bytes: 10,
        manifest: None,
        diff_ids: vec!["sha256:d".into()],
        chain_ids: vec!["sha256:d".into()],
        created_rfc3339: "2024-01-01T00:00:00Z".into(),
        created: 1_704_067_200,
        created_nano: 1_704_067_200_000_000_000,
        size_bytes: 5,
        last_tag_time: None,
        parent: None,
        labels: Default::default(),
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
        stored_nano: 0,
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("metadata.redb")).unwrap();
    (dir, store)
}

#[test]
fn committed_writes_are_visible_and_survive_reopen() {
    let (dir, store) = open();
    let mut tx = store.write().unwrap();
    tx.put_image(&image("sha256:a")).unwrap();
    assert_eq!(
        tx.put_tag("docker.io/library/x:1", "sha256:a").unwrap(),
        None
    );
    tx.commit().unwrap();
    drop(store);

    let store = Store::open(&dir.path().join("metadata.redb")).unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.image("sha256:a").unwrap(), Some(image("sha256:a")));
    assert_eq!(
        r.tags().unwrap(),
        vec![("docker.io/library/x:1".to_string(), "sha256:a".to_string())]
    );
    assert_eq!(
        r.get::<u32>(tables::META, "schema_version").unwrap(),
        Some(SCHEMA_VERSION)
    );
}

#[test]
fn unsynced_commits_are_visible_at_once_and_durable_with_the_next_commit() {
    let (dir, store) = open();
    let mut tx = store.write().unwrap();
    tx.put_image(&image("sha256:a")).unwrap();
    tx.commit_unsynced().unwrap();
    // Visible to readers before any sync.
    assert_eq!(
        store.read().unwrap().image("sha256:a").unwrap(),
        Some(image("sha256:a"))
    );
    let mut tx = store.write().unwrap();
    tx.put_image(&image("sha256:b")).unwrap();
    tx.commit().unwrap();
    drop(store);
    let store = Store::open(&dir.path().join("metadata.redb")).unwrap();
    let r = store.read().unwrap();
    assert_eq!(r.image("sha256:a").unwrap(), Some(image("sha256:a")));
    assert_eq!(r.image("sha256:b").unwrap(), Some(image("sha256:b")));
}

#[test]
fn dropped_write_transaction_changes_nothing() {
    let (_dir, store) = open();
    {
        let mut tx = store.write().unwrap();
        tx.put_image(&image("sha256:a")).unwrap();
    }
    assert!(store.read().unwrap().images().unwrap().is_empty());
}

#[test]
fn put_tag_reports_the_previous_image_and_scan_honours_prefix() {
    let (_dir, store) = open();
    let mut tx = store.write().unwrap();
    tx.put_tag("docker.io/library/x:1", "sha256:a").unwrap();
    tx.put_tag("docker.io/library/y:1", "sha256:a").unwrap();
    assert_eq!(
        tx.put_tag("docker.io/library/x:1", "sha256:b").unwrap(),
        Some("sha256:a".to_string())
    );
    let x: Vec<(String, TagRecord)> = tx.scan(tables::TAGS, "docker.io/library/x").unwrap();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].1.image_id, "sha256:b");
    assert!(tx.remove_tag("docker.io/library/y:1").unwrap());
    assert!(!tx.remove_tag("docker.io/library/y:1").unwrap());
    tx.commit().unwrap();
    assert_eq!(store.read().unwrap().tags().unwrap().len(), 1);
}

#[test]
fn unknown_tables_read_as_empty_and_are_created_on_write() {
    const EXTRA: Table = Table::new("containers");
    let (_dir, store) = open();
    assert!(store
        .read()
        .unwrap()
        .scan::<String>(EXTRA, "")
        .unwrap()
        .is_empty());
    let mut tx = store.write().unwrap();
    tx.put(EXTRA, "c1", "hello").unwrap();
    tx.commit().unwrap();
    assert_eq!(
        store.read().unwrap().get::<String>(EXTRA, "c1").unwrap(),
        Some("hello".to_string())
    );
}

#[test]
fn corrupt_record_is_an_error_not_a_panic() {
    let (_dir, store) = open();
    let mut tx = store.write().unwrap();
    tx.put(tables::IMAGES, "sha256:bad", "not an image")
        .unwrap();
    tx.commit().unwrap();
    let err = store.read().unwrap().images().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "images",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn newer_schema_is_refused() {
    let (dir, store) = open();
    let mut tx = store.write().unwrap();
    tx.put(tables::META, "schema_version", &(SCHEMA_VERSION + 1))
        .unwrap();
    tx.commit().unwrap();
    drop(store);
    let err = Store::open(&dir.path().join("metadata.redb")).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}
