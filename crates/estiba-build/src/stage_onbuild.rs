//! ONBUILD: triggers recorded in the image config's `OnBuild`, run (Docker's classic order
//! and output: "# Executing N build triggers", no step numbers) right after a later FROM
//! names the image, and cleared from the config so that they are not inherited further.

use serde_json::Value;

use crate::parser;
use crate::stage::{Run, State};
use crate::BuildError;

/// Most triggers one image may carry.
const MAX_TRIGGERS: usize = 1000;

/// Refuses the triggers Docker refuses (`ONBUILD ONBUILD`, `ONBUILD FROM`, `ONBUILD MAINTAINER`).
pub(crate) fn check_trigger(text: &str) -> Result<(), BuildError> {
    let word = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    match word.as_str() {
        "ONBUILD" => Err(BuildError::Step(
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
        )),
        "FROM" | "MAINTAINER" => Err(BuildError::Step(format!(
            "{word} isn't allowed as an ONBUILD trigger"
        ))),
        _ => Ok(()),
    }
}

impl Run<'_> {
    /// Runs the base image's ONBUILD triggers in stage `stage`, after clearing them.
    pub(crate) fn triggers(&mut self, stage: usize, st: &mut State) -> Result<(), BuildError> {
        let list: Vec<String> = match st.config.get("OnBuild").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => return Ok(()),
        };
        if list.len() > MAX_TRIGGERS {
            return Err(BuildError::Step("too many ONBUILD triggers".into()));
        }
        let word = if list.len() == 1 {
            "trigger"
        } else {
            "triggers"
        };
        self.say(format!("# Executing {} build {word}\n", list.len()));
        if let Some(o) = st.config.as_object_mut() {
            o.insert("OnBuild".into(), Value::Null);
        }
        for text in list {
            check_trigger(&text)?;
            let df = parser::parse(&text).map_err(|e| {
                BuildError::Step(format!("ONBUILD trigger {text:?}: {}", e.message))
            })?;
            for ins in &df.instructions {
                self.dispatch(stage, st, ins)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_refuses_these_triggers() {
        assert!(check_trigger("RUN echo hi").is_ok());
        assert!(check_trigger("copy a /b").is_ok());
        for (t, want) in [
            ("ONBUILD RUN x", "Chaining ONBUILD"),
            ("from busybox", "FROM isn't allowed as an ONBUILD trigger"),
            ("MAINTAINER me", "MAINTAINER isn't allowed"),
        ] {
            assert!(
                check_trigger(t).unwrap_err().to_string().contains(want),
                "{t}"
            );
        }
    }
}
