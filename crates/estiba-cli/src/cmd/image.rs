//! `images`, `tag`, `rmi`, `history` and `image prune`.

use std::io::{BufRead as _, Read as _};

use hyper::Method;
use serde_json::Value;

use crate::args::{
    check_args, filters_json, Arity, HistoryArgs, ImagesArgs, PruneArgs, RmiArgs, TagArgs,
};
use crate::client::{path_escape, query, Client};
use crate::format::{header, row, Format};
use crate::output::{go_time_string, out, rfc3339};
use crate::units::{
    ellipsis, human_size, human_size_precision, now_unix_nanos, since, truncate_id,
};
use crate::StatusError;

const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const IMAGE_TABLE_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const QUIET_FORMAT: &str = "{{.ID}}";

pub(crate) fn image_header() -> Value {
    header(&[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ])
}

fn i64_field(v: &Value, key: &str, default: i64) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(default)
}

fn str_list(v: &Value, key: &str) -> Vec<String> {
    match v.get(key).and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        None => Vec::new(),
    }
}

/// docker's `FamiliarName`: "docker.io/library/busybox" -> "busybox".
pub(crate) fn familiar(name: &str) -> &str {
    if let Some(rest) = name.strip_prefix("docker.io/") {
        return rest
            .strip_prefix("library/")
            .filter(|r| !r.contains('/'))
            .unwrap_or(rest);
    }
    name
}

/// Splits "name:tag" (the tag is after the last ':' that follows the last '/').
fn split_tag(reference: &str) -> Option<(&str, &str)> {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    let colon = reference[slash..].rfind(':')? + slash;
    let (name, tag) = (&reference[..colon], &reference[colon + 1..]);
    if name.is_empty() || tag.is_empty() || name.contains("<none>") {
        return None;
    }
    Some((name, tag))
}

/// One image summary's fields, the way docker's image context renders them.
struct ImageRow<'a> {
    img: &'a Value,
    repo: String,
    tag: String,
    digest: String,
}

fn push_grouped(groups: &mut Vec<(String, Vec<String>)>, key: &str, value: String) {
    match groups.iter_mut().find(|(k, _)| k == key) {
        Some((_, values)) => values.push(value),
        None => groups.push((key.to_owned(), vec![value])),
    }
}

/// docker's `imageFormatTaggedAndDigest`: one row per repository:tag (times digests when shown).
fn expand_image<'a>(img: &'a Value, need_digest: bool, show_digests: bool) -> Vec<ImageRow<'a>> {
    let tags = str_list(img, "RepoTags");
    let digests = str_list(img, "RepoDigests");
    let dangling = (tags.is_empty() && digests.is_empty())
        || (tags.len() == 1
            && tags[0] == "<none>:<none>"
            && digests.len() == 1
            && digests[0] == "<none>@<none>");
    if dangling {
        return vec![ImageRow {
            img,
            repo: "<none>".into(),
            tag: "<none>".into(),
            digest: "<none>".into(),
        }];
    }
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        if t.contains('@') {
            continue;
        }
        if let Some((name, tag)) = split_tag(t) {
            push_grouped(&mut repo_tags, familiar(name), tag.to_owned());
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in &digests {
        if let Some((name, digest)) = d.split_once('@') {
            if name.contains("<none>") || !digest.contains(':') {
                continue;
            }
            // A digest reference may carry a tag too ("a:1@sha256:..."): the name is what counts.
            let name = split_tag(name).map_or(name, |(n, _)| n);
            push_grouped(&mut repo_digests, familiar(name), digest.to_owned());
        }
    }
    let mut rows = Vec::new();
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(r, _)| r == repo);
        let mut ds = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
        if !need_digest {
            ds.clear();
        }
        for tag in tags {
            if ds.is_empty() {
                rows.push(ImageRow {
                    img,
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: "<none>".into(),
                });
            }
            for d in &ds {
                rows.push(ImageRow {
                    img,
                    repo: repo.clone(),
                    tag: tag.clone(),
                    digest: d.clone(),
                });
            }
        }
    }
    for (repo, ds) in repo_digests {
        if show_digests {
            for d in ds {
                rows.push(ImageRow {
                    img,
                    repo: repo.clone(),
                    tag: "<none>".into(),
                    digest: d,
                });
            }
        } else {
            rows.push(ImageRow {
                img,
                repo,
                tag: "<none>".into(),
                digest: String::new(),
            });
        }
    }
    rows
}

