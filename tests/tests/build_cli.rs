//! `estiba build`: the same builds through estiba's own CLI (context tar made client-side with
//! `.dockerignore`, `-` for a Dockerfile on stdin, -f, --build-arg, --label, --target, -q) and
//! its exit status on failure.

use estiba_e2e::{build::context, daemon_with_busybox};

#[test]
fn estiba_build_with_flags_ignore_file_and_stdin() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            (
                "build.Dockerfile",
                "FROM busybox AS base\nARG WHO\nRUN echo \"hi $WHO\" > /who\nCOPY . /ctx\nFROM base AS other\nRUN exit 9\n",
            ),
            (".dockerignore", "logs\n!logs/keep.txt\n"),
            ("logs/drop.txt", "d"),
            ("logs/keep.txt", "k"),
        ],
    );
    let ctx_s = ctx.to_str().unwrap();
    let out = d.estiba(&[
        "build",
        "-f",
        &format!("{ctx_s}/build.Dockerfile"),
        "--target",
        "base",
        "--build-arg",
        "WHO=there",
        "--label",
        "team=core",
        "-t",
        "cli:1",
        ctx_s,
    ]);
    out.ok();
    assert!(
        out.stdout.contains("Step 1/5 : FROM busybox AS base\n"),
        "{out}"
    );
    assert!(out.stdout.contains("Successfully tagged cli:1\n"), "{out}");
    let run = d.docker(&[
        "run",
        "--name",
        "cli-1",
        "cli:1",
        "sh",
        "-c",
        "cat /who; ls /ctx/logs",
    ]);
    assert_eq!(run.ok().stdout, "hi there\nkeep.txt\n");
    d.docker(&["rm", "cli-1"]).ok();
    let label = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.team}}",
        "cli:1",
    ]);
    assert_eq!(label.ok().stdout, "core\n");

    // -q prints only the ID.
    let q = d.estiba(&[
        "build",
        "-q",
        "-f",
        &format!("{ctx_s}/build.Dockerfile"),
        "--target",
        "base",
        "--build-arg",
        "WHO=there",
        "--label",
        "team=core",
        ctx_s,
    ]);
    let id = d.docker(&["image", "inspect", "--format", "{{.Id}}", "cli:1"]);
    assert_eq!(q.ok().stdout, id.ok().stdout);

    // A failing build exits 1 with docker's message.
    let out = d.estiba(&[
        "build",
        "-f",
        &format!("{ctx_s}/build.Dockerfile"),
        "-t",
        "cli:bad",
        ctx_s,
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("The command '/bin/sh -c exit 9' returned a non-zero code: 9"),
        "{out}"
    );

    // `-`: the Dockerfile on stdin, no context.
    let mut cmd = d.command(estiba_e2e::Cli::Estiba, &["build", "-t", "stdin:1", "-"]);
    cmd.env("X", "1");
    let out = estiba_e2e::run_command(
        cmd,
        Some(b"FROM busybox\nCMD [\"echo\", \"from stdin\"]\n".to_vec()),
    );
    out.ok();
    assert_eq!(
        d.docker(&["run", "--rm", "stdin:1"]).ok().stdout,
        "from stdin\n"
    );
}
