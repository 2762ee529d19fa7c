//! Independent stages build side by side: two stages that each wait (bounded) for the other's
//! marker in a shared cache mount can only both succeed when they run at the same time; the
//! transcript still reads in stage order, and a failing stage fails the build.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox};

/// A RUN that leaves marker `me` and waits up to 20 s for marker `other`.
fn meet(me: &str, other: &str) -> String {
    format!(
        "RUN --mount=type=cache,target=/sync,id=meet touch /sync/{me} && i=0 && while [ ! -f /sync/{other} ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done && test -f /sync/{other} && echo {me} > /{me}"
    )
}

#[test]
fn independent_stages_run_together() {
    let d = daemon_with_busybox();
    let df = format!(
        "FROM busybox AS a\n{}\nFROM busybox AS b\n{}\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b\n",
        meet("a", "b"),
        meet("b", "a")
    );
    let ctx = context(&d, &[("Dockerfile", &df)]);
    let out = docker_build(&d, &ctx, &["--no-cache", "-t", "par:1"]);
    out.ok();
    assert!(out.stdout.contains("a\nb\n"), "{out}");
    // The transcript is in stage order with the plan's step numbers.
    let text = &out.stdout;
    let steps: Vec<usize> = (1..=8)
        .map(|n| {
            text.find(&format!("Step {n}/8 :"))
                .unwrap_or_else(|| panic!("step {n}: {out}"))
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{out}");

    // A failing stage fails the build with its step's error, and nothing is tagged.
    let bad = "FROM busybox AS a\nRUN exit 3\nFROM busybox AS b\nRUN true\nFROM busybox\nCOPY --from=a / /x\nCOPY --from=b / /y\n";
    let ctx = context(&d, &[("Dockerfile", bad)]);
    let out = docker_build(&d, &ctx, &["-t", "par:bad"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{out}"
    );
    assert_ne!(d.docker(&["image", "inspect", "par:bad"]).code, 0);
}
