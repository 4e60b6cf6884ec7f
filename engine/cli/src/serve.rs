//! `warden serve` (the HTTP API) and `warden admin` (control-plane set-up).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use warden_api::{App, Limits, Sink};
use warden_archive::TenantId;
use warden_control::ControlPlane;
use warden_query::Archive;

use crate::stream::{LogFormat, init_tracing};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Object store URL (the archive and its `_control/` log).
    #[arg(long, default_value = "file://./data")]
    pub store: String,
    /// Kafka bootstrap servers for `POST /v1/ingest` (without: ingest answers 503).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topic that `POST /v1/ingest` produces to (the one the pipeline reads).
    #[arg(long, default_value = "events")]
    pub topic: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Largest ingest body, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_tracing(LogFormat::Text);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = warden_archive::store::open(&args.store)?;
        let control = Arc::new(ControlPlane::open(store.clone()).await?);
        if control.state().root.is_none() {
            anyhow::bail!(
                "store {} has no control plane yet: run `warden admin bootstrap --store {}` first",
                args.store,
                args.store
            );
        }
        let _watch = control.watch(warden_api::CONTROL_REFRESH);
        let sink = match &args.brokers {
            Some(b) => Some(Sink {
                producer: ClientConfig::new()
                    .set("bootstrap.servers", b)
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5")
                    .create::<FutureProducer>()
                    .context("kafka producer")?,
                topic: args.topic.clone(),
            }),
            None => None,
        };
        let app = Arc::new(App {
            control,
            archive: Archive::new(store.clone()),
            store,
            sink,
            limits: Limits {
                max_body_bytes: args.max_body_bytes,
                ..Limits::default()
            },
            usage: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, store = %args.store, "serving the Warden API");
        println!("listening on http://{addr}");
        warden_api::serve(listener, app).await?;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create the root tenant and print its first owner key (shown once).
    Bootstrap {
        #[arg(long, default_value = "file://./data")]
        store: String,
        /// Id of the root tenant (the MSP).
        #[arg(long, default_value = "msp")]
        root: String,
        /// Display name of the root tenant.
        #[arg(long, default_value = "MSP")]
        name: String,
    },
}

pub fn admin(cmd: AdminCommand) -> Result<ExitCode> {
    match cmd {
        AdminCommand::Bootstrap { store, root, name } => {
            let root = TenantId::new(&root)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let key = rt.block_on(async {
                let s = warden_archive::store::open(&store)?;
                let cp = ControlPlane::open(s).await?;
                let (_, key) = warden_control::bootstrap(&cp, &root, &name).await?;
                anyhow::Ok(key)
            })?;
            eprintln!("root tenant {root} created; its owner key (shown once, store it now):");
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
