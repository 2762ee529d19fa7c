//! Volumes through the other clients: the `estiba` CLI's `run`/`create` mount flags and
//! `volume` commands, and docker-py's volume API and `volumes=` argument.

use std::process::Command;

use estiba_e2e::{daemon_with_busybox, require_docker_py, run_command};

#[test]
fn estiba_run_takes_dockers_mount_flags() {
    let d = daemon_with_busybox();
    let dir = d.dir().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in"), "host file\n").unwrap();
    let bind = format!("{}:/src:ro", dir.display());
    let out = d.estiba(&[
        "run", "--name", "holder", "-v", "named:/n", "-v", "/anon", "-v", &bind,
        "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
        "--tmpfs", "/run:size=512k",
        "busybox", "sh", "-c", "echo n > /n/f; echo a > /anon/f; cat /src/in; df -k /t /run | tail -2 | tr -s ' ' | cut -d' ' -f2",
    ]);
    assert_eq!(out.ok().stdout, "host file\n1024\n512\n");
    let out = d.estiba(&[
        "run",
        "--rm",
        "--volumes-from",
        "holder:ro",
        "busybox",
        "sh",
        "-c",
        "cat /n/f /anon/f; touch /n/x 2>&1",
    ]);
    out.fails_with(1);
    assert_eq!(out.stdout, "n\na\ntouch: /n/x: Read-only file system\n");
    let ls = d.estiba(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}}",
        "--filter",
        "name=named",
    ]);
    assert_eq!(ls.ok().stdout, "named local\n");
    d.estiba(&["rm", "-v", "holder"]).ok();
    assert_eq!(d.estiba(&["volume", "ls", "-q"]).ok().stdout, "named\n");
    let out = d.estiba(&["volume", "create", "--name", "x1", "x2"]);
    out.fails_with(1);
    let out = d.estiba(&[
        "volume",
        "inspect",
        "--format",
        "{{.Name}} {{.Scope}}",
        "named",
    ]);
    assert_eq!(out.ok().stdout, "named local\n");
}

#[test]
fn docker_py_volume_api() {
    require_docker_py();
    let d = daemon_with_busybox();
    let script = r#"
import json, docker
c = docker.from_env()
v = c.volumes.create(name="pyvol", labels={"a": "b"})
out = c.containers.run("busybox", "sh -c 'echo py > /data/f; cat /data/f'", volumes={"pyvol": {"bind": "/data", "mode": "rw"}}, remove=True)
got = {
    "name": v.name,
    "labels": c.volumes.get("pyvol").attrs["Labels"],
    "listed": [x.name for x in c.volumes.list()],
    "out": out.decode(),
}
try:
    c.volumes.get("nope")
except docker.errors.NotFound as e:
    got["notfound"] = e.explanation
v.remove()
anon = c.containers.create("busybox", "true", volumes=["/scratch"])
got["anon_dest"] = anon.attrs["Mounts"][0]["Destination"]
anon.remove(v=True)
got["after"] = [x.name for x in c.volumes.list()]
got["prune"] = c.volumes.prune()
print(json.dumps(got))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).env("DOCKER_HOST", d.host());
    let out = run_command(cmd, None);
    out.ok();
    let got = out.json();
    assert_eq!(got["name"], "pyvol", "{out}");
    assert_eq!(got["labels"], serde_json::json!({"a": "b"}), "{out}");
    assert_eq!(got["listed"], serde_json::json!(["pyvol"]), "{out}");
    assert_eq!(got["out"], "py\n", "{out}");
    assert_eq!(got["notfound"], "get nope: no such volume", "{out}");
    assert_eq!(got["anon_dest"], "/scratch", "{out}");
    assert_eq!(got["after"], serde_json::json!([]), "{out}");
    assert_eq!(
        got["prune"],
        serde_json::json!({"VolumesDeleted": null, "SpaceReclaimed": 0}),
        "{out}"
    );
}