/// The row fields a format refers to, so `images` with many rows computes only those (dates
/// and sizes are most of its time); None when the format may use the whole row (`{{json .}}`,
/// `{{.}}`, variables, `range`).
pub(crate) fn row_fields_used(format: &str) -> Option<Vec<String>> {
    let whole_row = [
        "json .", "{{.}}", "{{ . }}", "$", "range", "with", "index", "printf",
    ];
    if whole_row.iter().any(|w| format.contains(w)) {
        return None;
    }
    let mut fields = Vec::new();
    let mut rest = format;
    while let Some(i) = rest.find('.') {
        let name: String = rest[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            return None;
        }
        rest = &rest[i + 1 + name.len()..];
        fields.push(name);
    }
    Some(fields)
}

fn render_image_row(
    r: &ImageRow<'_>,
    trunc: bool,
    now_nanos: i128,
    only: Option<&[String]>,
) -> Value {
    let wants = |field: &str| only.is_none_or(|f| f.iter().any(|x| x == field));
    let id = r.img.get("Id").and_then(Value::as_str).unwrap_or("");
    let created = i64_field(r.img, "Created", 0);
    let size = i64_field(r.img, "Size", 0);
    let shared = i64_field(r.img, "SharedSize", -1);
    let containers = i64_field(r.img, "Containers", -1);
    let na = |v: i64, s: String| if v == -1 { "N/A".to_owned() } else { s };
    let lazy = |field: &str, f: &dyn Fn() -> String| {
        if wants(field) {
            f()
        } else {
            String::new()
        }
    };
    row(&[
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_owned()
            },
        ),
        ("Repository", r.repo.clone()),
        ("Tag", r.tag.clone()),
        ("Digest", r.digest.clone()),
        (
            "CreatedSince",
            lazy("CreatedSince", &|| since(created, now_nanos)),
        ),
        ("CreatedAt", lazy("CreatedAt", &|| go_time_string(created))),
        (
            "Size",
            lazy("Size", &|| human_size_precision(size as f64, 3)),
        ),
        (
            "Containers",
            lazy("Containers", &|| na(containers, containers.to_string())),
        ),
        (
            "VirtualSize",
            lazy("VirtualSize", &|| human_size(size as f64)),
        ),
        (
            "SharedSize",
            lazy("SharedSize", &|| na(shared, human_size(shared as f64))),
        ),
        (
            "UniqueSize",
            lazy("UniqueSize", &|| {
                if size == -1 || shared == -1 {
                    "N/A".to_owned()
                } else {
                    human_size((size - shared) as f64)
                }
            }),
        ),
    ])
}

/// Rows for a list of image summaries, as docker's `ImageWrite`.
pub(crate) fn image_rows(
    images: &[Value],
    trunc: bool,
    need_digest: bool,
    show_digests: bool,
) -> Vec<Value> {
    image_rows_with(images, trunc, need_digest, show_digests, None)
}

/// [`image_rows`] computing only the fields in `only` (see [`row_fields_used`]); the others are
/// present but empty.
fn image_rows_with(
    images: &[Value],
    trunc: bool,
    need_digest: bool,
    show_digests: bool,
    only: Option<&[String]>,
) -> Vec<Value> {
    let now = now_unix_nanos();
    let mut rows = Vec::with_capacity(images.len());
    for img in images {
        for r in expand_image(img, need_digest, show_digests) {
            rows.push(render_image_row(&r, trunc, now, only));
        }
    }
    rows
}

/// `estiba images` / `estiba image ls`.
pub(crate) async fn list(client: &mut Client, a: ImagesArgs, path: &str) -> anyhow::Result<()> {
    check_args(path, &a.args, Arity::AtMost(1))?;
    let mut filters = a.filter.clone();
    if let Some(reference) = a.args.first() {
        filters.push(("reference".to_owned(), reference.clone()));
    }
    let q = query(&[
        ("all", a.all.then(|| "1".to_owned())),
        ("filters", filters_json(&filters)),
    ]);
    let images = client.get_json(&format!("/images/json{q}")).await?;
    let images = images.as_array().map(Vec::as_slice).unwrap_or(&[]);

    let source = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".to_owned());
    let format = if source == "table" {
        if a.quiet {
            QUIET_FORMAT.to_owned()
        } else if a.digests {
            IMAGE_TABLE_DIGEST.to_owned()
        } else {
            IMAGE_TABLE.to_owned()
        }
    } else if source.starts_with("table") && a.digests && !source.contains("{{.Digest}}") {
        format!("{source}\t{{{{.Digest}}}}")
    } else {
        source
    };
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let compiled = Format::new(&format)?;
    let only = row_fields_used(&format);
    let rows = image_rows_with(images, !a.no_trunc, need_digest, a.digests, only.as_deref());
    out(&compiled.render(&image_header(), &rows)?)
}

