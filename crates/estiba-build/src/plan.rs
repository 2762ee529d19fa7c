//! Which stages a build runs: the Dockerfile split into global ARGs and stages, the target
//! chosen, and only the stages the target needs (through `FROM <stage>` and `COPY --from`).

use crate::parser::{Dockerfile, Instruction};
use crate::{BuildError, BuildOptions};

/// One `FROM` and the instructions after it.
#[derive(Debug, Clone)]
pub struct StageDef {
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: Instruction,
    /// The base as written (expanded later with the global ARGs).
    pub base: String,
    pub instructions: Vec<Instruction>,
}

/// The stages to build, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub escape: char,
    /// ARGs before the first FROM.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<StageDef>,
    /// Indices of the stages to build (ascending); the last is the target.
    pub needed: Vec<usize>,
    /// `Step N/total`.
    pub total_steps: usize,
}

impl Plan {
    pub fn new(df: Dockerfile, opts: &BuildOptions) -> Result<Plan, BuildError> {
        let mut global_args = Vec::new();
        let mut stages: Vec<StageDef> = Vec::new();
        for ins in df.instructions {
            check_flags(&ins)?;
            if ins.cmd == "FROM" {
                let words: Vec<&str> = ins.rest.split_whitespace().collect();
                let name = match words.as_slice() {
                    [_] => None,
                    [_, r#as, n] if r#as.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                    _ => {
                        return Err(crate::parser::ParseError {
                            line: ins.line,
                            message: "FROM requires either one or three arguments".into(),
                        }
                        .into())
                    }
                };
                stages.push(StageDef {
                    name,
                    base: words[0].to_string(),
                    from: ins,
                    instructions: Vec::new(),
                });
            } else if let Some(s) = stages.last_mut() {
                s.instructions.push(ins);
            } else if ins.cmd == "ARG" {
                global_args.push(ins);
            } else {
                return Err(BuildError::Invalid(
                    "no build stage in current context".into(),
                ));
            }
        }
        if stages.is_empty() {
            return Err(BuildError::Invalid(
                "no build stage in current context".into(),
            ));
        }
        let target = if opts.target.is_empty() {
            stages.len() - 1
        } else {
            let t = opts.target.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "failed to reach build target {} in Dockerfile",
                        opts.target
                    ))
                })?
        };
        if !opts.labels.is_empty() {
            let text = opts
                .labels
                .iter()
                .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
                .collect::<Vec<_>>()
                .join(" ");
            let line = stages[target]
                .instructions
                .last()
                .map_or(stages[target].from.line, |i| i.line);
            stages[target].instructions.push(Instruction {
                line,
                cmd: "LABEL".into(),
                flags: Vec::new(),
                original: format!("LABEL {text}"),
                rest: text,
                json: None,
                heredocs: Vec::new(),
            });
        }
        let mut needed = vec![false; stages.len()];
        mark(&stages, target, &mut needed);
        let needed: Vec<usize> = (0..stages.len()).filter(|&i| needed[i]).collect();
        // Docker's classic builder counts (and prints) the ARGs before the first FROM as steps.
        let total_steps = global_args.len()
            + needed
                .iter()
                .map(|&i| 1 + stages[i].instructions.len())
                .sum::<usize>();
        Ok(Plan {
            escape: df.escape,
            global_args,
            stages,
            needed,
            total_steps,
        })
    }

    /// The earlier stages stage `i` uses (FROM, COPY --from, RUN --mount from=), as written
    /// (`None` when one of those names has a variable, so is known only while building).
    pub fn deps(&self, i: usize) -> Option<Vec<usize>> {
        let s = &self.stages[i];
        let mut names = vec![s.base.as_str()];
        for ins in &s.instructions {
            names.extend(ins.flag("from"));
            for (k, v) in &ins.flags {
                if k == "mount" {
                    names.extend(v.split(',').filter_map(|f| f.strip_prefix("from=")));
                }
            }
        }
        if names.iter().any(|n| n.contains('$')) {
            return None;
        }
        let mut out: Vec<usize> = names
            .iter()
            .filter_map(|n| self.stage_named(n, i))
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// The stage a `--from` or FROM value names among the first `before` stages.
    pub fn stage_named(&self, name: &str, before: usize) -> Option<usize> {
        stage_ref(&self.stages[..before.min(self.stages.len())], name)
    }
}

