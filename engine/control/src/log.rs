//! The log in the object store, and the in-memory state folded from it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use warden_archive::layout;

use crate::model::{Entry, Op, now_ms};
use crate::state::State;
use crate::{Error, Result};

/// How many times a commit re-reads and retries after losing a race.
const MAX_RACES: usize = 32;

/// A control plane bound to one object store.
#[derive(Debug)]
pub struct ControlPlane {
    store: Arc<dyn ObjectStore>,
    inner: RwLock<Inner>,
    /// Serialises this process's own commits (other processes race through
    /// create-if-absent).
    write: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Arc<State>,
    log: Vec<Arc<Entry>>,
}

impl ControlPlane {
    /// Reads the whole log.
    pub async fn open(store: Arc<dyn ObjectStore>) -> Result<ControlPlane> {
        let cp = ControlPlane {
            store,
            inner: RwLock::new(Inner::default()),
            write: tokio::sync::Mutex::new(()),
        };
        cp.refresh().await?;
        Ok(cp)
    }

    /// The current state (cheap: shared).
    pub fn state(&self) -> Arc<State> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .clone()
    }

    /// Every entry so far, oldest first.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .log
            .clone()
    }

    /// Applies entries written since the last read (by anyone). Returns
    /// whether the state changed.
    pub async fn refresh(&self) -> Result<bool> {
        let from = self.state().version;
        let prefix = object_store::path::Path::from(layout::CONTROL_LOG);
        let offset = layout::control_entry(from);
        let mut found: Vec<(u64, object_store::path::Path)> = self
            .store
            .list_with_offset(Some(&prefix), &offset)
            .map_ok(|m| m.location)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .filter_map(|p| layout::parse_control_version(&p).map(|v| (v, p)))
            .filter(|(v, _)| *v > from)
            .collect();
        found.sort();
        let mut changed = false;
        for (v, path) in found {
            let inner_version = self.state().version;
            if v != inner_version + 1 {
                // A gap: the next entry is not visible yet; read on later.
                break;
            }
            let bytes = self.store.get(&path).await?.bytes().await?;
            let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: path.to_string(),
                message: e.to_string(),
            })?;
            if entry.version != v {
                return Err(Error::Corrupt {
                    path: path.to_string(),
                    message: format!("holds version {} under name {v}", entry.version),
                });
            }
            self.install(entry);
            changed = true;
        }
        Ok(changed)
    }

    fn install(&self, entry: Entry) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let next = inner.state.applied(&entry).unwrap_or_else(|e| {
            // Validated before it was written, so only a hand-edited or
            // racing-and-buggy writer gets here: every reader skips it alike.
            tracing::warn!(version = entry.version, "control entry skipped: {e}");
            State {
                version: entry.version,
                ..(*inner.state).clone()
            }
        });
        inner.state = Arc::new(next);
        inner.log.push(Arc::new(entry));
    }

    /// Appends `op` as the next version, made by `actor` with `key_id`.
    /// Refused changes return [`Error::Refused`] and write nothing.
    pub async fn commit(&self, actor: &str, key_id: Option<&str>, op: Op) -> Result<Arc<Entry>> {
        let _w = self.write.lock().await;
        for _ in 0..MAX_RACES {
            self.refresh().await?;
            let state = self.state();
            state.check(&op, actor)?;
            let entry = Entry {
                version: state.version + 1,
                at_ms: now_ms(),
                actor: actor.to_owned(),
                key_id: key_id.map(str::to_owned),
                op: op.clone(),
            };
            let body =
                serde_json::to_vec_pretty(&entry).map_err(|e| Error::Other(e.to_string()))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(
                    &layout::control_entry(entry.version),
                    PutPayload::from(body),
                    opts,
                )
                .await
            {
                Ok(_) => {
                    self.install(entry);
                    let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
                    return inner
                        .log
                        .last()
                        .cloned()
                        .ok_or_else(|| Error::Other("entry vanished".into()));
                }
                Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Other(format!(
            "lost the race for the next version {MAX_RACES} times"
        )))
    }

    /// Re-reads the log every `every`, sending each new state.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::sync::watch::Receiver<Arc<State>> {
        let (tx, rx) = tokio::sync::watch::channel(self.state());
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match me.refresh().await {
                    Ok(true) => {
                        if tx.send(me.state()).is_err() {
                            return;
                        }
                    }
                    Ok(false) => {
                        if tx.is_closed() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("control plane refresh: {e}"),
                }
            }
        });
        rx
    }
}