/// `estiba tag SOURCE TARGET`.
pub(crate) async fn tag(client: &mut Client, a: TagArgs, path: &str) -> anyhow::Result<()> {
    check_args(path, &a.args, Arity::Exactly(2))?;
    let (source, target) = (&a.args[0], &a.args[1]);
    if target.contains('@') {
        anyhow::bail!("refusing to create a tag with a digest reference");
    }
    let (repo, tag) = match split_tag(target) {
        Some((name, tag)) => (name.to_owned(), Some(tag.to_owned())),
        None => (target.clone(), Some("latest".to_owned())),
    };
    let q = query(&[("repo", Some(repo)), ("tag", tag)]);
    client
        .call_json(
            Method::POST,
            &format!("/images/{}/tag{q}", path_escape(source)),
        )
        .await?;
    Ok(())
}

/// `estiba rmi`: every name is tried; errors are reported together at the end (exit 1).
pub(crate) async fn remove(client: &mut Client, a: RmiArgs, path: &str) -> anyhow::Result<()> {
    check_args(path, &a.args, Arity::AtLeast(1))?;
    let q = query(&[
        ("force", a.force.then(|| "1".to_owned())),
        ("noprune", a.no_prune.then(|| "1".to_owned())),
    ]);
    let mut errors = Vec::new();
    for name in &a.args {
        match client
            .call_json(Method::DELETE, &format!("/images/{}{q}", path_escape(name)))
            .await
        {
            Ok(items) => {
                let mut text = String::new();
                for item in items.as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    if let Some(u) = item
                        .get("Untagged")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        text.push_str(&format!("Untagged: {u}\n"));
                    } else if let Some(d) = item
                        .get("Deleted")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        text.push_str(&format!("Deleted: {d}\n"));
                    }
                }
                out(&text)?;
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    StatusError::from_errors(errors)
}

pub(crate) fn history_header() -> Value {
    header(&[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ])
}

/// Rows of `history`, as docker's history context renders them.
pub(crate) fn history_rows(
    entries: &[Value],
    human: bool,
    trunc: bool,
    now_nanos: i128,
) -> Vec<Value> {
    entries
        .iter()
        .map(|h| {
            let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
            let created = i64_field(h, "Created", 0);
            let size = i64_field(h, "Size", 0);
            let created_by = h
                .get("CreatedBy")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\t', " ");
            let created_at = rfc3339(created);
            row(&[
                (
                    "ID",
                    if trunc {
                        truncate_id(id)
                    } else {
                        id.to_owned()
                    },
                ),
                (
                    "CreatedSince",
                    if human {
                        since(created, now_nanos)
                    } else {
                        created_at.clone()
                    },
                ),
                ("CreatedAt", created_at),
                (
                    "CreatedBy",
                    if trunc {
                        ellipsis(&created_by, 45)
                    } else {
                        created_by
                    },
                ),
                (
                    "Size",
                    if human {
                        human_size_precision(size as f64, 3)
                    } else {
                        size.to_string()
                    },
                ),
                (
                    "Comment",
                    h.get("Comment")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                ),
            ])
        })
        .collect()
}

