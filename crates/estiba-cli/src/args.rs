//! The command line: docker's commands, flags and usage errors (exit 125 for a bad flag, 1 for a
//! wrong number of arguments, as docker 28 does).

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser, Subcommand};

use crate::cmd::container::args::{
    AttachArgs, CommitArgs, ContainerCommand, CpArgs, ExecArgs, ExportArgs, KillArgs, LogsArgs,
    NamesArgs, PsArgs, RmArgs, RunArgs, StartArgs, StatsArgs, StopArgs, TopArgs, UpdateArgs,
};
use crate::StatusError;

#[derive(Parser, Debug)]
#[command(
    name = "estiba",
    about = "A self-sufficient runtime for containers",
    version
)]
#[command(disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub(crate) host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub(crate) debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(short = 'l', long = "log-level", value_name = "string")]
    pub(crate) log_level: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Show the estiba version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// List images
    Images(ImagesArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Build an image from a Dockerfile
    Build(crate::cmd::build::BuildArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Rename a container
    Rename(NamesArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// List port mappings or a specific mapping for the container
    Port(NamesArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(NamesArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(crate::cmd::volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(crate::cmd::network::NetworkCommand),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum SystemCommand {
    /// Show docker disk usage
    Df(DfArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub(crate) struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long = "since", value_name = "string")]
    pub(crate) since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long = "until", value_name = "string")]
    pub(crate) until: Option<String>,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Show digests
    #[arg(long = "digests")]
    pub(crate) digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    #[arg(hide = true, value_name = "REPOSITORY[:TAG]")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub(crate) size: bool,
    /// Return JSON for specified type
    #[arg(long = "type", value_name = "string")]
    pub(crate) kind: Option<String>,
    #[arg(hide = true, value_name = "NAME|ID")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(hide = true, value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PullArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", value_name = "string")]
    pub(crate) platform: Option<String>,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub(crate) image: String,
}

#[derive(Args, Debug)]
pub(crate) struct PushArgs {
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) image: String,
}

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username", value_name = "string")]
    pub(crate) username: Option<String>,
    /// Password
    #[arg(short = 'p', long = "password", value_name = "string")]
    pub(crate) password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub(crate) password_stdin: bool,
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LogoutArgs {
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "string")]
    pub(crate) input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "string")]
    pub(crate) output: Option<String>,
    #[arg(hide = true, value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TagArgs {
    #[arg(hide = true, value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
    #[arg(hide = true, value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(
        short = 'H',
        long = "human",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    #[arg(hide = true, value_name = "IMAGE")]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter", value_parser = parse_filter)]
    pub(crate) filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub(crate) force: bool,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct DfArgs {
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub(crate) verbose: bool,
    #[arg(hide = true)]
    pub(crate) args: Vec<String>,
}

/// `key=value`, as docker's filter flag.
pub(crate) fn parse_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) => Ok((k.trim().to_lowercase(), v.to_owned())),
        None => Err("bad format of filter (expected name=value)".to_owned()),
    }
}

/// Encodes filters as the API wants them: `{"key":{"value":true}}`.
pub(crate) fn filters_json(filters: &[(String, String)]) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let mut map = serde_json::Map::new();
    for (k, v) in filters {
        let entry = map
            .entry(k.clone())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let serde_json::Value::Object(values) = entry {
            values.insert(v.clone(), serde_json::Value::Bool(true));
        }
    }
    Some(serde_json::Value::Object(map).to_string())
}

