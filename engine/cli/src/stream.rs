//! `warden run`, `warden dev-broker`, `warden gen`, `warden query` and `warden demo`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use warden_archive::TenantId;
use warden_gen::{StreamSpec, tenant_id, tenant_kind};
use warden_ingest::broker::DevBroker;
use warden_ingest::config::{Config, TenantConfig, load_tenants};
use warden_ingest::pipeline::{RunOptions, Summary, Tenancy, run};
use warden_ingest::tenants::Tenants;
use warden_query::{Archive, Format};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML; see deploy/config/warden.example.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers (overrides kafka.brokers).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic to consume; repeatable (overrides kafka.topics).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Consumer group (overrides kafka.group).
    #[arg(long)]
    pub group: Option<String>,
    /// Object store URL (overrides store.url).
    #[arg(long)]
    pub store: Option<String>,
    /// Tenants file: `[[tenant]]` tables (replaces the config's tenants).
    /// Without tenants in a file or the config, they come from the control
    /// plane in the store (`warden admin bootstrap`, `warden serve`).
    #[arg(long)]
    pub tenants: Option<PathBuf>,
    /// Directory of the rule packs named by control-plane policies
    /// (overrides control.packs; default rules/packs).
    #[arg(long)]
    pub packs: Option<PathBuf>,
    /// Address for /metrics, /healthz, /readyz (overrides http.listen; "" disables).
    #[arg(long)]
    pub listen: Option<String>,
    /// Exit cleanly once every assigned partition has been at its end this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub until_idle: Option<f64>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

