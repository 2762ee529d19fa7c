//! The metadata database: one redb file (`<data-root>/metadata.redb`), the source of truth for
//! images, tags, layers and (later) containers, volumes and networks.
//!
//! Every table maps a string key to a JSON value. Services read through a [`ReadTx`] (a
//! consistent snapshot) and change things through one [`WriteTx`] that commits atomically, so an
//! operation that touches several tables (a whole `docker load`) is all-or-nothing. New kinds of
//! objects add a [`Table`] constant and a record type; nothing here has to change.

mod records;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use records::{BlobRef, ImageRecord, LayerRecord, TagRecord};

/// The schema version this build writes; bumped with a migration when a record changes shape.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors of the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open metadata database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// Boxed: redb's error is large and this travels through every `Result`.
    #[error("metadata database: {0}")]
    Db(#[source] Box<redb::Error>),
    #[error("corrupt record {key} in table {table}: {source}")]
    Corrupt {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("encode record {key} for table {table}: {source}")]
    Encode {
        table: &'static str,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("metadata schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
}

impl StoreError {
    /// Whether the error came from the file underneath (e.g. a full disk): redb then refuses
    /// every later transaction ("Previous I/O error occurred") until the file is opened again.
    fn is_io(&self) -> bool {
        matches!(self, StoreError::Db(e) if matches!(**e, redb::Error::Io(_) | redb::Error::PreviousIo))
    }
}

macro_rules! redb_into_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(Box::new(e.into()))
            }
        }
    )*};
}
redb_into_store_error!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A named table: string keys, JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    name: &'static str,
}

impl Table {
    /// A table called `name`; created on first write.
    pub const fn new(name: &'static str) -> Self {
        Table { name }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn def(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name)
    }
}

/// The tables of this schema.
pub mod tables {
    use super::Table;

    /// Schema facts such as `schema_version`.
    pub const META: Table = Table::new("meta");
    /// Image ID ("sha256:<hex>") -> [`crate::ImageRecord`].
    pub const IMAGES: Table = Table::new("images");
    /// Full normalized tag reference ("docker.io/library/busybox:latest") -> [`crate::TagRecord`].
    pub const TAGS: Table = Table::new("tags");
    /// Full digest reference ("docker.io/library/busybox@sha256:...") -> [`crate::TagRecord`].
    pub const DIGESTS: Table = Table::new("repo_digests");
    /// Chain ID ("sha256:<hex>") -> [`crate::LayerRecord`].
    pub const LAYERS: Table = Table::new("layers");

    /// Every table known at this schema version (created at open so reads never miss one).
    pub const ALL: [Table; 5] = [META, IMAGES, TAGS, DIGESTS, LAYERS];
}

/// The open database.
///
/// An I/O error (a full disk, typically) poisons a redb handle for good, so one failed commit
/// would otherwise stop every later operation until the daemon restarts. The handle is
/// therefore replaceable: after such an error the next transaction closes it and opens the file
/// again (redb's recovery brings it back to the last good commit), retrying on each call until
/// that works, e.g. once there is space again.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// `None` only between closing a poisoned handle and a successful reopen.
    db: RwLock<Option<Arc<redb::Database>>>,
    /// Set on an I/O error; shared with write transactions, which see commit failures.
    broken: Arc<AtomicBool>,
}

impl Store {
    /// Opens (or creates) the database file and checks or records its schema version.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let store = Store {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(open_file(path)?))),
            broken: Arc::new(AtomicBool::new(false)),
        };
        let mut tx = store.write()?;
        for table in tables::ALL {
            tx.tx.open_table(table.def())?;
        }
        match tx.get::<u32>(tables::META, "schema_version")? {
            Some(found) if found > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                })
            }
            Some(found) if found == SCHEMA_VERSION => {}
            _ => tx.put(tables::META, "schema_version", &SCHEMA_VERSION)?,
        }
        tx.commit()?;
        Ok(store)
    }

    /// A consistent read-only view.
    pub fn read(&self) -> Result<ReadTx, StoreError> {
        let tx = self
            .database()?
            .begin_read()
            .map_err(|e| self.noted(e.into()))?;
        Ok(ReadTx { tx })
    }

    /// A write transaction; nothing is visible to others until [`WriteTx::commit`].
    /// redb allows one writer at a time: this blocks while another write transaction is open.
    pub fn write(&self) -> Result<WriteTx, StoreError> {
        let tx = self
            .database()?
            .begin_write()
            .map_err(|e| self.noted(e.into()))?;
        Ok(WriteTx {
            tx,
            broken: Arc::clone(&self.broken),
        })
    }

    /// Marks the handle for reopening when `e` is an I/O error.
    fn noted(&self, e: StoreError) -> StoreError {
        if e.is_io() {
            self.broken.store(true, Ordering::Release);
        }
        e
    }

    /// The current handle, reopened first when an I/O error poisoned it.
    fn database(&self) -> Result<Arc<redb::Database>, StoreError> {
        if self.broken.load(Ordering::Acquire) {
            let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
            if self.broken.load(Ordering::Acquire) {
                // redb locks the file: the old handle must be gone before it opens again. A
                // transaction still running on it keeps it open; the next call retries.
                db.take();
                *db = Some(Arc::new(open_file(&self.path)?));
                self.broken.store(false, Ordering::Release);
            }
        }
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        db.clone()
            .ok_or_else(|| StoreError::Db(Box::new(redb::Error::PreviousIo)))
    }
}

