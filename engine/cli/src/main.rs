//! The `warden` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod detect;
mod rules;

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
    /// JSON-lines input file, or - for standard input.
    #[arg(long, default_value = "-")]
    pub input: String,
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
