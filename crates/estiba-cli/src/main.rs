//! estiba: a docker-compatible command-line client for estibad (and any Docker engine).

mod args;
mod client;
mod cmd;
mod dockerignore;
mod format;
mod jsonindent;
mod output;
mod tabwriter;
mod template;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command, ImageCommand, SystemCommand};
use crate::client::Client;

/// An error that ends the CLI with a specific exit status (its message may be empty).
#[derive(Debug)]
pub(crate) struct StatusError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl StatusError {
    /// docker's end of a command run on several objects: the errors, one per line, exit 1.
    pub(crate) fn from_errors(errors: Vec<String>) -> anyhow::Result<()> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StatusError {
                code: 1,
                message: errors.join("\n"),
            }
            .into())
        }
    }
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return args::report_parse_error(&err),
    };
    let host = cli
        .host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| client::DEFAULT_HOST.to_owned());

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli, &host));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(status) = err.downcast_ref::<StatusError>() {
                if !status.message.is_empty() {
                    eprintln!("{}", status.message);
                }
                return ExitCode::from(status.code);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("{err:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli, host: &str) -> anyhow::Result<()> {
    let mut client = Client::new(host)?;
    let c = &mut client;
    match cli.command {
        Command::Version(a) => cmd::system::version(c, a).await,
        Command::Info(a) => cmd::system::info(c, a).await,
        Command::Events(a) => cmd::events::events(c, a).await,
        Command::Images(a) => cmd::image::list(c, a, "images").await,
        Command::Inspect(a) => cmd::inspect::inspect(c, a).await,
        Command::Load(a) => cmd::transfer::load(c, a).await,
        Command::Build(a) => cmd::build::build(c, a).await,
        Command::Pull(a) => cmd::registry::pull(c, a).await,
        Command::Push(a) => cmd::registry::push(c, a).await,
        Command::Login(a) => cmd::registry::login(c, a).await,
        Command::Logout(a) => cmd::registry::logout(c, a).await,
        Command::Save(a) => cmd::transfer::save(c, a, "save").await,
        Command::Tag(a) => cmd::image::tag(c, a, "tag").await,
        Command::Rmi(a) => cmd::image::remove(c, a, "rmi").await,
        Command::History(a) => cmd::image::history(c, a, "history").await,
        Command::Image(ImageCommand::Ls(a)) => cmd::image::list(c, a, "image ls").await,
        Command::Image(ImageCommand::Inspect(a)) => cmd::inspect::image_inspect(c, a).await,
        Command::Image(ImageCommand::Load(a)) => cmd::transfer::load(c, a).await,
        Command::Image(ImageCommand::Save(a)) => cmd::transfer::save(c, a, "image save").await,
        Command::Image(ImageCommand::Tag(a)) => cmd::image::tag(c, a, "image tag").await,
        Command::Image(ImageCommand::Rm(a)) => cmd::image::remove(c, a, "image rm").await,
        Command::Image(ImageCommand::History(a)) => {
            cmd::image::history(c, a, "image history").await
        }
        Command::Image(ImageCommand::Prune(a)) => cmd::image::prune(c, a).await,
        Command::System(SystemCommand::Df(a)) => cmd::system::df(c, a).await,
        Command::System(SystemCommand::Events(a)) => cmd::events::events(c, a).await,
        Command::System(SystemCommand::Info(a)) => cmd::system::info(c, a).await,
        Command::Run(a) => cmd::container::run::run(c, a, "run").await,
        Command::Create(a) => cmd::container::run::create_cmd(c, a, "create").await,
        Command::Start(a) => cmd::container::run::start(c, a, "start").await,
        Command::Stop(a) => cmd::container::manage::stop(c, a, "stop").await,
        Command::Kill(a) => cmd::container::manage::kill(c, a, "kill").await,
        Command::Restart(a) => cmd::container::manage::stop(c, a, "restart").await,
        Command::Rm(a) => cmd::container::manage::rm(c, a, "rm").await,
        Command::Ps(a) => cmd::container::ps::ps(c, a, "ps").await,
        Command::Logs(a) => cmd::container::manage::logs(c, a, "logs").await,
        Command::Wait(a) => cmd::container::manage::wait(c, a, "wait").await,
        Command::Rename(a) => cmd::container::manage::rename(c, a, "rename").await,
        Command::Pause(a) => cmd::container::manage::pause(c, a, "pause").await,
        Command::Unpause(a) => cmd::container::manage::pause(c, a, "unpause").await,
        Command::Top(a) => cmd::container::manage::top(c, a, "top").await,
        Command::Stats(a) => cmd::container::manage::stats(c, a, "stats").await,
        Command::Attach(a) => cmd::container::run::attach(c, a, "attach").await,
        Command::Port(a) => cmd::container::manage::port(c, a, "port").await,
        Command::Exec(a) => cmd::container::run::exec(c, a, "exec").await,
        Command::Cp(a) => cmd::container::files::cp(c, a, "cp").await,
        Command::Diff(a) => cmd::container::files::diff(c, a, "diff").await,
        Command::Export(a) => cmd::container::files::export(c, a, "export").await,
        Command::Commit(a) => cmd::container::files::commit(c, a, "commit").await,
        Command::Update(a) => cmd::container::files::update(c, a, "update").await,
        Command::Container(sub) => cmd::container::container(c, sub).await,
        Command::Volume(sub) => cmd::volume::volume(c, sub).await,
        Command::Network(sub) => cmd::network::network(c, sub).await,
    }
}
