//! `ps`: docker's container rows (quoted, truncated command; ports grouped into ranges; names
//! without their slash) and its default table.

use serde_json::{Map, Value};

use super::args::PsArgs;
use crate::args::{check_args, filters_json, Arity};
use crate::client::{query, Client};
use crate::format::{header, Format};
use crate::output::{go_time_string, out};
use crate::units::{ellipsis, human_size_precision, now_unix_nanos, since, truncate_id};

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub(crate) fn ps_header() -> Value {
    header(&[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ])
}

/// Go's `strconv.Quote`: printable characters kept, the rest escaped.
pub(crate) fn go_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            '\x07' => q.push_str("\\a"),
            '\x08' => q.push_str("\\b"),
            '\x0c' => q.push_str("\\f"),
            '\x0b' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[derive(Debug, Clone)]
struct Port {
    ip: String,
    private: u32,
    public: u32,
    kind: String,
}

fn form_group(key: &str, first: u32, last: u32) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, kind)) => (ip, kind),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{kind}")
}

fn join_host_port(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `DisplayablePorts`: consecutive ports grouped ("8000-8001/tcp"), host mappings last.
pub(crate) fn displayable_ports(ports: &[Value]) -> String {
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: p.get("IP").and_then(Value::as_str).unwrap_or("").to_owned(),
            private: p.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0) as u32,
            public: p.get("PublicPort").and_then(Value::as_u64).unwrap_or(0) as u32,
            kind: p
                .get("Type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
        .collect();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.kind).cmp(&(b.private, &b.ip, b.public, &b.kind))
    });
    let mut groups: Vec<(String, u32, u32)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&p.ip, p.public),
                    p.private,
                    p.kind
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) => {
                if p.private == g.2 + 1 {
                    g.2 = p.private;
                } else {
                    result.push(form_group(&g.0, g.1, g.2));
                    g.1 = p.private;
                    g.2 = p.private;
                }
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form_group(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// One container summary as docker's container context renders it.
pub(crate) fn ps_row(c: &Value, trunc: bool, now_nanos: i128) -> Value {
    let id = str_of(c, "Id");
    let image = str_of(c, "Image");
    let image_id = str_of(c, "ImageID");
    let image = if image.is_empty() {
        "<no image>".to_owned()
    } else if trunc && truncate_id(image_id) == truncate_id(image) {
        truncate_id(image)
    } else if trunc {
        // A digest reference shows as its name only.
        image.split('@').next().unwrap_or(image).to_owned()
    } else {
        image.to_owned()
    };
    let command = str_of(c, "Command");
    let command = go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_owned()
    });
    let mut names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
                .collect()
        })
        .unwrap_or_default();
    if trunc {
        if let Some(n) = names.iter().find(|n| !n.contains('/')).cloned() {
            names = vec![n];
        }
    }
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let size_rw = c.get("SizeRw").and_then(Value::as_i64).unwrap_or(0);
    let size_root = c.get("SizeRootFs").and_then(Value::as_i64).unwrap_or(0);
    let size = if size_root > 0 {
        format!(
            "{} (virtual {})",
            human_size_precision(size_rw as f64, 3),
            human_size_precision(size_root as f64, 3)
        )
    } else {
        human_size_precision(size_rw as f64, 3)
    };
    let mut labels: Vec<String> = c
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let mounts_list = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mounts: Vec<String> = mounts_list
        .iter()
        .map(|m| {
            let name = match str_of(m, "Name") {
                "" => str_of(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_owned()
            }
        })
        .collect();
    let local_volumes = mounts_list
        .iter()
        .filter(|m| str_of(m, "Driver") == "local")
        .count();
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let ports = displayable_ports(
        c.get("Ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    );
    let s = |v: String| Value::String(v);
    let mut row = Map::new();
    row.insert(
        "ID".into(),
        s(if trunc {
            truncate_id(id)
        } else {
            id.to_owned()
        }),
    );
    row.insert("Image".into(), s(image));
    row.insert("Command".into(), s(command));
    row.insert("CreatedAt".into(), s(go_time_string(created)));
    row.insert("RunningFor".into(), s(since(created, now_nanos)));
    row.insert("Ports".into(), s(ports));
    row.insert("State".into(), s(str_of(c, "State").to_owned()));
    row.insert("Status".into(), s(str_of(c, "Status").to_owned()));
    row.insert("Size".into(), s(size));
    row.insert("Names".into(), s(names.join(",")));
    row.insert("Labels".into(), s(labels.join(",")));
    row.insert("Mounts".into(), s(mounts.join(",")));
    row.insert("LocalVolumes".into(), s(local_volumes.to_string()));
    row.insert("Networks".into(), s(networks.join(",")));
    row.insert("Platform".into(), Value::Null);
    Value::Object(row)
}

/// `estiba ps` / `estiba container ls`.
pub(crate) async fn ps(client: &mut Client, a: PsArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::None)?;
    let source = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".to_owned());
    let format = if source == "table" {
        if a.quiet {
            "{{.ID}}".to_owned()
        } else if a.size {
            format!("{PS_TABLE}\t{{{{.Size}}}}")
        } else {
            PS_TABLE.to_owned()
        }
    } else if a.quiet {
        "{{.ID}}".to_owned()
    } else {
        source.clone()
    };
    // docker asks for sizes when the template shows them.
    let size = a.size
        || (!a.quiet
            && (format.contains(".Size") || format.contains("json .") || source == "json"));
    let limit = if a.latest { 1 } else { a.last };
    let q = query(&[
        ("all", (a.all || limit > 0).then(|| "1".to_owned())),
        ("filters", filters_json(&a.filter)),
        ("limit", (limit > 0).then(|| limit.to_string())),
        ("size", size.then(|| "1".to_owned())),
    ]);
    let compiled = Format::new(&format)?;
    let list = client.get_json(&format!("/containers/json{q}")).await?;
    let now = now_unix_nanos();
    let rows: Vec<Value> = list
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|c| ps_row(c, !a.no_trunc, now))
        .collect();
    out(&compiled.render(&ps_header(), &rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_render_like_docker_ps() {
        let now = (1_795_400_000i128 + 3) * 1_000_000_000;
        let cases: &[(Value, &str)] = &[
            (
                json!({"Id": "89d70be4841e7e276d8d903e37bb5d7abaa64ef62aeb4f60a31de13f5668bb86", "Names": ["/t1"],
                       "Image": "busybox", "ImageID": "sha256:1c35c4412082", "Command": "sh -c 'echo hello; echo oops >&2; sleep 300'",
                       "Created": 1_795_400_000, "Ports": [], "State": "running", "Status": "Up 2 seconds"}),
                "89d70be4841e   busybox   \"sh -c 'echo hello; …\"   3 seconds ago   Up 2 seconds      t1\n",
            ),
            (
                json!({"Id": "f2eb8402af93581d", "Names": ["/t2"], "Image": "busybox", "Command": "sh -c 'exit 4'",
                       "Created": 1_795_400_000, "Ports": [], "State": "exited", "Status": "Exited (4) 2 seconds ago"}),
                "f2eb8402af93   busybox   \"sh -c 'exit 4'\"   3 seconds ago   Exited (4) 2 seconds ago      t2\n",
            ),
            (
                json!({"Id": "b04d92153ef1a0", "Names": ["/t3", "/t1/link"], "Image": "sha256:1c35c4412082aa", "ImageID": "sha256:1c35c4412082aa",
                       "Command": "echo \"quoted\"\ttab", "Created": 1_795_399_940, "State": "created", "Status": "Created",
                       "Ports": [{"PrivatePort": 80, "Type": "tcp"}]}),
                "b04d92153ef1   1c35c4412082   \"echo \\\"quoted\\\"\\ttab\"   About a minute ago   Created   80/tcp   t3\n",
            ),
        ];
        let f = match Format::new(
            "{{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}",
        ) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        for (c, want) in cases {
            let row = ps_row(c, true, now);
            let got = f
                .render(&ps_header(), &[row])
                .unwrap_or_default()
                .replace('\t', "   ");
            assert_eq!(got, *want);
        }
    }

    #[test]
    fn table_layout_matches_docker() {
        let now = (1_795_400_000i128 + 3) * 1_000_000_000;
        let c = json!({"Id": "89d70be4841e7e27", "Names": ["/t1"], "Image": "busybox", "Command": "sh -c 'echo hello; echo oops >&2; sleep 300'",
                       "Created": 1_795_400_000, "Ports": [], "State": "running", "Status": "Up 2 seconds"});
        let f = match Format::new(PS_TABLE) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let got = f
            .render(&ps_header(), &[ps_row(&c, true, now)])
            .unwrap_or_default();
        assert_eq!(
            got,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS     NAMES\n\
             89d70be4841e   busybox   \"sh -c 'echo hello; …\"   3 seconds ago   Up 2 seconds             t1\n"
        );
    }

    #[test]
    fn ports_group_like_docker() {
        let cases: &[(Value, &str)] = &[
            (json!([]), ""),
            (
                json!([{"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"}]),
                "53/udp, 80/tcp",
            ),
            (
                json!([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                       {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]),
                "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp",
            ),
            (
                json!([{"PrivatePort": 81, "Type": "tcp"}, {"PrivatePort": 80, "Type": "tcp"}, {"PrivatePort": 83, "Type": "tcp"}]),
                "80-81/tcp, 83/tcp",
            ),
            (
                json!([{"IP": "127.0.0.1", "PrivatePort": 9000, "PublicPort": 9000, "Type": "tcp"},
                       {"IP": "127.0.0.1", "PrivatePort": 9001, "PublicPort": 9001, "Type": "tcp"}]),
                "127.0.0.1:9000-9001->9000-9001/tcp",
            ),
        ];
        for (ports, want) in cases {
            let list = ports.as_array().cloned().unwrap_or_default();
            assert_eq!(displayable_ports(&list), *want, "{ports}");
        }
    }

    #[test]
    fn sizes_and_quotes() {
        let c = json!({"Id": "ab", "SizeRw": 0, "SizeRootFs": 1982321, "Names": ["/x"], "Image": "busybox", "Command": ""});
        assert_eq!(ps_row(&c, true, 0)["Size"], "0B (virtual 1.98MB)");
        let c = json!({"Id": "ab", "SizeRw": 12, "Names": ["/x"], "Image": "", "Command": ""});
        assert_eq!(ps_row(&c, true, 0)["Size"], "12B");
        assert_eq!(ps_row(&c, true, 0)["Image"], "<no image>");
        assert_eq!(go_quote("a\u{1}é…"), "\"a\\x01é…\"");
    }
}