/// The usage line docker prints for a command path such as "image ls".
pub(crate) fn usage(path: &str) -> String {
    let leaf = path.rsplit(' ').next().unwrap_or(path);
    let suffix = match leaf {
        "ls" | "list" | "ps" if path.starts_with("container") => " [OPTIONS]",
        "images" | "ls" | "list" => " [OPTIONS] [REPOSITORY[:TAG]]",
        "inspect" if path == "inspect" => " [OPTIONS] NAME|ID [NAME|ID...]",
        "inspect" if path == "container inspect" => " [OPTIONS] CONTAINER [CONTAINER...]",
        "rm" | "remove" if !path.starts_with("image") => " [OPTIONS] CONTAINER [CONTAINER...]",
        "inspect" | "rmi" | "rm" | "remove" | "save" => " [OPTIONS] IMAGE [IMAGE...]",
        "tag" => " SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "history" => " [OPTIONS] IMAGE",
        "image" | "system" | "container" => "",
        "run" | "create" => " [OPTIONS] IMAGE [COMMAND] [ARG...]",
        "start" | "stop" | "kill" | "restart" => " [OPTIONS] CONTAINER [CONTAINER...]",
        "wait" | "pause" | "unpause" => " CONTAINER [CONTAINER...]",
        "logs" | "attach" => " [OPTIONS] CONTAINER",
        "rename" => " CONTAINER NEW_NAME",
        "top" => " CONTAINER [ps OPTIONS]",
        "port" => " CONTAINER [PRIVATE_PORT[/PROTO]]",
        "exec" => " [OPTIONS] CONTAINER COMMAND [ARG...]",
        "stats" => " [OPTIONS] [CONTAINER...]",
        "cp" => " [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\testiba cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        "diff" => " CONTAINER",
        "export" => " [OPTIONS] CONTAINER",
        "commit" => " [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        "update" => " [OPTIONS] CONTAINER [CONTAINER...]",
        "" => " [OPTIONS] COMMAND",
        _ => " [OPTIONS]",
    };
    if path.is_empty() {
        format!("estiba{suffix}")
    } else {
        format!("estiba {path}{suffix}")
    }
}

/// How many positional arguments a command takes, with docker's wording when it gets others.
#[derive(Clone, Copy)]
pub(crate) enum Arity {
    None,
    Exactly(usize),
    AtLeast(usize),
    AtMost(usize),
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

/// Checks the positional arguments of `path` ("image ls").
pub(crate) fn check_args(path: &str, args: &[String], arity: Arity) -> Result<(), StatusError> {
    let n = args.len();
    let (ok, what, verb) = match arity {
        Arity::None => (n == 0, "accepts no arguments".to_owned(), "Run"),
        Arity::Exactly(k) => (n == k, format!("requires {k} {}", plural(k)), "Run"),
        Arity::AtLeast(k) => (
            n >= k,
            format!("requires at least {k} {}", plural(k)),
            "See",
        ),
        Arity::AtMost(k) => (n <= k, format!("requires at most {k} {}", plural(k)), "Run"),
    };
    if ok {
        return Ok(());
    }
    Err(StatusError {
        code: 1,
        message: format!(
            "estiba: 'estiba {path}' {what}\n\nUsage:  {}\n\n{verb} 'estiba {path} --help' for more information",
            usage(path)
        ),
    })
}

/// The command path ("image ls") from clap's rendered usage ("Usage: estiba image ls [OPTIONS]").
fn command_path(err: &clap::Error) -> String {
    let usage = match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => return String::new(),
    };
    let mut words = Vec::new();
    let mut started = false;
    for w in usage.split_whitespace() {
        if w == "estiba" {
            started = true;
            continue;
        }
        if !started {
            continue;
        }
        if w.starts_with('[')
            || w.starts_with('<')
            || w.starts_with('-')
            || w.chars().any(|c| c.is_ascii_uppercase())
        {
            break;
        }
        words.push(w);
    }
    words.join(" ")
}

