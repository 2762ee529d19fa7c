//! Logging to stderr at a level SIGHUP can change.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogLevel;

/// Changes the level of the installed subscriber.
pub(crate) struct LogHandle(reload::Handle<LevelFilter, tracing_subscriber::Registry>);

fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Fatal => LevelFilter::ERROR,
    }
}

/// Installs the global subscriber.
pub(crate) fn init(level: LogLevel) -> LogHandle {
    let (layer, handle) = reload::Layer::new(filter(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    // Only fails when a subscriber is already installed (tests), which is harmless.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init();
    LogHandle(handle)
}

impl LogHandle {
    pub(crate) fn set(&self, level: LogLevel) {
        if let Err(e) = self.0.modify(|f| *f = filter(level)) {
            tracing::warn!("change log level: {e}");
        }
    }
}
