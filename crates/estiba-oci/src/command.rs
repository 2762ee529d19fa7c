//! Docker's rules for combining the image's Entrypoint/Cmd/Env with the user's.

use crate::{ContainerOptions, ImageDefaults, SpecError};

/// `PATH` for a container whose image sets none (moby's `oci.DefaultPathEnv`).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The merged command, both as Docker stores it (`Config.Entrypoint`/`Config.Cmd`) and as it
/// runs (`Path` + `Args`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedCommand {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub path: String,
    pub args: Vec<String>,
}

impl MergedCommand {
    /// `process.args` of the spec: `path` followed by `args`.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.path.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

fn non_empty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

/// Docker's Entrypoint/Cmd merge: `docker run IMAGE args` replaces the image's Cmd; a non-empty
/// `--entrypoint` replaces the image's Entrypoint and drops its Cmd; `--entrypoint ""` (sent as
/// `[""]`) clears both; nothing left to run is "no command specified".
pub fn merge_entrypoint_cmd(
    image: &ImageDefaults,
    opts: &ContainerOptions,
) -> Result<MergedCommand, SpecError> {
    let mut entrypoint = opts.entrypoint.clone();
    let mut cmd = opts.cmd.clone();
    if !non_empty(&entrypoint) {
        if !non_empty(&cmd) {
            cmd = image.cmd.clone();
        }
        if entrypoint.is_none() {
            entrypoint = image.entrypoint.clone();
        }
    }
    if entrypoint.as_deref() == Some(&[String::new()][..]) {
        entrypoint = None;
    }
    let argv: Vec<String> = match (&entrypoint, &cmd) {
        (Some(ep), cmd) if !ep.is_empty() => {
            ep.iter().chain(cmd.iter().flatten()).cloned().collect()
        }
        (_, Some(cmd)) if !cmd.is_empty() => cmd.clone(),
        _ => return Err(SpecError::NoCommand),
    };
    let (path, args) = match argv.split_first() {
        Some((path, args)) => (path.clone(), args.to_vec()),
        None => return Err(SpecError::NoCommand),
    };
    Ok(MergedCommand {
        entrypoint,
        cmd,
        path,
        args,
    })
}

/// The container's argv (`process.args` before `--init` is put in front).
pub fn merge_command(
    image: &ImageDefaults,
    opts: &ContainerOptions,
) -> Result<Vec<String>, SpecError> {
    merge_entrypoint_cmd(image, opts).map(|m| m.argv())
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// `Config.Env` as Docker stores it at create time: the user's `-e` entries, then every image
/// entry whose key the user did not set.
pub fn merge_config_env(image_env: &[String], user_env: &[String]) -> Vec<String> {
    let mut env = user_env.to_vec();
    for entry in image_env {
        let key = env_key(entry);
        if !user_env.iter().any(|u| env_key(u) == key) {
            env.push(entry.clone());
        }
    }
    env
}

/// moby's `ReplaceOrAppendEnvValues`: each override replaces the default with the same key in
/// place or is appended; an override without `=` removes the key.
pub fn replace_or_append_env(defaults: &[String], overrides: &[String]) -> Vec<String> {
    let mut env: Vec<Option<String>> = defaults.iter().cloned().map(Some).collect();
    for value in overrides {
        // Like moby, only the defaults are matched: a key given twice is appended twice.
        let existing = defaults.iter().position(|e| env_key(e) == env_key(value));
        if !value.contains('=') {
            if let Some(i) = existing {
                env[i] = None;
            }
            continue;
        }
        match existing {
            Some(i) => env[i] = Some(value.clone()),
            None => env.push(Some(value.clone())),
        }
    }
    env.into_iter().flatten().collect()
}

/// The process environment Docker gives a container at start: `PATH` (default), `HOSTNAME`,
/// `TERM=xterm` with a TTY, then `Config.Env` replacing those by key or appended.
pub fn process_env(config_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH_ENV}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".to_owned());
    }
    replace_or_append_env(&base, config_env)
}

