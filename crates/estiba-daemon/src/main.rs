//! estibad: the Estiba daemon, serving the Docker Engine API.

mod api;
mod config;
mod daemon;
mod host;
mod listen;
mod lock;
mod logging;
mod netconfig;
mod runtimes;
mod server;

use std::process::ExitCode;

fn main() -> ExitCode {
    let (flags, given) = config::parse_args();
    let config = match config::load(&flags, &given) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let log = logging::init(config.effective_log_level());
    match daemon::run(flags, given, config, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
