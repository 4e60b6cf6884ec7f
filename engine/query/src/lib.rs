//! Warden's query layer: DataFusion sessions that see only the tenants a
//! caller may see.
//!
//! Each [`Archive::session`] registers the tables `events` and `alerts`
//! over the permitted tenants' own prefixes (`tenants/org_id=<id>/events/`,
//! ...) and nothing else: isolation holds even when a query forgets a
//! filter, because other tenants' files are not part of any table. SQL runs
//! through [`run_sql`], which refuses DDL, DML and other statements
//! (`CREATE EXTERNAL TABLE`, `COPY`, `SET`, ...), never enables URL
//! tables, and runs under a memory pool and a time limit.
//!
//! This crate confines DataFusion's API churn: nothing else in Warden
//! depends on DataFusion.

pub use datafusion;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use warden_archive::layout::{self, Table};
use warden_archive::{TenantId, schema};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A query error: safe to show to the caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement is not a read-only query.
    #[error("refused: {0}")]
    Refused(String),
    /// Planning or execution failed (syntax, unknown column, memory limit, ...).
    #[error("query failed: {0}")]
    Query(String),
    /// The query ran past its time limit.
    #[error("query exceeded its time limit of {0:?}")]
    Timeout(Duration),
    /// The store could not be listed.
    #[error("store: {0}")]
    Store(#[from] object_store::Error),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        let msg = e.to_string();
        if msg.contains("not supported")
            && (msg.contains("DDL") || msg.contains("DML") || msg.contains("Statement"))
        {
            Error::Refused(msg)
        } else {
            Error::Query(msg)
        }
    }
}

/// Limits applied to every session.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory pool of the session, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock limit of one query.
    pub timeout: Duration,
    /// Most rows returned.
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(120),
            max_rows: 1_000_000,
        }
    }
}

/// The URL the archive's object store is registered under in each session.
const ARCHIVE_URL: &str = "warden://archive/";

/// An archive in an object store.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    limits: Limits,
}

/// The hive partition columns below each tenant table.
fn partition_cols() -> Vec<(String, DataType)> {
    vec![
        ("dt".to_string(), DataType::Utf8),
        ("hour".to_string(), DataType::Utf8),
    ]
}

fn with_partition_cols(s: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = s.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        partition_cols()
            .into_iter()
            .map(|(n, t)| Field::new(n, t, false)),
    );
    Arc::new(Schema::new(fields))
}

impl Archive {
    pub fn new(store: Arc<dyn ObjectStore>) -> Archive {
        Archive {
            store,
            limits: Limits::default(),
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Archive {
        self.limits = limits;
        self
    }

    /// Every tenant with data in the store.
    pub async fn tenants(&self) -> Result<Vec<TenantId>> {
        let root = Path::from(layout::TENANTS);
        let listing = self.store.list_with_delimiter(Some(&root)).await?;
        let mut out: Vec<TenantId> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(layout::parse_tenant_dir))
            .collect();
        out.sort();
        Ok(out)
    }

    /// A session over `tenants` only (`None`: every tenant in the store,
    /// plus the `deadletters` table, for operators).
    pub async fn session(&self, tenants: Option<&[TenantId]>) -> Result<SessionContext> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(self.limits.memory_bytes, 1.0)
            .build_arc()?;
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions(2);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let url = url::Url::parse(ARCHIVE_URL).map_err(|e| Error::Query(e.to_string()))?;
        ctx.register_object_store(&url, self.store.clone());
        let all;
        let tenants = match tenants {
            Some(t) => t,
            None => {
                all = self.tenants().await?;
                &all
            }
        };
        for (name, table, schema) in [
            ("events", Table::Events, schema::events()),
            ("alerts", Table::Alerts, schema::alerts()),
        ] {
            let prefixes: Vec<String> = tenants
                .iter()
                .map(|t| format!("{ARCHIVE_URL}{}/", layout::table_prefix(t, table)))
                .collect();
            self.register(&ctx, name, &prefixes, &schema).await?;
        }
        Ok(ctx)
    }

    /// A session for operators: every tenant plus `deadletters`.
    pub async fn operator_session(&self) -> Result<SessionContext> {
        let ctx = self.session(None).await?;
        let prefix = format!("{ARCHIVE_URL}{}/", layout::DEADLETTER);
        self.register(&ctx, "deadletters", &[prefix], &schema::deadletters())
            .await?;
        Ok(ctx)
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        name: &str,
        prefixes: &[String],
        file_schema: &SchemaRef,
    ) -> Result<()> {
        // Only prefixes that hold at least one object: a listing table over
        // a missing directory fails on some stores.
        let mut urls = Vec::new();
        for p in prefixes {
            let rel = Path::from(p.trim_start_matches(ARCHIVE_URL).trim_end_matches('/'));
            let mut list = self.store.list(Some(&rel));
            if list.next().await.transpose()?.is_some() {
                urls.push(ListingTableUrl::parse(p)?);
            }
        }
        if urls.is_empty() {
            let empty = MemTable::try_new(with_partition_cols(file_schema), vec![vec![]])?;
            ctx.register_table(name, Arc::new(empty))?;
            return Ok(());
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(file_schema.clone());
        let table = ListingTable::try_new(config)?;
        ctx.register_table(name, Arc::new(table))?;
        Ok(())
    }

    /// Runs one read-only statement in `ctx` under the archive's limits.
    pub async fn run_sql(&self, ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let opts = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let limits = self.limits.clone();
        let work = async {
            let df = ctx.sql_with_options(sql, opts).await?;
            let df = df.limit(0, Some(limits.max_rows))?;
            Ok::<_, Error>(df.collect().await?)
        };
        match tokio::time::timeout(limits.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(limits.timeout)),
        }
    }
}

/// Output formats of `warden query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    /// A JSON array of row objects.
    Json,
}

/// Renders batches in `format`.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    let err = |e: arrow::error::ArrowError| Error::Query(e.to_string());
    match format {
        Format::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)
            .map_err(err)?
            .to_string()
            + "\n"),
        Format::Csv => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
            }
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        Format::Json => {
            let mut buf = Vec::new();
            {
                let mut w = arrow::json::ArrayWriter::new(&mut buf);
                for b in batches {
                    w.write(b).map_err(err)?;
                }
                w.finish().map_err(err)?;
            }
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            buf.push(b'\n');
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}