fn stage_ref(stages: &[StageDef], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(i) = stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(i);
    }
    name.parse::<usize>().ok().filter(|&i| i < stages.len())
}

fn mark(stages: &[StageDef], i: usize, needed: &mut [bool]) {
    if needed[i] {
        return;
    }
    needed[i] = true;
    let earlier = &stages[..i];
    if let Some(j) = earlier
        .iter()
        .position(|s| s.name.as_deref() == Some(stages[i].base.to_ascii_lowercase().as_str()))
    {
        mark(stages, j, needed);
    }
    for ins in &stages[i].instructions {
        // COPY --from, and RUN --mount=...,from=...
        let mount_froms = ins
            .flags
            .iter()
            .filter(|(k, _)| k == "mount")
            .filter_map(|(_, v)| v.split(',').find_map(|f| f.strip_prefix("from=")));
        for from in ins.flag("from").into_iter().chain(mount_froms) {
            if let Some(j) = stage_ref(earlier, from) {
                mark(stages, j, needed);
            }
        }
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The options each instruction takes (BuildKit's `COPY --chmod`/`--link` and `RUN --mount`
/// too); any other is Docker's parse error, before any step runs.
fn check_flags(ins: &Instruction) -> Result<(), crate::parser::ParseError> {
    let allowed: &[&str] = match ins.cmd.as_str() {
        "FROM" => &["platform"],
        "RUN" => &["mount", "network"],
        "COPY" => &["from", "chown", "chmod", "link"],
        "ADD" => &["chown", "chmod", "link"],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    };
    match ins
        .flags
        .iter()
        .find(|(k, _)| !allowed.contains(&k.as_str()))
    {
        Some((k, _)) => Err(crate::parser::ParseError {
            line: ins.line,
            message: format!("Unknown flag: {k}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn plan(text: &str, target: &str) -> Result<Plan, BuildError> {
        let opts = BuildOptions {
            target: target.into(),
            ..Default::default()
        };
        Plan::new(parse(text).unwrap(), &opts)
    }

    #[test]
    fn unknown_flags_are_parse_errors() {
        let e = plan("FROM a\nCOPY --bogus x /x\n", "")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "dockerfile parse error line 2: Unknown flag: bogus");
        let e = plan("FROM --nope=1 a\n", "").unwrap_err().to_string();
        assert_eq!(e, "dockerfile parse error line 1: Unknown flag: nope");
        let ok = "FROM --platform=linux/amd64 a\nCOPY --from=a --chown=1 --chmod=600 --link x /x\nRUN --mount=type=tmpfs,target=/t --network=none true\n";
        assert!(plan(ok, "").is_ok());
    }

    #[test]
    fn only_needed_stages() {
        let text =
            "ARG V=1\nFROM a AS one\nRUN x\nFROM b AS two\nRUN y\nFROM c\nCOPY --from=one /x /x\n";
        let p = plan(text, "").unwrap();
        assert_eq!(p.needed, vec![0, 2]);
        assert_eq!(p.total_steps, 5);
        assert_eq!(p.global_args.len(), 1);
        assert_eq!(plan(text, "two").unwrap().needed, vec![1]);
        let p = plan("FROM a AS base\nFROM base\nRUN z\n", "").unwrap();
        assert_eq!(p.needed, vec![0, 1]);
        assert!(plan(text, "nope")
            .unwrap_err()
            .to_string()
            .contains("failed to reach build target nope"));
        assert!(plan("RUN x\n", "").is_err());
    }
}
