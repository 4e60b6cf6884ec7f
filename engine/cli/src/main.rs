//! The `warden` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod detect;
mod evtx;
mod rules;
mod serve;
mod stream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Multi-tenant streaming SIEM ingest and detection engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Sigma rules and threat indicators over JSON lines; print alerts as JSON lines.
    Detect(DetectArgs),
    /// Rule-set tools.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Run the streaming pipeline: Kafka -> tenants -> detection -> Parquet archives.
    Run(stream::RunArgs),
    /// Run everything on embedded defaults: a Kafka broker of its own, a generated
    /// multi-tenant stream, the pipeline into ./data, and a report via SQL.
    Demo(stream::DemoArgs),
    /// Run an in-process Kafka broker (librdkafka's mock cluster) for tests and local work.
    DevBroker(stream::DevBrokerArgs),
    /// Produce a generated multi-tenant event stream to Kafka; prints a JSON summary.
    Gen(stream::GenArgs),
    /// SQL over the archive's `events` and `alerts` tables.
    Query(stream::QueryArgs),
    /// Serve the HTTP API: tenants, keys, policies, ingest, the alert queue, SQL.
    Serve(serve::ServeArgs),
    /// Control-plane administration.
    Admin {
        #[command(subcommand)]
        command: serve::AdminCommand,
    },
}

/// Options shared by everything that compiles rules.
#[derive(Debug, clap::Args)]
pub struct RuleOptions {
    /// Field mapping: a shipped name (windows, ecs) or a mapping file.
    #[arg(long)]
    pub mapping: Option<String>,
    /// YAML file of placeholder values for `|expand` (name: [values]).
    #[arg(long)]
    pub placeholders: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Rule file or directory (read recursively); repeatable.
    #[arg(long = "rules", required = true)]
    pub rules: Vec<PathBuf>,
    /// Indicator file (CSV, plain list, STIX 2.1 bundle, MISP JSON); repeatable.
    #[arg(long = "indicators")]
    pub indicators: Vec<PathBuf>,
    #[command(flatten)]
    pub opts: RuleOptions,
    /// Input file, or - for standard input: JSON lines (UTF-8, with or
    /// without a byte order mark, or UTF-16 as Windows PowerShell 5 writes
    /// it), or a Windows event log (.evtx, recognised by its first bytes;
    /// each record is read in evtx_dump's layout and line N is record N);
    /// either may be gzip- or zstd-compressed.
    #[arg(long, default_value = "-")]
    pub input: String,
    /// Detection threads; 0 means one per core. Default: one per core for
    /// a file, one for standard input (a live stream gets each alert as
    /// soon as its line is read). Output keeps input order whatever the count.
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Compile rules and report what loads and what is rejected, with reasons.
    Check {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Exit non-zero when anything is rejected.
        #[arg(long)]
        strict: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        opts: RuleOptions,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Rules {
            command:
                RulesCommand::Check {
                    paths,
                    strict,
                    format,
                    opts,
                },
        } => rules::check(&paths, strict, format, &opts),
        Command::Run(args) => stream::run_cmd(args),
        Command::Demo(args) => stream::demo(args),
        Command::DevBroker(args) => stream::dev_broker(args),
        Command::Gen(args) => stream::gen_cmd(args),
        Command::Query(args) => stream::query_cmd(args),
        Command::Serve(args) => serve::serve(args),
        Command::Admin { command } => serve::admin(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
