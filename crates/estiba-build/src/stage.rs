//! Running the plan: one stage after another, one instruction after another, each checked
//! against the cache (parent image + instruction as recorded in history + the config it leaves
//! + what it copied) before it runs.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, Write};

use estiba_container::BuildRun;
use estiba_image::service::CommitRequest;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::copy::{self, CopySpec, Tree};
use crate::expand;
use crate::parser::Instruction;
use crate::plan::Plan;
use crate::stage_chown::{id_in, parse_chown};
use crate::stage_mounts::StepMount;
use crate::{short_id, BuildError, BuildOptions, Builder, Output};

/// Build args every build knows without an ARG (never in history or the cache key).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Largest /etc/passwd or /etc/group read for `--chown` names.
const MAX_ID_FILE_BYTES: u64 = 4 << 20;

/// Files every RUN container has bind-mounted by the runtime: never part of a layer.
const RUNTIME_FILES: &[&str] = &["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"];

/// How a step changes the filesystem.
enum Layer<'p> {
    None,
    /// A ready layer tar (WORKDIR's directory).
    Tar(Vec<u8>),
    Run(BuildRun, Vec<StepMount>),
    Copy(&'p dyn Tree, CopySpec),
    /// COPY --from: the image's root filesystem is mounted only when the step runs; the
    /// history then records `<cmd> <checksum> in <dest>` from the last field (`cmd`, `dest`).
    CopyFrom(String, CopySpec, (String, String)),
}

/// A step's layer tar, its RUN container, and its history text if not the key's.
type LayerFile = (std::fs::File, Option<String>, Option<String>);

/// One stage's state between instructions.
pub(crate) struct State {
    image_id: String,
    /// The image config's `config` object.
    pub(crate) config: Value,
    /// Declared ARGs in order, with their values.
    args: Vec<(String, Option<String>)>,
    shell: Vec<String>,
    cmd_set: bool,
    author: String,
}