pub fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    init_tracing(args.log_format);
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(b) = args.brokers {
        cfg.kafka.brokers = b;
    }
    if !args.topics.is_empty() {
        cfg.kafka.topics = args.topics;
    }
    if let Some(g) = args.group {
        cfg.kafka.group = g;
    }
    if let Some(s) = args.store {
        cfg.store.url = s;
    }
    if let Some(l) = args.listen {
        cfg.http.listen = l;
    }
    if let Some(t) = &args.tenants {
        cfg.tenants = load_tenants(t)?;
    }
    if let Some(p) = args.packs {
        cfg.control.packs = Some(p);
    }
    cfg.validate()?;
    let tenancy = if cfg.tenants.is_empty() {
        let packs = cfg.control.packs_dir();
        if !packs.is_dir() {
            bail!(
                "control.packs {}: not a directory (pass --packs DIR, or run from the repository root)",
                packs.display()
            );
        }
        tracing::info!(packs = %packs.display(), "no static tenants: taking tenants and policies from the control plane");
        Tenancy::Control {
            packs,
            every: Duration::from_secs_f64(cfg.control.refresh_secs),
        }
    } else {
        Tenancy::Static(Tenants::build(&cfg.tenants)?)
    };
    let opts = RunOptions {
        until_idle: args.until_idle.map(Duration::from_secs_f64),
        shutdown: Arc::new(AtomicBool::new(false)),
    };
    let summary = run(cfg, tenancy, opts)?;
    eprintln!("warden: {}", serde_json::to_string(&summary)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct DevBrokerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Topic to create; repeatable.
    #[arg(long = "topic", default_value = "warden-events")]
    pub topics: Vec<String>,
    /// Partitions per topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

pub fn dev_broker(args: DevBrokerArgs) -> Result<ExitCode> {
    init_tracing(LogFormat::Text);
    let rt = runtime()?;
    let broker = DevBroker::start(Some(args.listen), rt.handle())?;
    for t in &args.topics {
        warden_archive::Topic::new(t)?;
        broker.create_topic(t, args.partitions)?;
    }
    println!("{}", broker.bootstrap_servers());
    std::io::stdout().flush()?;
    eprintln!(
        "warden: dev broker on {} with topics {:?} ({} partitions each); Ctrl-C stops it",
        broker.bootstrap_servers(),
        args.topics,
        args.partitions
    );
    rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(broker);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct GenArgs {
    #[arg(long)]
    pub brokers: String,
    #[arg(long)]
    pub topic: String,
    /// Number of tenants (tenant-000, tenant-001, ...; skewed mix).
    #[arg(long, default_value_t = 8)]
    pub tenants: usize,
    /// Number of events.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Events per second (default: as fast as the broker takes them).
    #[arg(long)]
    pub rate: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Planted attacks per 10,000 events.
    #[arg(long, default_value_t = 20)]
    pub attacks_per_10k: u32,
    /// A librdkafka producer property, as KEY=VALUE (repeatable):
    /// security.protocol, sasl.*, ssl.*, linger.ms, compression.type, ...
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub property: Vec<(String, String)>,
}

fn parse_property(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub fn gen_cmd(args: GenArgs) -> Result<ExitCode> {
    init_tracing(LogFormat::Text);
    let spec = StreamSpec {
        tenants: args.tenants,
        seed: args.seed,
        start_ms: chrono::Utc::now().timestamp_millis(),
        attacks_per_10k: args.attacks_per_10k,
        ..StreamSpec::default()
    };
    let out = warden_ingest::produce::produce(
        &args.brokers,
        &args.topic,
        spec,
        args.events,
        args.rate,
        &args.property,
    )?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Object store URL.
    #[arg(long, default_value = "file://./data")]
    pub store: String,
    /// Only this tenant's data; repeatable. Without it: every tenant, plus `deadletters`.
    #[arg(long = "tenant")]
    pub tenants: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: QueryFormat,
    /// SQL over `events` and `alerts` (hive-partitioned: org_id, dt, hour).
    pub sql: String,
}

pub fn query_cmd(args: QueryArgs) -> Result<ExitCode> {
    let tenants = args
        .tenants
        .iter()
        .map(|t| TenantId::new(t))
        .collect::<Result<Vec<_>, _>>()?;
    let store = warden_archive::store::open(&args.store)?;
    let archive = Archive::new(store);
    let rt = runtime()?;
    let out = rt.block_on(async {
        let ctx = if tenants.is_empty() {
            archive.operator_session().await?
        } else {
            archive.session(Some(&tenants)).await?
        };
        let batches = archive.run_sql(&ctx, &args.sql).await?;
        let format = match args.format {
            QueryFormat::Table => Format::Table,
            QueryFormat::Csv => Format::Csv,
            QueryFormat::Json => Format::Json,
        };
        warden_query::render(&batches, format)
    })?;
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo writes its archive (a directory it owns).
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 60_000)]
    pub events: u64,
    #[arg(long, default_value_t = 12)]
    pub tenants: usize,
    #[arg(long, default_value_t = 12)]
    pub partitions: i32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The starter pack and demo indicators, built in so the demo runs anywhere.
const STARTER: &[(&str, &str)] = &[
    (
        "dns_query_tunnel_services.yml",
        include_str!("../../../rules/packs/warden-starter/dns_query_tunnel_services.yml"),
    ),
    (
        "proc_creation_credential_dumping.yml",
        include_str!("../../../rules/packs/warden-starter/proc_creation_credential_dumping.yml"),
    ),
    (
        "proc_creation_encoded_powershell.yml",
        include_str!("../../../rules/packs/warden-starter/proc_creation_encoded_powershell.yml"),
    ),
    (
        "proc_creation_office_child_shell.yml",
        include_str!("../../../rules/packs/warden-starter/proc_creation_office_child_shell.yml"),
    ),
    (
        "registry_run_key_user_writable.yml",
        include_str!("../../../rules/packs/warden-starter/registry_run_key_user_writable.yml"),
    ),
    (
        "security_logon_failed_explicit_admin.yml",
        include_str!(
            "../../../rules/packs/warden-starter/security_logon_failed_explicit_admin.yml"
        ),
    ),
    (
        "proc_creation_lnx_reverse_shell.yml",
        include_str!("../../../rules/packs/warden-starter/proc_creation_lnx_reverse_shell.yml"),
    ),
    (
        "proc_creation_lnx_curl_pipe_shell.yml",
        include_str!("../../../rules/packs/warden-starter/proc_creation_lnx_curl_pipe_shell.yml"),
    ),
];
const DEMO_INDICATORS: &str = include_str!("../../../rules/indicators/demo.csv");
const DEMO_MARKER: &str = ".warden-demo";

/// Writes the built-in starter pack and indicators under `dir`.
pub fn write_starter(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules)?;
    for (name, text) in STARTER {
        std::fs::write(rules.join(name), text)?;
    }
    let ind = dir.join("demo-indicators.csv");
    std::fs::write(&ind, DEMO_INDICATORS)?;
    Ok((rules, ind))
}

/// The demo's tenants: generated ids, each with the mapping its events need.
pub fn demo_tenants(n: usize, rules: &Path, indicators: &Path) -> Vec<TenantConfig> {
    (0..n)
        .map(|i| TenantConfig {
            id: tenant_id(i),
            rules: vec![rules.to_path_buf()],
            indicators: vec![indicators.to_path_buf()],
            mapping: Some(tenant_kind(i).mapping().to_owned()),
            placeholders: None,
        })
        .collect()
}

pub fn demo(args: DemoArgs) -> Result<ExitCode> {
    init_tracing(LogFormat::Text);
    let dir = &args.dir;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        if !dir.join(DEMO_MARKER).exists() {
            bail!(
                "{} holds data that is not from a demo; choose another --dir",
                dir.display()
            );
        }
        for sub in ["tenants", "_deadletter", "_state", "_demo"] {
            let p = dir.join(sub);
            if p.exists() {
                std::fs::remove_dir_all(&p).with_context(|| p.display().to_string())?;
            }
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        "written by `warden demo`; it clears this directory when run again\n",
    )?;
    let (rules, ind) = write_starter(&dir.join("_demo"))?;
    let rt = runtime()?;
    let broker = DevBroker::start(None, rt.handle())?;
    let topic = "warden-events";
    broker.create_topic(topic, args.partitions)?;
    eprintln!(
        "warden demo: in-process Kafka broker at {}, topic {topic} ({} partitions)",
        broker.bootstrap_servers(),
        args.partitions
    );
    let spec = StreamSpec {
        tenants: args.tenants,
        seed: args.seed,
        start_ms: chrono::Utc::now().timestamp_millis(),
        ..StreamSpec::default()
    };
    // Spread over the partitions rather than by tenant key (the tenant is
    // still the key): the in-process broker keeps only ~5 MiB per partition,
    // and the busiest tenant alone would overflow one.
    let produced = warden_ingest::produce::produce(
        broker.bootstrap_servers(),
        topic,
        spec,
        args.events,
        None,
        &[("partitioner".into(), "random".into())],
    )?;
    eprintln!(
        "warden demo: produced {} events for {} tenants",
        produced.events,
        produced.per_tenant.len()
    );
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap_servers().to_owned();
    cfg.kafka.topics = vec![topic.to_owned()];
    cfg.kafka.group = "warden-demo".into();
    cfg.kafka.session_timeout_ms = 6000;
    cfg.store.url = dir.display().to_string();
    cfg.http.listen = String::new();
    cfg.tenants = demo_tenants(args.tenants, &rules, &ind);
    let tenants = Tenants::build(&cfg.tenants)?;
    let started = std::time::Instant::now();
    let summary: Summary = run(
        cfg,
        tenants,
        RunOptions {
            until_idle: Some(Duration::from_secs(1)),
            shutdown: Arc::new(AtomicBool::new(false)),
        },
    )?;
    eprintln!(
        "warden demo: archived {} events, {} alerts, {} dead letters in {} segments ({} files) in {:.1}s",
        summary.events,
        summary.alerts,
        summary.deadletters,
        summary.segments,
        summary.files,
        started.elapsed().as_secs_f64()
    );
    drop(broker);
    if summary.records < produced.events {
        bail!(
            "{} of {} events never reached the pipeline: the in-process broker keeps only \
             ~5 MiB per partition and dropped the oldest; run with fewer --events or more --partitions",
            produced.events - summary.records,
            produced.events
        );
    }
    let archive = Archive::new(warden_archive::store::open(&dir.display().to_string())?);
    let report = rt.block_on(async {
        let ctx = archive.operator_session().await?;
        let per_tenant = archive
            .run_sql(
                &ctx,
                "SELECT e.org_id AS tenant, e.events, coalesce(a.alerts, 0) AS alerts \
                 FROM (SELECT org_id, count(*) AS events FROM events GROUP BY org_id) e \
                 LEFT JOIN (SELECT org_id, count(*) AS alerts FROM alerts GROUP BY org_id) a \
                 ON e.org_id = a.org_id ORDER BY e.events DESC",
            )
            .await?;
        let top = archive
            .run_sql(
                &ctx,
                "SELECT rule_title, level, count(*) AS alerts, count(DISTINCT org_id) AS tenants \
                 FROM alerts GROUP BY rule_title, level \
                 ORDER BY CASE level WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, alerts DESC \
                 LIMIT 10",
            )
            .await?;
        Ok::<_, warden_query::Error>((
            warden_query::render(&per_tenant, Format::Table)?,
            warden_query::render(&top, Format::Table)?,
        ))
    })?;
    println!(
        "Events and alerts per tenant (archived under {}):",
        dir.display()
    );
    print!("{}", report.0);
    println!("Top alerts:");
    print!("{}", report.1);
    let planted: BTreeMap<&str, u64> = produced.planted.values().flat_map(|m| m.iter()).fold(
        BTreeMap::new(),
        |mut acc, (k, v)| {
            *acc.entry(k.as_str()).or_default() += v;
            acc
        },
    );
    println!(
        "Planted attacks: {} (expected detections by rule: {planted:?})",
        planted.values().sum::<u64>()
    );
    println!(
        "Explore: warden query --store {} \"SELECT org_id, rule_title, count(*) FROM alerts GROUP BY 1, 2 ORDER BY 3 DESC\"",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
