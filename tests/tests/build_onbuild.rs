//! ONBUILD: triggers recorded in the image config, run with Docker's output when a later
//! build starts FROM the image (in the child's context), not inherited by the grandchild, and
//! the triggers Docker refuses.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox, Daemon};

fn onbuild(d: &Daemon, image: &str) -> String {
    d.docker(&["inspect", "-f", "{{json .Config.OnBuild}}", image])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn triggers_run_once_in_the_child() {
    let d = daemon_with_busybox();
    let parent = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD RUN echo trigger-ran > /t\nONBUILD COPY x /x\n",
        )],
    );
    docker_build(&d, &parent, &["-t", "ob:1"]).ok();
    assert_eq!(
        onbuild(&d, "ob:1"),
        r#"["RUN echo trigger-ran > /t","COPY x /x"]"#
    );

    let child = context(
        &d,
        &[
            ("Dockerfile", "FROM ob:1\nRUN cat /t /x\n"),
            ("x", "from-child\n"),
        ],
    );
    let out = docker_build(&d, &child, &["-t", "ch:1"]);
    out.ok();
    let text = &out.stdout;
    let from = text.find("Step 1/2 : FROM ob:1\n# Executing 2 build triggers\n");
    assert!(from.is_some(), "{out}");
    assert!(text.contains("trigger-ran\nfrom-child\n"), "{out}");
    assert!(!text.contains("Step 3"), "{out}");
    assert_eq!(onbuild(&d, "ch:1"), "null");
    let history = d
        .docker(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "ch:1",
        ])
        .ok()
        .stdout
        .clone();
    let lines: Vec<&str> = history.lines().take(3).collect();
    assert_eq!(lines[0], "/bin/sh -c cat /t /x", "{history}");
    assert!(lines[1].contains("COPY"), "{history}");
    assert_eq!(lines[2], "/bin/sh -c echo trigger-ran > /t", "{history}");

    // The grandchild runs nothing.
    let grand = context(&d, &[("Dockerfile", "FROM ch:1\nRUN test -f /x\n")]);
    let out = docker_build(&d, &grand, &["-t", "gc:1"]);
    out.ok();
    assert!(!out.stdout.contains("Executing"), "{out}");
}

#[test]
fn forbidden_triggers_are_refused() {
    let d = daemon_with_busybox();
    for (trigger, want) in [
        (
            "ONBUILD ONBUILD RUN true",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "ONBUILD FROM busybox",
            "FROM isn't allowed as an ONBUILD trigger",
        ),
    ] {
        let ctx = context(&d, &[("Dockerfile", &format!("FROM busybox\n{trigger}\n"))]);
        let out = docker_build(&d, &ctx, &["-t", "bad:1"]);
        assert_ne!(out.code, 0, "{out}");
        assert!(
            out.stderr.contains(want) || out.stdout.contains(want),
            "{out}"
        );
    }
    assert_ne!(d.docker(&["image", "inspect", "bad:1"]).code, 0);
}