/// One build in progress.
pub(crate) struct Run<'a> {
    pub(crate) b: &'a Builder,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) plan: &'a Plan,
    pub(crate) ctx: &'a Context,
    pub(crate) out: RefCell<&'a mut dyn FnMut(Output)>,
    pub(crate) step: usize,
    pub(crate) results: Vec<Option<String>>,
    pub(crate) global: BTreeMap<String, Option<String>>,
    pub(crate) consumed: BTreeSet<String>,
    /// SOURCE_DATE_EPOCH: layer mtimes clamped and `created` set from it.
    pub(crate) epoch: Option<i64>,
    /// `--cache-from` image IDs.
    pub(crate) cache_from: Vec<String>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        b: &'a Builder,
        opts: &'a BuildOptions,
        plan: &'a Plan,
        ctx: &'a Context,
        out: &'a mut dyn FnMut(Output),
    ) -> Run<'a> {
        Run {
            b,
            opts,
            plan,
            ctx,
            out: RefCell::new(out),
            step: 0,
            results: vec![None; plan.stages.len()],
            global: BTreeMap::new(),
            consumed: BTreeSet::new(),
            epoch: None,
            cache_from: Vec::new(),
        }
    }

    pub(crate) fn say(&self, text: String) {
        if !self.opts.quiet {
            (self.out.borrow_mut())(Output::Stream(text));
        }
    }

    /// Builds every needed stage; returns the target's image ID.
    pub(crate) fn all(&mut self) -> Result<String, BuildError> {
        for ins in &self.plan.global_args {
            self.begin_step(ins);
            let lookup = |n: &str| self.global.get(n).cloned().flatten();
            let words = expand::words(&ins.rest, &lookup, self.plan.escape)
                .map_err(|e| BuildError::Step(e.to_string()))?;
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                };
                let value = self.arg_value(&name).or(default);
                self.global.insert(name, value);
            }
        }
        let last = if self.parallel_ok() {
            self.stages_parallel()?
        } else {
            let mut last = String::new();
            for &i in &self.plan.needed {
                last = self.stage(i)?;
                self.results[i] = Some(last.clone());
            }
            last
        };
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !self.consumed.contains(*k)
                    && !PREDEFINED_ARGS.contains(&k.as_str())
                    && k.as_str() != crate::reproducible::SOURCE_DATE_EPOCH
            })
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ));
        }
        Ok(last)
    }

    fn arg_value(&mut self, name: &str) -> Option<String> {
        let v = self.opts.build_args.get(name).cloned().flatten();
        if self.opts.build_args.contains_key(name) {
            self.consumed.insert(name.to_string());
        }
        v
    }

    fn begin_step(&mut self, ins: &Instruction) {
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}\n",
            self.step, self.plan.total_steps, ins.original
        ));
    }

    pub(crate) fn stage(&mut self, i: usize) -> Result<String, BuildError> {
        let def = &self.plan.stages[i];
        self.begin_step(&def.from);
        let lookup = |n: &str| self.global.get(n).cloned().flatten();
        let base = expand::word(&def.base, &lookup, self.plan.escape)
            .map_err(|e| BuildError::Step(e.to_string()))?;
        let image_id = match self.plan.stage_named(&base, i) {
            Some(j) => self.results[j]
                .clone()
                .ok_or_else(|| BuildError::Internal(format!("stage {j} was not built")))?,
            None if base == "scratch" => self.b.images.scratch_image()?,
            None => self.b.images.resolve_id(&base)?,
        };
        let (_, full) = self.b.images.config_json(&image_id)?;
        let mut config = full.get("config").cloned().unwrap_or(Value::Null);
        if !config.is_object() {
            config = json!({});
        }
        let mut st = State {
            image_id,
            config,
            args: Vec::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            cmd_set: false,
            author: full
                .get("author")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        self.triggers(i, &mut st)?;
        self.say(format!(" ---> {}\n", short_id(&st.image_id)));
        for ins in &def.instructions {
            self.begin_step(ins);
            self.dispatch(i, &mut st, ins)?;
            self.say(format!(" ---> {}\n", short_id(&st.image_id)));
        }
        Ok(st.image_id)
    }

    /// Variables visible to expansion: ENV over ARG.
    fn vars(st: &State) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = st
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for e in env_list(&st.config) {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            m.insert(k.to_string(), v.to_string());
        }
        m
    }

    /// Heredoc content: variables expanded, quotes kept.
    pub(crate) fn expand_content(&self, st: &State, s: &str) -> Result<String, BuildError> {
        let vars = Self::vars(st);
        let lookup = |n: &str| vars.get(n).cloned();
        expand::vars_only(s, &lookup, self.plan.escape).map_err(|e| BuildError::Step(e.to_string()))
    }

    pub(crate) fn expand_word(&self, st: &State, s: &str) -> Result<String, BuildError> {
        let vars = Self::vars(st);
        let lookup = |n: &str| vars.get(n).cloned();
        expand::word(s, &lookup, self.plan.escape).map_err(|e| BuildError::Step(e.to_string()))
    }

    fn expand_words(&self, st: &State, s: &str) -> Result<Vec<String>, BuildError> {
        let vars = Self::vars(st);
        let lookup = |n: &str| vars.get(n).cloned();
        expand::words(s, &lookup, self.plan.escape).map_err(|e| BuildError::Step(e.to_string()))
    }

    pub(crate) fn dispatch(
        &mut self,
        stage: usize,
        st: &mut State,
        ins: &Instruction,
    ) -> Result<(), BuildError> {
        match ins.cmd.as_str() {
            "ARG" => self.arg(st, ins),
            "ENV" => {
                let pairs = self.pairs(st, ins, true)?;
                let mut env = env_list(&st.config);
                for (k, v) in &pairs {
                    let prefix = format!("{k}=");
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.starts_with(&prefix) || *e == k) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                set(&mut st.config, "Env", json!(env));
                let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.commit(st, nop(format!(" ENV {}", shown.join(" "))), Layer::None)
            }
            "LABEL" => {
                let pairs = self.pairs(st, ins, false)?;
                let labels = obj_entry(&mut st.config, "Labels");
                for (k, v) in &pairs {
                    labels.insert(k.clone(), json!(v));
                }
                let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.commit(st, nop(format!(" LABEL {}", shown.join(" "))), Layer::None)
            }
            "CMD" | "ENTRYPOINT" | "SHELL" => self.command(st, ins),
            "WORKDIR" => {
                let dir = self.expand_word(st, &ins.rest)?;
                let cur = st.config["WorkingDir"].as_str().unwrap_or("").to_string();
                let path = crate::layer::clean(&if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", if cur.is_empty() { "/" } else { &cur })
                });
                set(&mut st.config, "WorkingDir", json!(path));
                let layer = if path == "/" || self.b.images.image_has_path(&st.image_id, &path)? {
                    Layer::None
                } else {
                    Layer::Tar(dir_layer(&path)?)
                };
                self.commit(st, nop(format!("WORKDIR {path}")), layer)
            }
            "USER" | "STOPSIGNAL" | "MAINTAINER" => {
                let v = self.expand_word(st, &ins.rest)?;
                match ins.cmd.as_str() {
                    "USER" => set(&mut st.config, "User", json!(v)),
                    "STOPSIGNAL" => set(&mut st.config, "StopSignal", json!(v)),
                    _ => st.author = v.clone(),
                }
                self.commit(st, nop(format!(" {} {v}", ins.cmd)), Layer::None)
            }
            "EXPOSE" | "VOLUME" => self.set_entries(st, ins),
            "ONBUILD" => {
                crate::stage_onbuild::check_trigger(&ins.rest)?;
                let list = st.config.get("OnBuild").and_then(Value::as_array).cloned();
                let mut list = list.unwrap_or_default();
                list.push(json!(ins.rest));
                set(&mut st.config, "OnBuild", Value::Array(list));
                self.commit(st, nop(format!(" ONBUILD {}", ins.rest)), Layer::None)
            }
            "HEALTHCHECK" => {
                let hc = crate::stage_health::healthcheck(ins, &st.shell)?;
                let shown = crate::stage_health::history(&hc);
                set(&mut st.config, "Healthcheck", hc);
                self.commit(st, nop(format!(" HEALTHCHECK {shown}")), Layer::None)
            }
            "RUN" => self.run(stage, st, ins),
            "COPY" | "ADD" => self.copy(stage, st, ins),
            other => Err(BuildError::Step(format!("unknown instruction: {other}"))),
        }
    }

    /// ARG: declares build args in the stage, with the value given to the build, the default,
    /// or the global ARG's.
    fn arg(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let words = self.expand_words(st, &ins.rest)?;
        let mut shown = Vec::new();
        for w in words {
            let (name, default) = match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w.clone(), None),
            };
            let value = self
                .arg_value(&name)
                .or(default)
                .or_else(|| self.global.get(&name).cloned().flatten());
            st.args.retain(|(k, _)| *k != name);
            st.args.push((name, value));
            shown.push(w);
        }
        self.commit(st, nop(format!(" ARG {}", shown.join(" "))), Layer::None)
    }

    /// CMD, ENTRYPOINT and SHELL: an argv (exec form, or the shell form in the stage's SHELL).
    fn command(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let argv = match &ins.json {
            Some(v) => v.clone(),
            None if ins.cmd == "SHELL" => {
                return Err(BuildError::Step(
                    "SHELL requires the arguments to be in JSON form".into(),
                ))
            }
            None => {
                let mut v = st.shell.clone();
                v.push(ins.rest.clone());
                v
            }
        };
        let shown = format!("{:?}", argv).replace("\", \"", "\" \"");
        match ins.cmd.as_str() {
            "CMD" => {
                set(&mut st.config, "Cmd", json!(argv));
                st.cmd_set = true;
            }
            "ENTRYPOINT" => {
                set(&mut st.config, "Entrypoint", json!(argv));
                if !st.cmd_set {
                    set(&mut st.config, "Cmd", Value::Null);
                }
            }
            _ => {
                st.shell = argv.clone();
                set(&mut st.config, "Shell", json!(argv));
                // Go's %v of the list, as Docker records SHELL.
                let by = nop(format!(" SHELL [{}]", argv.join(" ")));
                return self.commit(st, by, Layer::None);
            }
        }
        self.commit(st, nop(format!(" {} {shown}", ins.cmd)), Layer::None)
    }

    /// EXPOSE and VOLUME: keys added to `ExposedPorts` or `Volumes`.
    fn set_entries(&mut self, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let items = match (&ins.json, ins.cmd.as_str()) {
            (Some(v), "VOLUME") => v.clone(),
            _ => self.expand_words(st, &ins.rest)?,
        };
        let key = if ins.cmd == "EXPOSE" {
            "ExposedPorts"
        } else {
            "Volumes"
        };
        let map = obj_entry(&mut st.config, key);
        let mut shown = Vec::new();
        for item in items {
            shown.push(item.clone());
            let item = if key == "ExposedPorts" && !item.contains('/') {
                format!("{item}/tcp")
            } else {
                item
            };
            map.insert(item, json!({}));
        }
        // Docker records EXPOSE's ports as written, sorted.
        if key == "ExposedPorts" {
            shown.sort();
        }
        // Docker records VOLUME as Go's %v of the list.
        let by = if key == "Volumes" {
            nop(format!(" VOLUME [{}]", shown.join(" ")))
        } else {
            nop(format!(" {} {}", ins.cmd, shown.join(" ")))
        };
        self.commit(st, by, Layer::None)
    }

    /// `k=v` pairs (ENV, LABEL), or ENV's legacy `k v...` form.
    fn pairs(
        &self,
        st: &State,
        ins: &Instruction,
        env: bool,
    ) -> Result<Vec<(String, String)>, BuildError> {
        let words = self.expand_words(st, &ins.rest)?;
        let Some(first) = words.first() else {
            return Err(BuildError::Step(format!(
                "{} requires at least one argument",
                ins.cmd
            )));
        };
        if !first.contains('=') {
            let rest = ins.rest.trim_start();
            let after = rest
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim());
            if after.is_empty() {
                let msg = if env {
                    "ENV must have two arguments"
                } else {
                    "LABEL requires at least one argument"
                };
                return Err(BuildError::Step(msg.into()));
            }
            return Ok(vec![(first.clone(), self.expand_word(st, after)?)]);
        }
        words
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(BuildError::Step(format!(
                    "{} names can not be blank",
                    ins.cmd
                ))),
            })
            .collect()
    }

    fn run(&mut self, stage: usize, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let heredoc = crate::stage_heredoc::run_argv(&st.shell, ins);
        let (argv, shown, script) = match (heredoc, &ins.json) {
            (Some(h), _) => h,
            (None, Some(v)) => (v.clone(), v.join(" "), None),
            (None, None) => {
                let mut v = st.shell.clone();
                v.push(ins.rest.clone());
                let s = v.join(" ");
                (v, s, None)
            }
        };
        let env_keys: BTreeSet<String> = env_list(&st.config)
            .iter()
            .map(|e| e.split('=').next().unwrap_or_default().to_string())
            .collect();
        let args: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| !env_keys.contains(k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        let created_by = if args.is_empty() {
            shown.clone()
        } else {
            format!("|{} {} {shown}", args.len(), args.join(" "))
        };
        let mut env = env_list(&st.config);
        env.extend(args);
        for p in PREDEFINED_ARGS {
            if let Some(Some(v)) = self.opts.build_args.get(*p) {
                env.push(format!("{p}={v}"));
            }
        }
        let (mut mounts, mount_key) = self.step_mounts(stage, st, ins)?;
        mounts.extend(script);
        let network_mode = match ins.flag("network") {
            None | Some("default") => self.opts.network_mode.clone(),
            Some("none") => "none".to_string(),
            // As BuildKit's entitlement: the build itself must have been allowed the host's.
            Some("host") if self.opts.network_mode == "host" => "host".to_string(),
            Some("host") => {
                return Err(BuildError::Step(
                    "network.host is not allowed: build with --network host".into(),
                ))
            }
            Some(o) => {
                return Err(BuildError::Step(format!(
                    "unsupported network mode \"{o}\""
                )))
            }
        };
        if let Some(f) = ins
            .flags
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "mount" | "network"))
        {
            return Err(BuildError::Step(format!("unknown flag: --{}", f.0)));
        }
        let run = BuildRun {
            image_id: st.image_id.clone(),
            argv,
            env,
            working_dir: st.config["WorkingDir"].as_str().unwrap_or("").to_string(),
            user: st.config["User"].as_str().unwrap_or("").to_string(),
            network_mode,
            mounts: Vec::new(),
        };
        let key = format!("{mount_key}{}", ins.flag("network").unwrap_or_default());
        self.commit_keyed(st, created_by, &key, Layer::Run(run, mounts))
            .map_err(|e| match e {
                BuildError::RunFailed { code, .. } => BuildError::RunFailed {
                    command: shown,
                    code,
                },
                e => e,
            })
    }

    fn copy(&mut self, stage: usize, st: &mut State, ins: &Instruction) -> Result<(), BuildError> {
        let words = match &ins.json {
            Some(v) => v
                .iter()
                .map(|w| self.expand_word(st, w))
                .collect::<Result<Vec<_>, _>>()?,
            None => self.expand_words(st, &ins.rest)?,
        };
        if words.len() < 2 {
            return Err(BuildError::Step(format!(
                "{} requires at least two arguments",
                ins.cmd
            )));
        }
        let srcs = &words[..words.len() - 1];
        if ins.cmd == "COPY" && srcs.iter().any(|w| crate::fetch::is_url(w)) {
            return Err(BuildError::Step(
                "COPY failed: source can't be a URL for COPY".into(),
            ));
        }
        let (dest, sources) = words
            .split_last()
            .ok_or_else(|| BuildError::Internal("no words".into()))?;
        let (sources, heredocs) = self.extra_sources(st, ins, sources)?;
        let cur = st.config["WorkingDir"].as_str().unwrap_or("").to_string();
        let mut abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!(
                "{}/{dest}",
                if cur.is_empty() {
                    "/"
                } else {
                    cur.trim_end_matches('/')
                }
            )
        };
        if dest.ends_with('/') && !abs.ends_with('/') || dest == "." {
            abs.push('/');
        }
        let chown = match ins.flag("chown") {
            None => None,
            Some(c) => {
                let image = st.image_id.clone();
                let images = &self.b.images;
                let mut lookup = |path: &str, name: &str| {
                    let text = images
                        .read_image_file(&image, path, MAX_ID_FILE_BYTES)
                        .ok()??;
                    id_in(&String::from_utf8_lossy(&text), name)
                };
                Some(parse_chown(c, &mut lookup)?)
            }
        };
        let chmod = match ins.flag("chmod") {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| BuildError::Step(format!("invalid chmod parameter: {m}")))?,
            ),
        };
        let spec = CopySpec {
            sources: sources.to_vec(),
            dest: abs.clone(),
            chown,
            chmod,
            from_context: ins.flag("from").is_none(),
            extract_archives: ins.cmd == "ADD",
            // Downloads and heredoc bodies are copied as they are, never extracted.
            no_extract_under: heredocs.as_ref().map(|(dir, _)| dir.clone()),
        };
        match ins.flag("from") {
            None => {
                let overlay;
                let tree: &dyn Tree = match &heredocs {
                    Some((dir, extra)) => {
                        overlay = copy::Overlay {
                            base: self.ctx,
                            extra,
                            dir,
                        };
                        &overlay
                    }
                    None => self.ctx,
                };
                let sum = copy::checksum(tree, &spec)?;
                // The destination as written, as Docker records it.
                let created_by = format!("{NOP} {} {sum} in {dest} ", ins.cmd);
                self.commit(st, created_by, Layer::Copy(tree, spec))
            }
            Some(from) => {
                let from = self.expand_word(st, from)?;
                let image = self.image_for(stage, &from)?;
                // An image's content is fixed by its ID: the key needs no checksum, and a
                // hit needs no mount.
                let created_by = format!(
                    "{NOP} {} --from={image} {:?} {:?} {:?} in {abs} ",
                    ins.cmd, spec.sources, spec.chown, spec.chmod
                );
                let shown = (ins.cmd.clone(), dest.clone());
                self.commit(st, created_by, Layer::CopyFrom(image, spec, shown))
            }
        }
    }

    /// The checksum of what a COPY --from takes from `image` (mounted for it).
    fn copy_from_checksum(&self, image: &str, spec: &CopySpec) -> Result<String, BuildError> {
        let mnt = self.b.temp_dir("from")?;
        let key = format!("build-{:016x}", rand::random::<u64>());
        self.b.images.with_rootfs(image, &key, &mnt.0, |root| {
            copy::checksum(&copy::FsTree(root), spec)
        })?
    }

    /// The image a `--from` names: an earlier stage's result, else an image.
    pub(crate) fn image_for(&self, stage: usize, from: &str) -> Result<String, BuildError> {
        match self.plan.stage_named(from, stage) {
            Some(j) => self.results[j]
                .clone()
                .ok_or_else(|| BuildError::Internal(format!("stage {j} was not built"))),
            None => Ok(self.b.images.resolve_id(from)?),
        }
    }

    fn commit(
        &mut self,
        st: &mut State,
        created_by: String,
        layer: Layer<'_>,
    ) -> Result<(), BuildError> {
        self.commit_keyed(st, created_by, "", layer)
    }

    /// `created_by` with the `#(nop)` marker after the stage's SHELL, as Docker records it.
    fn with_shell(st: &State, created_by: String) -> String {
        match created_by.strip_prefix(NOP) {
            Some(rest) => format!("{} #(nop){rest}", st.shell.join(" ")),
            None => created_by,
        }
    }

    /// Looks the step up in the cache (its key: the parent, the instruction, the config, and
    /// `extra`), else makes its layer and image.
    fn commit_keyed(
        &mut self,
        st: &mut State,
        created_by: String,
        extra: &str,
        layer: Layer<'_>,
    ) -> Result<(), BuildError> {
        let created_by = Self::with_shell(st, created_by);
        let mut h = Sha256::new();
        for part in [
            st.image_id.as_str(),
            created_by.as_str(),
            &st.config.to_string(),
            &st.author,
            extra,
        ] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        if let Some(e) = self.epoch {
            h.update(format!("SOURCE_DATE_EPOCH={e}\0").as_bytes());
        }
        let key = format!("sha256:{}", hex::encode(h.finalize()));
        if !self.opts.no_cache {
            let hit = match self.b.images.build_cache_get(&key)? {
                Some(id) => Some(id),
                None => {
                    // --cache-from images record COPY --from as Docker does (with the
                    // checksum): worked out, with a mount, only when there are any.
                    let shown = match &layer {
                        Layer::CopyFrom(image, spec, (cmd, dest))
                            if !self.cache_from.is_empty() =>
                        {
                            let sum = self.copy_from_checksum(image, spec)?;
                            Self::with_shell(st, format!("{NOP} {cmd} {sum} in {dest} "))
                        }
                        _ => created_by.clone(),
                    };
                    let from = self.b.images.cache_from_match(
                        &st.image_id,
                        &self.cache_from,
                        &shown,
                        &st.config,
                    )?;
                    // Remembered, so that the next build hits without --cache-from (a
                    // local hit needs no write: a write transaction per step is slow).
                    if let Some(id) = &from {
                        self.b.images.build_cache_put(&key, id)?;
                    }
                    from
                }
            };
            if let Some(id) = hit {
                self.say(" ---> Using cache\n".into());
                st.image_id = id;
                return Ok(());
            }
        }
        let (mut spool, container, shown) = self.layer_file(layer)?;
        // What history shows, when it is not the key's text (COPY --from: Docker's form).
        let created_by = match shown {
            Some(text) => Self::with_shell(st, format!("{NOP} {text}")),
            None => created_by,
        };
        let req = CommitRequest {
            base_image_id: st.image_id.clone(),
            config: st.config.clone(),
            // The throwaway container's ID would make every reproducible build differ.
            container_id: match self.epoch {
                Some(_) => String::new(),
                None => container.clone().unwrap_or_default(),
            },
            author: st.author.clone(),
            created_by,
            created: self.epoch.map(crate::reproducible::created),
            ..Default::default()
        };
        let id = self.b.images.commit(&req, &mut spool);
        if let Some(c) = &container {
            if self.opts.rm || self.opts.force_rm {
                self.remove_container(c);
            }
        }
        let id = id?;
        self.b.images.build_cache_put(&key, &id)?;
        st.image_id = id;
        Ok(())
    }

    /// The step's layer tar in a spool file (rewound), the RUN container's ID, and the
    /// history text when it differs from the cache key's (after `#(nop) `).
    fn layer_file(&self, layer: Layer<'_>) -> Result<LayerFile, BuildError> {
        let mut spool = tempfile::tempfile_in(&self.b.root)
            .map_err(|e| BuildError::Internal(format!("layer spool: {e}")))?;
        let io = |e: std::io::Error| BuildError::Internal(format!("layer spool: {e}"));
        let mut container = None;
        let mut shown = None;
        let mut hide = Vec::new();
        match layer {
            Layer::None => spool.write_all(&[0u8; 1024]).map_err(io)?,
            Layer::Tar(t) => spool.write_all(&t).map_err(io)?,
            Layer::Copy(root, spec) => copy::write_layer(root, &spec, &mut spool)?,
            Layer::CopyFrom(image, spec, (cmd, dest)) => {
                let mnt = self.b.temp_dir("from")?;
                let key = format!("build-{:016x}", rand::random::<u64>());
                let sum = self.b.images.with_rootfs(&image, &key, &mnt.0, |root| {
                    let tree = copy::FsTree(root);
                    copy::write_layer(&tree, &spec, &mut spool)?;
                    copy::checksum(&tree, &spec)
                })??;
                shown = Some(format!("{cmd} {sum} in {dest} "));
            }
            Layer::Run(run, mounts) => {
                let images: Vec<String> =
                    mounts.iter().filter_map(|m| m.from_image.clone()).collect();
                let (id, targets) = self.with_roots(&images, &mut Vec::new(), &mut |roots| {
                    let prepared = self.prepare(&mounts, roots)?;
                    let mut run = run.clone();
                    run.mounts = prepared.mounts.clone();
                    let id = self.run_container(&run, &mut spool)?;
                    Ok((id, prepared.targets.clone()))
                })?;
                hide = targets;
                // The files the runtime bind-mounts, as in Docker's init layer.
                hide.extend(RUNTIME_FILES.iter().map(|f| f.to_string()));
                container = Some(id);
            }
        }
        spool.rewind().map_err(io)?;
        let drop = crate::layer::hidden(&mut spool, &hide).map_err(io)?;
        // A layer with nothing to drop and no epoch goes to the store as it is.
        if self.epoch.is_some() || !drop.is_empty() {
            let mut edited = tempfile::tempfile_in(&self.b.root).map_err(io)?;
            let epoch = self.epoch.map(i64::unsigned_abs);
            crate::layer::rewrite(&mut spool, &mut edited, epoch, &drop).map_err(io)?;
            edited.rewind().map_err(io)?;
            spool = edited;
        }
        Ok((spool, container, shown))
    }

    /// Runs a RUN step's container and writes its diff to `spool`; returns the container ID.
    fn run_container(
        &self,
        run: &BuildRun,
        spool: &mut std::fs::File,
    ) -> Result<String, BuildError> {
        let quiet = self.opts.quiet;
        let out = &self.out;
        let mut on_created = |id: &str| {
            if !quiet {
                (out.borrow_mut())(Output::Stream(format!(
                    " ---> Running in {}\n",
                    short_id(id)
                )));
            }
        };
        let mut writer = StreamWriter { out, quiet };
        let (id, code) = self
            .b
            .containers
            .build_run(run, &mut on_created, &mut writer)?;
        if code != 0 {
            if self.opts.force_rm {
                self.remove_container(&id);
            }
            return Err(BuildError::RunFailed {
                command: run.argv.join(" "),
                code,
            });
        }
        if let Err(e) = self.b.containers.build_diff(&id, spool) {
            self.remove_container(&id);
            return Err(e.into());
        }
        Ok(id)
    }

    fn remove_container(&self, id: &str) {
        match self.b.containers.remove(id, true) {
            Ok(()) => self.say(format!(
                "Removing intermediate container {}\n",
                short_id(id)
            )),
            Err(e) => tracing::warn!("remove build container {id}: {e}"),
        }
    }
}

