//! Builds through the real docker CLI over the classic protocol, for the builder's tests.

use std::path::{Path, PathBuf};

use crate::{run_command, token, Cli, CmdOutput, Daemon};

/// A fresh context directory under the daemon's dir with these files (parents created).
pub fn context(d: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir().join(format!("ctx-{}", token()));
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(p, content).expect("write context file");
    }
    dir
}

/// `DOCKER_BUILDKIT=0 docker build ARGS... CTX`.
pub fn docker_build(d: &Daemon, ctx: &Path, args: &[&str]) -> CmdOutput {
    let mut full = vec!["build"];
    full.extend_from_slice(args);
    let ctx = ctx.to_str().expect("utf-8 context path");
    full.push(ctx);
    let mut cmd = d.command(Cli::Docker, &full);
    cmd.env("DOCKER_BUILDKIT", "0");
    run_command(cmd, None)
}

/// `docker save IMAGE`, split: each layer's tar bytes (bottom first) and the config's bytes.
pub fn saved_layers(d: &Daemon, image: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
    let out = d.dir().join(format!("save-{}.tar", token()));
    d.docker(&["save", "-o", out.to_str().expect("utf-8 path"), image])
        .ok();
    let mut outer = tar::Archive::new(std::fs::File::open(&out).expect("open saved tar"));
    let mut files = std::collections::HashMap::new();
    for e in outer.entries().expect("saved tar") {
        let mut e = e.expect("saved tar entry");
        let name = e.path().expect("entry path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).expect("read entry");
        files.insert(name, bytes);
    }
    std::fs::remove_file(out).expect("remove saved tar");
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let config = files[manifest[0]["Config"].as_str().expect("Config")].clone();
    let layers = manifest[0]["Layers"]
        .as_array()
        .expect("Layers")
        .iter()
        .map(|l| files[l.as_str().expect("layer path")].clone())
        .collect();
    (layers, config)
}
