//! estiba's own live display of a pull or push on a terminal (indicatif): one line per layer
//! with its status and, while bytes move, a bar of the daemon's `progressDetail`. Without a
//! terminal the JSON messages print as plain lines instead (`transfer::message_text`), as
//! docker prints them.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// Most layer lines kept live (a manifest has at most a few hundred layers).
const MAX_BARS: usize = 1024;

/// The live lines of one transfer.
pub(crate) struct LiveProgress {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    moving: ProgressStyle,
    still: ProgressStyle,
}

impl LiveProgress {
    /// Draws on the terminal's stdout.
    pub(crate) fn stdout() -> LiveProgress {
        LiveProgress::with_target(ProgressDrawTarget::stdout())
    }

    pub(crate) fn with_target(target: ProgressDrawTarget) -> LiveProgress {
        let moving =
            ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let still = ProgressStyle::with_template("{prefix}: {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        LiveProgress {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            moving,
            still,
        }
    }

    /// Shows one message: a layer's status on its own line, anything else printed above.
    pub(crate) fn show(&mut self, msg: &Value) {
        let id = msg.get("id").and_then(Value::as_str).unwrap_or_default();
        let status = msg.get("status").and_then(Value::as_str);
        let (Some(status), false) = (status, id.is_empty()) else {
            let text = super::transfer::message_text(msg);
            if !text.is_empty() {
                let _ = self.multi.println(text.trim_end_matches('\n'));
            }
            return;
        };
        if !self.bars.contains_key(id) && self.bars.len() >= MAX_BARS {
            return;
        }
        let bar = self.bars.entry(id.to_owned()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::no_length());
            bar.set_style(self.still.clone());
            bar.set_prefix(id.to_owned());
            bar
        });
        let detail = msg.get("progressDetail");
        let current = detail
            .and_then(|d| d.get("current"))
            .and_then(Value::as_u64);
        let total = detail.and_then(|d| d.get("total")).and_then(Value::as_u64);
        match (current, total) {
            (Some(current), Some(total)) if total > 0 => {
                bar.set_style(self.moving.clone());
                bar.set_length(total);
                bar.set_position(current.min(total));
            }
            _ => bar.set_style(self.still.clone()),
        }
        bar.set_message(status.to_owned());
    }

    /// Leaves every line as it last was.
    pub(crate) fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }

    #[cfg(test)]
    fn bar(&self, id: &str) -> Option<&ProgressBar> {
        self.bars.get(id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn layer_lines_follow_the_daemons_messages() {
        let mut live = LiveProgress::with_target(ProgressDrawTarget::hidden());
        live.show(&json!({"status": "Pulling from team/app", "id": "1"}));
        live.show(&json!({"status": "Pulling fs layer", "id": "aaaa"}));
        live.show(&json!({"status": "Waiting", "id": "bbbb"}));
        live.show(&json!({"status": "Downloading", "id": "aaaa",
            "progressDetail": {"current": 512, "total": 2048}}));
        let a = live.bar("aaaa").expect("a line for aaaa");
        assert_eq!(a.message(), "Downloading");
        assert_eq!((a.position(), a.length()), (512, Some(2048)));
        live.show(&json!({"status": "Download complete", "id": "aaaa", "progressDetail": {}}));
        live.show(&json!({"status": "Pull complete", "id": "aaaa"}));
        let a = live.bar("aaaa").expect("a line for aaaa");
        assert_eq!(a.message(), "Pull complete");
        assert_eq!(
            live.bar("bbbb").map(|b| b.message()).as_deref(),
            Some("Waiting")
        );
        // A message without an ID is printed, not a line of its own.
        live.show(&json!({"status": "Digest: sha256:abc"}));
        assert_eq!(live.bars.len(), 3);
        // A current past the total (a resumed blob) stays inside the bar.
        live.show(&json!({"status": "Pushing", "id": "cccc",
            "progressDetail": {"current": 9000, "total": 100}}));
        let c = live.bar("cccc").expect("a line for cccc");
        assert_eq!((c.position(), c.length()), (100, Some(100)));
        live.finish();
    }
}