/// RUN output as `{"stream": ...}` messages.
struct StreamWriter<'r, 'a> {
    out: &'r RefCell<&'a mut dyn FnMut(Output)>,
    quiet: bool,
}

impl Write for StreamWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.quiet && !buf.is_empty() {
            (self.out.borrow_mut())(Output::Stream(String::from_utf8_lossy(buf).into_owned()));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A metadata instruction's history entry, as Docker's classic builder writes it.
fn nop(s: String) -> String {
    format!("{NOP} {s}")
}

/// The marker of a step that ran no command (rewritten with the stage's SHELL on commit).
const NOP: &str = "/bin/sh -c #(nop)";

fn env_list(config: &Value) -> Vec<String> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set(config: &mut Value, key: &str, v: Value) {
    if let Some(o) = config.as_object_mut() {
        o.insert(key.to_string(), v);
    }
}

fn obj_entry<'v>(config: &'v mut Value, key: &str) -> &'v mut Map<String, Value> {
    if !config.is_object() {
        *config = json!({});
    }
    let slot = &mut config[key];
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A layer holding one new directory (WORKDIR's).
fn dir_layer(path: &str) -> Result<Vec<u8>, BuildError> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    let io = |e: std::io::Error| BuildError::Internal(format!("workdir layer: {e}"));
    tar.append_data(
        &mut header,
        format!("{}/", path.trim_start_matches('/')),
        std::io::empty(),
    )
    .map_err(io)?;
    tar.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        let mut c = json!({});
        obj_entry(&mut c, "Labels").insert("a".into(), json!("b"));
        assert_eq!(c["Labels"]["a"], "b");
    }
}
