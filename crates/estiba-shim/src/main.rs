//! estiba-shim: the relay that forks the shim off (first process) and the shim itself (the forked
//! child, or a process started with `--daemonized`), which supervises one container. The contract is in the library's docs.

use std::process::ExitCode;

use estiba_shim::ShimArgs;

mod daemonize;
mod exec;
mod exit;
mod jsonlog;
mod nsexec;
mod runtime;
mod sealed;
mod server;
mod stdio;
mod trim;

fn main() -> ExitCode {
    match ShimArgs::parse(std::env::args_os().skip(1)) {
        Err(e) => {
            println!("error {e}");
            ExitCode::from(2)
        }
        Ok((args, false)) => daemonize::relay(args),
        Ok((args, true)) => server::main(args),
    }
}