fn open_file(path: &Path) -> Result<redb::Database, StoreError> {
    redb::Database::create(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

fn decode<T: DeserializeOwned>(table: Table, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        table: table.name,
        key: key.to_string(),
        source,
    })
}

fn get_in<T, R>(t: &R, table: Table, key: &str) -> Result<Option<T>, StoreError>
where
    T: DeserializeOwned,
    R: ReadableTable<&'static str, &'static [u8]>,
{
    match t.get(key)? {
        Some(v) => Ok(Some(decode(table, key, v.value())?)),
        None => Ok(None),
    }
}

fn scan_in<T, R>(t: &R, table: Table, prefix: &str) -> Result<Vec<(String, T)>, StoreError>
where
    T: DeserializeOwned,
    R: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out = Vec::new();
    for item in t.range(prefix..)? {
        let (k, v) = item?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key.to_string(), decode(table, key, v.value())?));
    }
    Ok(out)
}

/// Reads shared by read and write transactions.
pub trait Reader {
    /// The record under `key`, if any.
    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StoreError>;

    /// Every record whose key starts with `prefix` ("" for all), in key order.
    fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError>;

    fn image(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
        self.get(tables::IMAGES, id)
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(self
            .scan::<ImageRecord>(tables::IMAGES, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// (full tag reference, image ID) pairs.
    fn tags(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .scan::<TagRecord>(tables::TAGS, "")?
            .into_iter()
            .map(|(k, v)| (k, v.image_id))
            .collect())
    }

    /// (full digest reference, image ID) pairs.
    fn repo_digests(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .scan::<TagRecord>(tables::DIGESTS, "")?
            .into_iter()
            .map(|(k, v)| (k, v.image_id))
            .collect())
    }

    fn layer(&self, chain_id: &str) -> Result<Option<LayerRecord>, StoreError> {
        self.get(tables::LAYERS, chain_id)
    }

    fn layers(&self) -> Result<Vec<LayerRecord>, StoreError> {
        Ok(self
            .scan::<LayerRecord>(tables::LAYERS, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }
}

/// A consistent read-only snapshot of the database.
pub struct ReadTx {
    tx: redb::ReadTransaction,
}

impl Reader for ReadTx {
    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StoreError> {
        match self.tx.open_table(table.def()) {
            Ok(t) => get_in(&t, table, key),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        match self.tx.open_table(table.def()) {
            Ok(t) => scan_in(&t, table, prefix),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A write transaction. Dropping it without [`WriteTx::commit`] discards every change.
pub struct WriteTx {
    tx: redb::WriteTransaction,
    broken: Arc<AtomicBool>,
}

impl Reader for WriteTx {
    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StoreError> {
        let t = self.tx.open_table(table.def())?;
        get_in(&t, table, key)
    }

    fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let t = self.tx.open_table(table.def())?;
        scan_in(&t, table, prefix)
    }
}

impl WriteTx {
    /// Inserts or replaces the record under `key`.
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Encode {
            table: table.name,
            key: key.to_string(),
            source,
        })?;
        let mut t = self.tx.open_table(table.def())?;
        t.insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let mut t = self.tx.open_table(table.def())?;
        let existed = t.remove(key)?.is_some();
        Ok(existed)
    }

    pub fn put_image(&mut self, image: &ImageRecord) -> Result<(), StoreError> {
        self.put(tables::IMAGES, &image.id, image)
    }

    pub fn remove_image(&mut self, id: &str) -> Result<bool, StoreError> {
        self.remove(tables::IMAGES, id)
    }

    /// Points the full tag reference at `image_id`; returns the image it pointed at before.
    pub fn put_tag(
        &mut self,
        reference: &str,
        image_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let old: Option<TagRecord> = self.get(tables::TAGS, reference)?;
        self.put(
            tables::TAGS,
            reference,
            &TagRecord {
                image_id: image_id.to_string(),
            },
        )?;
        Ok(old.map(|t| t.image_id))
    }

    pub fn remove_tag(&mut self, reference: &str) -> Result<bool, StoreError> {
        self.remove(tables::TAGS, reference)
    }

    pub fn put_repo_digest(&mut self, reference: &str, image_id: &str) -> Result<(), StoreError> {
        self.put(
            tables::DIGESTS,
            reference,
            &TagRecord {
                image_id: image_id.to_string(),
            },
        )
    }

    pub fn remove_repo_digest(&mut self, reference: &str) -> Result<bool, StoreError> {
        self.remove(tables::DIGESTS, reference)
    }

    pub fn put_layer(&mut self, layer: &LayerRecord) -> Result<(), StoreError> {
        self.put(tables::LAYERS, &layer.chain_id, layer)
    }

    pub fn remove_layer(&mut self, chain_id: &str) -> Result<bool, StoreError> {
        self.remove(tables::LAYERS, chain_id)
    }

    /// Makes every change visible at once, and durable with the next [`WriteTx::commit`]
    /// (no sync of its own): for a state that a durable commit is about to follow anyway, and
    /// whose loss in a crash before that is harmless. The database stays consistent either way.
    pub fn commit_unsynced(mut self) -> Result<(), StoreError> {
        self.tx.set_durability(redb::Durability::None);
        self.commit()
    }

    /// Makes every change durable and visible at once.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().map_err(|e| {
            let e = StoreError::from(e);
            if e.is_io() {
                self.broken.store(true, Ordering::Release);
            }
            e
        })
    }
}

#[cfg(test)]
mod tests;