/// `estiba history IMAGE`.
pub(crate) async fn history(client: &mut Client, a: HistoryArgs, path: &str) -> anyhow::Result<()> {
    check_args(path, &a.args, Arity::Exactly(1))?;
    let entries = client
        .get_json(&format!("/images/{}/history", path_escape(&a.args[0])))
        .await?;
    let entries = entries.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let source = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".to_owned());
    let format = if source == "table" {
        if a.quiet {
            QUIET_FORMAT
        } else if a.human {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        } else {
            "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        }
    } else {
        source.as_str()
    };
    let compiled = Format::new(format)?;
    let rows = history_rows(entries, a.human, !a.no_trunc, now_unix_nanos());
    out(&compiled.render(&history_header(), &rows)?)
}

const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str =
    "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

/// docker's prompt: prints "message [y/N] " and accepts "y"/"Y".
pub(crate) fn confirm(message: &str) -> anyhow::Result<bool> {
    out(&format!("{message} [y/N] "))?;
    let mut answer = String::new();
    let stdin = std::io::stdin();
    // Bound what we read: a yes/no answer is one short line.
    let mut handle = stdin.lock().take(1024);
    handle.read_line(&mut answer)?;
    let answer = answer.trim();
    Ok(answer == "y" || answer == "Y")
}

/// The text docker prints for a prune report.
pub(crate) fn prune_report(report: &Value) -> String {
    let mut text = String::new();
    let deleted = report
        .get("ImagesDeleted")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        for item in deleted {
            if let Some(u) = item
                .get("Untagged")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                text.push_str(&format!("untagged: {u}\n"));
            } else {
                let d = item.get("Deleted").and_then(Value::as_str).unwrap_or("");
                text.push_str(&format!("deleted: {d}\n"));
            }
        }
        text.push('\n');
    }
    let reclaimed = report
        .get("SpaceReclaimed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    text
}

