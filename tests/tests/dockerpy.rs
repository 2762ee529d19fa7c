//! docker-py, the Python SDK, against estibad: `docker.from_env().images.list()` and friends.

use std::process::Command;

use estiba_e2e::testimg;
use estiba_e2e::{require_docker_py, run_command, Daemon};

#[test]
fn docker_py_lists_and_inspects_images() {
    require_docker_py();
    let d = Daemon::start();
    let bb = testimg::busybox().expect("busybox");
    d.load(&[&bb]);
    let script = r#"
import json, docker
client = docker.from_env()
images = client.images.list()
bb = client.images.get("busybox")
print(json.dumps({
    "tags": sorted(t for i in images for t in i.tags),
    "ids": [i.id for i in images],
    "id": bb.id,
    "ping": client.ping(),
    "version": client.version()["ApiVersion"],
}))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).env("DOCKER_HOST", d.host());
    let out = run_command(cmd, None);
    out.ok();
    let got = out.json();
    assert_eq!(got["tags"], serde_json::json!(["busybox:latest"]), "{out}");
    assert_eq!(got["ids"], serde_json::json!([bb.id()]), "{out}");
    assert_eq!(got["id"], bb.id(), "{out}");
    assert_eq!(got["ping"], true, "{out}");
}