fn invalid_arg(err: &clap::Error) -> Option<String> {
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Prints a parse error the way docker does and returns its exit status.
pub(crate) fn report_parse_error(err: &clap::Error) -> ExitCode {
    let path = command_path(err);
    let help_hint = |verb: &str| {
        if path.is_empty() {
            format!("{verb} 'estiba --help' for more information")
        } else {
            format!("{verb} 'estiba {path} --help' for more information")
        }
    };
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::InvalidSubcommand => {
            let name = match err.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            let full = if path.is_empty() {
                name
            } else {
                format!("{path} {name}")
            };
            if path.is_empty() {
                eprintln!(
                    "estiba: unknown command: estiba {full}\n\n{}",
                    help_hint("Run")
                );
            } else {
                eprintln!(
                    "estiba: unknown command: estiba {full}\n\nUsage:  estiba {path}\n\n{}",
                    help_hint("Run")
                );
            }
            ExitCode::from(1)
        }
        ErrorKind::UnknownArgument => {
            let arg = invalid_arg(err).unwrap_or_default();
            let flag = arg.split('=').next().unwrap_or(&arg).to_owned();
            let msg = if flag.starts_with("--") {
                format!("unknown flag: {flag}")
            } else if let Some(short) = flag.strip_prefix('-') {
                let c = short.chars().next().unwrap_or('-');
                format!("unknown shorthand flag: '{c}' in {flag}")
            } else {
                // A stray word where a subcommand was expected.
                format!("estiba: unknown command: estiba {} {flag}", path)
            };
            eprintln!("{msg}\n\nUsage:  {}\n\n{}", usage(&path), help_hint("Run"));
            ExitCode::from(125)
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_owned();
            eprintln!(
                "{first}\n\nUsage:  {}\n\n{}",
                usage(&path),
                help_hint("Run")
            );
            ExitCode::from(125)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(argv: &[&str]) -> clap::Error {
        match Cli::try_parse_from(argv) {
            Ok(cli) => panic!("{argv:?} parsed: {cli:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn unknown_flags_name_the_command() {
        let cases: &[(&[&str], &str)] = &[
            (&["estiba", "images", "--bogus"], "images"),
            (&["estiba", "image", "prune", "-x"], "image prune"),
            (&["estiba", "system", "df", "--x"], "system df"),
        ];
        for (argv, want) in cases {
            let e = err_of(argv);
            assert_eq!(e.kind(), ErrorKind::UnknownArgument, "{argv:?}");
            assert_eq!(command_path(&e), *want, "{argv:?}");
        }
    }

    #[test]
    fn arity_messages() {
        let two = vec!["a".to_owned(), "b".to_owned()];
        let e = check_args("images", &two, Arity::AtMost(1))
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("estiba: 'estiba images' requires at most 1 argument\n\nUsage:  estiba images [OPTIONS] [REPOSITORY[:TAG]]\n\nRun 'estiba images --help' for more information")
        );
        let e = check_args("image inspect", &[], Arity::AtLeast(1))
            .err()
            .map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("estiba: 'estiba image inspect' requires at least 1 argument\n\nUsage:  estiba image inspect [OPTIONS] IMAGE [IMAGE...]\n\nSee 'estiba image inspect --help' for more information")
        );
        assert!(check_args("tag", &two, Arity::Exactly(2)).is_ok());
        assert!(check_args("info", &two, Arity::None).is_err());
    }

    #[test]
    fn history_human_flag() {
        let parse = |argv: &[&str]| match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::History(h)) => Some(h.human),
            _ => None,
        };
        assert_eq!(parse(&["estiba", "history", "x"]), Some(true));
        assert_eq!(parse(&["estiba", "history", "-H=false", "x"]), Some(false));
        assert_eq!(
            parse(&["estiba", "history", "--human=false", "x"]),
            Some(false)
        );
        assert_eq!(parse(&["estiba", "history", "-H", "x"]), Some(true));
    }

    #[test]
    fn filters_encode_like_docker() {
        let f = vec![
            ("dangling".to_owned(), "true".to_owned()),
            ("label".to_owned(), "a=b".to_owned()),
        ];
        assert_eq!(
            filters_json(&f).as_deref(),
            Some(r#"{"dangling":{"true":true},"label":{"a=b":true}}"#)
        );
        assert_eq!(filters_json(&[]), None);
    }
}
