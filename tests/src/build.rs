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
