//! Log lines in runc's shapes (logrus text or JSON), so a shim written for runc can read the
//! last `"level":"error"` line of `--log FILE` and report it as the failure's cause.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

use crate::cli::LogFormat;

/// Longest message written in one line; libcontainer debug output can embed a whole spec.
const MAX_MSG_BYTES: usize = 64 * 1024;

/// Where log lines go and how they look.
#[derive(Clone)]
pub(crate) struct Logger {
    sink: Arc<Mutex<Sink>>,
    format: LogFormat,
}

enum Sink {
    Stderr,
    File(File),
}

impl Logger {
    pub(crate) fn new(path: Option<&Path>, format: LogFormat) -> anyhow::Result<Self> {
        let sink = match path {
            None => Sink::Stderr,
            Some(path) => Sink::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("open log file {}", path.display()))?,
            ),
        };
        Ok(Self {
            sink: Arc::new(Mutex::new(sink)),
            format,
        })
    }

    /// Writes one line at `level` ("error", "debug", ...). Failures to log are ignored: there is
    /// nowhere left to report them.
    pub(crate) fn write(&self, level: &str, msg: &str) {
        let line = format_line(self.format, level, msg, &now_rfc3339());
        let Ok(mut sink) = self.sink.lock() else {
            return;
        };
        let _ = match &mut *sink {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
    }

    /// Routes `tracing` events (ours and libcontainer's) to this logger at `max_level` and below.
    pub(crate) fn install_tracing(&self, max_level: Level) {
        let layer = TracingLayer {
            logger: self.clone(),
            max_level,
        };
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One log line, newline-terminated, as logrus prints it.
fn format_line(format: LogFormat, level: &str, msg: &str, time: &str) -> String {
    let msg = truncate(msg, MAX_MSG_BYTES);
    match format {
        LogFormat::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        LogFormat::Text => {
            let quoted = serde_json::Value::String(msg.to_owned()).to_string();
            format!("time=\"{time}\" level={level} msg={quoted}\n")
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct TracingLayer {
    logger: Logger,
    max_level: Level,
}

impl<S: Subscriber> Layer<S> for TracingLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: LayerContext<'_, S>) -> bool {
        *metadata.level() <= self.max_level
    }

    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        if *event.metadata().level() > self.max_level {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        self.logger.write(level, &visitor.msg);
    }
}

/// Flattens an event into "message key=value ...".
#[derive(Default)]
struct MessageVisitor {
    msg: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.msg.len() > MAX_MSG_BYTES {
            return;
        }
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.msg);
            let _ = write!(self.msg, "{value:?}{rest}");
        } else {
            let _ = write!(self.msg, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_runc_shapes() {
        let cases: &[(LogFormat, &str, &str, &str)] = &[
            (
                LogFormat::Json,
                "error",
                "container does not exist",
                "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"2026-01-02T03:04:05Z\"}\n",
            ),
            (
                LogFormat::Text,
                "error",
                "container does not exist",
                "time=\"2026-01-02T03:04:05Z\" level=error msg=\"container does not exist\"\n",
            ),
            (
                LogFormat::Text,
                "debug",
                "quote \" and\nnewline",
                "time=\"2026-01-02T03:04:05Z\" level=debug msg=\"quote \\\" and\\nnewline\"\n",
            ),
        ];
        for (format, level, msg, want) in cases {
            assert_eq!(
                format_line(*format, level, msg, "2026-01-02T03:04:05Z"),
                *want
            );
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
