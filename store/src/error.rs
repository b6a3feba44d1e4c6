//! Store errors.

/// Everything that can go wrong opening, writing or reading the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database engine or the disk failed (full disk, I/O error, locked file, ...).
    #[error("storage failure while {context}: {source}")]
    Db {
        /// What the store was doing: which table, which height or key.
        context: String,
        /// The engine's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The database was written by a different schema version.
    #[error(
        "schema version mismatch: the database has version {found}, this build reads version \
         {expected}; it was written by another release of shoji-node: run that release, or start \
         this one on an empty data directory (a validator then fetches the chain from its peers)"
    )]
    SchemaVersion {
        /// Version found in the database.
        found: u32,
        /// Version this build reads and writes.
        expected: u32,
    },
    /// The database holds tables but no schema version: it is not a store of this kind.
    #[error("the database has tables but no schema version; it was not created by this store")]
    MissingSchemaVersion,
    /// A stored value could not be decoded.
    #[error("corrupt value in table `{table}` at {key}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// The key, in words.
        key: String,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// Stored values decode but disagree with each other.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// The caller handed the store something that cannot be stored as given.
    #[error("refused to store: {0}")]
    InvalidInput(String),
    /// The database belongs to a network with another genesis.
    #[error("the database was created for another genesis (stored genesis hash {stored}, this genesis {expected}): point the validator at its own data directory, or at the genesis it was created with")]
    GenesisMismatch {
        /// Genesis hash recorded in the database, hex.
        stored: String,
        /// Genesis hash the node was started with, hex.
        expected: String,
    },
    /// A file the store wrote beside the database (a snapshot chunk) could not be written.
    #[error("I/O failure while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The heights asked for are below the snapshot this store started from.
    #[error("this validator keeps blocks from height {first} on (it started from a state snapshot): ask a validator that keeps older blocks")]
    NotKept {
        /// The first height kept.
        first: u64,
    },
    /// The ledger refused the recovered snapshot.
    #[error("the ledger refused the recovered snapshot: {0}")]
    Restore(String),
}

/// Attaches context to an engine error.
pub(crate) trait Ctx<T> {
    /// Maps the error to [`StoreError::Db`] with `context`.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> Ctx<T> for Result<T, E> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Db {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}