/// `estiba image prune`.
pub(crate) async fn prune(client: &mut Client, a: PruneArgs) -> anyhow::Result<()> {
    check_args("image prune", &a.args, Arity::None)?;
    let mut filters = a.filter.clone();
    filters.push(("dangling".to_owned(), (!a.all).to_string()));
    if !a.force && !confirm(if a.all { ALL_WARNING } else { DANGLING_WARNING })? {
        // docker treats a "no" as a cancellation that is not an error.
        return Ok(());
    }
    let q = query(&[("filters", filters_json(&filters))]);
    let report = client
        .call_json(Method::POST, &format!("/images/prune{q}"))
        .await?;
    out(&prune_report(&report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_a_format_uses() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("{{.ID}}", Some(&["ID"])),
            (
                "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
                Some(&["Repository", "Tag", "Size"]),
            ),
            ("{{json .}}", None),
            ("{{.}}", None),
            ("{{range $k, $v := .}}{{$k}}{{end}}", None),
            ("{{printf \"%s\" .Tag}}", None),
            ("{{.ID | json}}", Some(&["ID"])),
            ("a. b", None),
        ];
        for (format, want) in cases {
            let got = row_fields_used(format);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{format}");
        }
    }

    #[test]
    fn pruned_rows_render_like_full_rows() {
        let images = vec![json!({
            "Id": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "RepoTags": ["busybox:latest"], "RepoDigests": [], "Created": 1_700_000_000,
            "Size": 1_982_904, "SharedSize": -1, "Containers": -1
        })];
        let format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}";
        let f = Format::new(format).unwrap();
        let only = row_fields_used(format);
        let full = f
            .render(&image_header(), &image_rows(&images, true, false, false))
            .unwrap();
        let pruned = f
            .render(
                &image_header(),
                &image_rows_with(&images, true, false, false, only.as_deref()),
            )
            .unwrap();
        assert_eq!(full, pruned);
        assert!(pruned.contains("1.98MB"), "{pruned}");
    }

    #[test]
    fn image_rows_follow_docker() {
        let img = json!({
            "Id": "sha256:09b23f020198c1955a16e31144c25f088110c041342dd8ea3f11fb1aab29076f",
            "RepoTags": ["busybox:latest", "docker.io/library/busybox:1", "me/bb:1"],
            "RepoDigests": ["busybox@sha256:abc"],
            "Created": 0, "Size": 1982321, "SharedSize": -1, "Containers": -1
        });
        let dangling = json!({"Id": "sha256:ff", "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"], "Created": 0, "Size": 10, "SharedSize": 4, "Containers": 2});
        let digest_only = json!({"Id": "sha256:ee", "RepoTags": [], "RepoDigests": ["localhost:5000/x@sha256:def"], "Created": 0, "Size": 0});
        // (need digest, show digests, expected repository/tag/digest rows)
        type Case<'a> = (bool, bool, &'a [(&'a str, &'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            (
                false,
                false,
                &[
                    ("busybox", "latest", "<none>"),
                    ("busybox", "1", "<none>"),
                    ("me/bb", "1", "<none>"),
                    ("<none>", "<none>", "<none>"),
                    ("localhost:5000/x", "<none>", ""),
                ],
            ),
            (
                true,
                true,
                &[
                    ("busybox", "latest", "sha256:abc"),
                    ("busybox", "1", "sha256:abc"),
                    ("me/bb", "1", "<none>"),
                    ("<none>", "<none>", "<none>"),
                    ("localhost:5000/x", "<none>", "sha256:def"),
                ],
            ),
        ];
        for (need, show, want) in cases {
            let rows = image_rows(
                &[img.clone(), dangling.clone(), digest_only.clone()],
                true,
                *need,
                *show,
            );
            let got: Vec<(String, String, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r["Repository"].as_str().unwrap_or("").into(),
                        r["Tag"].as_str().unwrap_or("").into(),
                        r["Digest"].as_str().unwrap_or("").into(),
                    )
                })
                .collect();
            let want: Vec<(String, String, String)> = want
                .iter()
                .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
                .collect();
            assert_eq!(got, want, "need {need} show {show}");
        }
        let rows = image_rows(&[img, dangling], true, false, false);
        assert_eq!(rows[0]["ID"], "09b23f020198");
        assert_eq!(rows[0]["Size"], "1.98MB");
        assert_eq!(rows[0]["VirtualSize"], "1.982MB");
        assert_eq!(rows[0]["SharedSize"], "N/A");
        assert_eq!(rows[0]["UniqueSize"], "N/A");
        assert_eq!(rows[0]["Containers"], "N/A");
        assert_eq!(rows[3]["SharedSize"], "4B");
        assert_eq!(rows[3]["UniqueSize"], "6B");
        assert_eq!(rows[3]["Containers"], "2");
    }

    #[test]
    fn splits_references() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("busybox:latest", Some(("busybox", "latest"))),
            ("localhost:5000/a/b:1", Some(("localhost:5000/a/b", "1"))),
            ("localhost:5000/a/b", None),
            ("busybox", None),
            ("<none>:<none>", None),
        ];
        for (r, want) in cases {
            assert_eq!(split_tag(r), *want, "{r}");
        }
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar("docker.io/me/bb"), "me/bb");
        assert_eq!(familiar("quay.io/x/y"), "quay.io/x/y");
    }

    #[test]
    fn history_rows_follow_docker() {
        let h = json!([{"Id": "sha256:09b23f020198c1955a16e31144c25f088110c041342dd8ea3f11fb1aab29076f", "Created": 1_795_328_656, "CreatedBy": "/bin/sh -c\t#(nop) ADD file:0123456789abcdef0123456789abcdef in / ", "Size": 1982321, "Comment": "Imported from -"},
                       {"Id": "<missing>", "Created": 1_795_328_656, "CreatedBy": "", "Size": 0, "Comment": ""}]);
        let entries = h.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let now = (1_795_328_656i128 + 180) * 1_000_000_000;
        let rows = history_rows(entries, true, true, now);
        assert_eq!(rows[0]["ID"], "09b23f020198");
        assert_eq!(rows[0]["CreatedSince"], "3 minutes ago");
        assert_eq!(
            rows[0]["CreatedBy"],
            "/bin/sh -c #(nop) ADD file:0123456789abcdef0…"
        );
        assert_eq!(rows[0]["Size"], "1.98MB");
        assert_eq!(rows[1]["ID"], "<missing>");
        assert_eq!(rows[1]["Size"], "0B");
        let rows = history_rows(entries, false, false, now);
        assert_eq!(rows[0]["Size"], "1982321");
        assert_eq!(rows[0]["CreatedSince"], rows[0]["CreatedAt"]);
    }

    #[test]
    fn prune_reports() {
        let cases: &[(Value, &str)] = &[
            (json!({"ImagesDeleted": null, "SpaceReclaimed": 0}), "Total reclaimed space: 0B\n"),
            (
                json!({"ImagesDeleted": [{"Untagged": "a:1"}, {"Deleted": "sha256:ab"}], "SpaceReclaimed": 1982321}),
                "Deleted Images:\nuntagged: a:1\ndeleted: sha256:ab\n\nTotal reclaimed space: 1.982MB\n",
            ),
        ];
        for (report, want) in cases {
            assert_eq!(prune_report(report), *want);
        }
    }
}