/// Both steps at once: the environment the container's process sees.
pub fn merge_env(image: &ImageDefaults, opts: &ContainerOptions) -> Vec<String> {
    process_env(
        &merge_config_env(&image.env, &opts.env),
        &opts.hostname,
        opts.tty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| (*s).to_owned()).collect()
    }
    fn ov(x: Option<&[&str]>) -> Option<Vec<String>> {
        x.map(v)
    }

    #[test]
    fn entrypoint_cmd_table() {
        type Case<'a> = (
            Option<&'a [&'a str]>, // image entrypoint
            Option<&'a [&'a str]>, // image cmd
            Option<&'a [&'a str]>, // --entrypoint
            Option<&'a [&'a str]>, // run args
            Option<&'a [&'a str]>, // expected argv (None = no command)
        );
        let cases: Vec<Case> = vec![
            // image with only Cmd
            (None, Some(&["sh"]), None, None, Some(&["sh"])),
            (
                None,
                Some(&["sh"]),
                None,
                Some(&["echo", "hi"]),
                Some(&["echo", "hi"]),
            ),
            (None, Some(&["sh"]), None, Some(&[]), Some(&["sh"])),
            (None, Some(&["sh"]), Some(&["ls"]), None, Some(&["ls"])),
            (
                None,
                Some(&["sh"]),
                Some(&["ls"]),
                Some(&["-l"]),
                Some(&["ls", "-l"]),
            ),
            (None, Some(&["sh"]), Some(&[""]), None, None),
            (
                None,
                Some(&["sh"]),
                Some(&[""]),
                Some(&["id"]),
                Some(&["id"]),
            ),
            (None, Some(&["sh"]), Some(&[]), None, Some(&["sh"])),
            // image with Entrypoint and Cmd
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                None,
                None,
                Some(&["/ep", "--x"]),
            ),
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                None,
                Some(&["--y"]),
                Some(&["/ep", "--y"]),
            ),
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                Some(&["/other"]),
                None,
                Some(&["/other"]),
            ),
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                Some(&["/other"]),
                Some(&["a"]),
                Some(&["/other", "a"]),
            ),
            (Some(&["/ep"]), Some(&["--x"]), Some(&[""]), None, None),
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                Some(&[""]),
                Some(&["sh"]),
                Some(&["sh"]),
            ),
            (
                Some(&["/ep"]),
                Some(&["--x"]),
                Some(&[]),
                None,
                Some(&["--x"]),
            ),
            // image with only Entrypoint
            (Some(&["/ep", "a"]), None, None, None, Some(&["/ep", "a"])),
            (
                Some(&["/ep", "a"]),
                None,
                None,
                Some(&["b"]),
                Some(&["/ep", "a", "b"]),
            ),
            // image with neither
            (None, None, None, None, None),
            (None, None, None, Some(&["true"]), Some(&["true"])),
            (None, None, Some(&["true"]), None, Some(&["true"])),
            (None, Some(&[]), None, None, None),
        ];
        for (iep, icmd, ep, cmd, want) in cases {
            let image = ImageDefaults {
                entrypoint: ov(iep),
                cmd: ov(icmd),
                ..Default::default()
            };
            let opts = ContainerOptions {
                entrypoint: ov(ep),
                cmd: ov(cmd),
                ..Default::default()
            };
            let got = merge_command(&image, &opts);
            match want {
                Some(want) => assert_eq!(got.unwrap(), v(want), "{iep:?} {icmd:?} {ep:?} {cmd:?}"),
                None => assert_eq!(
                    got.unwrap_err().to_string(),
                    "no command specified",
                    "{iep:?} {icmd:?} {ep:?} {cmd:?}"
                ),
            }
        }
    }

    #[test]
    fn stored_entrypoint_and_cmd() {
        let image = ImageDefaults {
            entrypoint: Some(v(&["/ep"])),
            cmd: Some(v(&["--x"])),
            ..Default::default()
        };
        let opts = ContainerOptions {
            entrypoint: Some(v(&["/o"])),
            ..Default::default()
        };
        let m = merge_entrypoint_cmd(&image, &opts).unwrap();
        assert_eq!(m.entrypoint, Some(v(&["/o"])));
        assert_eq!(m.cmd, None);
        assert_eq!((m.path.as_str(), m.args.len()), ("/o", 0));
    }

    #[test]
    fn env_table() {
        // (image env, -e, hostname, tty, expected process env)
        type Case<'a> = (&'a [&'a str], &'a [&'a str], bool, &'a [&'a str]);
        let cases: Vec<Case> = vec![
            (
                &[],
                &[],
                false,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=h",
                ],
            ),
            (
                &[],
                &[],
                true,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=h",
                    "TERM=xterm",
                ],
            ),
            (
                &["PATH=/bin"],
                &["FOO=1"],
                false,
                &["PATH=/bin", "HOSTNAME=h", "FOO=1"],
            ),
            (
                &["PATH=/bin", "A=img"],
                &["A=user", "B=2"],
                false,
                &["PATH=/bin", "HOSTNAME=h", "A=user", "B=2"],
            ),
            (
                &["A=img"],
                &["A"],
                false,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=h",
                ],
            ),
            (
                &[],
                &["HOSTNAME=mine", "TERM=vt100"],
                true,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=mine",
                    "TERM=vt100",
                ],
            ),
            (
                &[],
                &["B=1", "B=2"],
                false,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=h",
                    "B=1",
                    "B=2",
                ],
            ),
            (
                &["X=a=b"],
                &[],
                false,
                &[
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOSTNAME=h",
                    "X=a=b",
                ],
            ),
        ];
        for (ienv, uenv, tty, want) in cases {
            let image = ImageDefaults {
                env: v(ienv),
                ..Default::default()
            };
            let opts = ContainerOptions {
                env: v(uenv),
                hostname: "h".into(),
                tty,
                ..Default::default()
            };
            assert_eq!(merge_env(&image, &opts), v(want), "{ienv:?} {uenv:?} {tty}");
        }
    }

    #[test]
    fn config_env_keeps_docker_order() {
        assert_eq!(
            merge_config_env(&v(&["PATH=/bin", "A=1"]), &v(&["B=2", "A=3"])),
            v(&["B=2", "A=3", "PATH=/bin"])
        );
    }
}
