//! Container commands (`run`, `ps`, `logs`, `exec`...) and their `estiba container ...` forms.

pub(crate) mod args;
mod create;
pub(crate) mod files;
pub(crate) mod manage;
pub(crate) mod ps;
pub(crate) mod run;
mod stream;

use crate::client::Client;
use args::ContainerCommand;

/// `estiba container <sub>`.
pub(crate) async fn container(client: &mut Client, sub: ContainerCommand) -> anyhow::Result<()> {
    use ContainerCommand as C;
    match sub {
        C::Run(a) => run::run(client, a, "container run").await,
        C::Create(a) => run::create_cmd(client, a, "container create").await,
        C::Start(a) => run::start(client, a, "container start").await,
        C::Stop(a) => manage::stop(client, a, "container stop").await,
        C::Kill(a) => manage::kill(client, a, "container kill").await,
        C::Restart(a) => manage::stop(client, a, "container restart").await,
        C::Rm(a) => manage::rm(client, a, "container rm").await,
        C::Ls(a) => ps::ps(client, a, "container ls").await,
        C::Logs(a) => manage::logs(client, a, "container logs").await,
        C::Wait(a) => manage::wait(client, a, "container wait").await,
        C::Inspect(a) => manage::inspect(client, a).await,
        C::Rename(a) => manage::rename(client, a, "container rename").await,
        C::Pause(a) => manage::pause(client, a, "container pause").await,
        C::Unpause(a) => manage::pause(client, a, "container unpause").await,
        C::Top(a) => manage::top(client, a, "container top").await,
        C::Stats(a) => manage::stats(client, a, "container stats").await,
        C::Attach(a) => run::attach(client, a, "container attach").await,
        C::Prune(a) => manage::prune(client, a).await,
        C::Port(a) => manage::port(client, a, "container port").await,
        C::Exec(a) => run::exec(client, a, "container exec").await,
        C::Cp(a) => files::cp(client, a, "container cp").await,
        C::Diff(a) => files::diff(client, a, "container diff").await,
        C::Export(a) => files::export(client, a, "container export").await,
        C::Commit(a) => files::commit(client, a, "container commit").await,
        C::Update(a) => files::update(client, a, "container update").await,
    }
}
