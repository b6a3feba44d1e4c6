//! The auditor's decrypted records in a database: embedded SQLite by default (no setup), or the
//! PostgreSQL server a compliance department already runs (`postgres://…`).
//!
//! A scan appends; nothing is rewritten. Reports are queries over indexes on height, time,
//! participant (sender and each receiver) and asset. The database holds only what the auditor
//! decrypted from records designated to its key, and is bound to that key: opening it with
//! another key is refused. Reading one record back for `show` or a disclosure decrypts it again
//! and compares, so a row edited in the database is caught where it would be believed.

use crate::{AccountRecord, AuditEntry, Recorded};
use shoji_primitives::audit::{AuditPlaintext, AuditPublicKey, AuditRecord};
use shoji_primitives::encoding::{fr_from_bytes, fr_to_bytes, hex_encode, Reader};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{TxId, TxKind};

/// Version of the tables' layout, kept in `meta` (2: account records).
pub const SCHEMA_VERSION: i64 = 2;

/// Why the records could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The database holds another key's records.
    #[error("the database holds the records of auditor key {found}, not of this key ({ours}): give this key's database with --database")]
    OtherKey {
        /// The key the database is bound to (hex).
        found: String,
        /// This key (hex).
        ours: String,
    },
    /// A layout this build does not know.
    #[error("the database's schema version is {found}; this build reads version {SCHEMA_VERSION}: use the matching shoji-auditor, or scan again into a new database")]
    Schema {
        /// The version found.
        found: String,
    },
    /// A row that is not what this build wrote, or that its record contradicts.
    #[error("the database is damaged: {0}")]
    Corrupt(String),
    /// Records would cross the network unencrypted.
    #[error("{0} is not on this machine and the URL does not ask for TLS: add `sslmode=require` (the server's certificate is verified against the system's roots, or --database-ca), or `sslmode=disable` to send the records in the clear")]
    Unencrypted(String),
    /// TLS could not be set up (a CA file that cannot be read, no roots).
    #[error("TLS to the database: {0}")]
    Tls(String),
    /// The database file could not be created.
    #[error("creating {path}: {source}")]
    Create {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

/// An open records database.
pub struct Records {
    db: Backend,
}

/// What a report asks for: heights `from..=to`, optionally a time window `[since, until)`
/// (Unix ms), a participant (owner tag, as sender or receiver) and an asset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// First height.
    pub from: u64,
    /// Last height.
    pub to: u64,
    /// Blocks at or after this time.
    pub since_ms: Option<u64>,
    /// Blocks before this time.
    pub until_ms: Option<u64>,
    /// Entries this owner tag sent or received.
    pub participant: Option<[u8; 32]>,
    /// Entries of this asset.
    pub asset: Option<AssetId>,
}

/// The tables and indexes, with each database's type names for `{BLOB}`, `{INT}` and
/// `{SMALL}` ([`schema`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    txid {BLOB} PRIMARY KEY,
    height {INT} NOT NULL,
    time_ms {INT} NOT NULL,
    kind {SMALL} NOT NULL,
    public_value {INT} NOT NULL,
    asset {INT} NOT NULL,
    sender {BLOB} NOT NULL,
    receiver0 {BLOB} NOT NULL,
    value0 {INT} NOT NULL,
    receiver1 {BLOB} NOT NULL,
    value1 {INT} NOT NULL,
    record {BLOB} NOT NULL
);
CREATE INDEX IF NOT EXISTS records_height ON records (height);
CREATE INDEX IF NOT EXISTS records_time ON records (time_ms);
CREATE INDEX IF NOT EXISTS records_sender ON records (sender, height);
CREATE INDEX IF NOT EXISTS records_receiver0 ON records (receiver0, height);
CREATE INDEX IF NOT EXISTS records_receiver1 ON records (receiver1, height);
CREATE INDEX IF NOT EXISTS records_asset ON records (asset, height);
CREATE TABLE IF NOT EXISTS account_records (
    txid {BLOB} PRIMARY KEY,
    height {INT} NOT NULL,
    time_ms {INT} NOT NULL,
    kind {SMALL} NOT NULL,
    asset {INT} NOT NULL,
    sender {BLOB} NOT NULL,
    receiver {BLOB} NOT NULL,
    amount {INT} NOT NULL
);
CREATE INDEX IF NOT EXISTS account_records_height ON account_records (height);
CREATE INDEX IF NOT EXISTS account_records_sender ON account_records (sender, height);
CREATE INDEX IF NOT EXISTS account_records_receiver ON account_records (receiver, height);
";

const ACCOUNT_COLUMNS: &str = "txid, height, time_ms, kind, asset, sender, receiver, amount";

/// [`SCHEMA`] for SQLite (`postgres: false`) or PostgreSQL.
fn schema(postgres: bool) -> String {
    let (blob, int, small) = match postgres {
        true => ("BYTEA", "BIGINT", "SMALLINT"),
        false => ("BLOB", "INTEGER", "INTEGER"),
    };
    SCHEMA
        .replace("{BLOB}", blob)
        .replace("{INT}", int)
        .replace("{SMALL}", small)
}

const COLUMNS: &str = "txid, height, time_ms, kind, public_value, asset, sender, receiver0, value0, receiver1, value1, record";

/// [`COLUMNS`] with an empty record: reports read everything but the record.
const REPORT_COLUMNS_SQLITE: &str = "txid, height, time_ms, kind, public_value, asset, sender, receiver0, value0, receiver1, value1, X''";
const REPORT_COLUMNS_POSTGRES: &str = "txid, height, time_ms, kind, public_value, asset, sender, receiver0, value0, receiver1, value1, ''::bytea";

/// u64 values (amounts, heights, times) are stored as the i64 with the same bits: both
/// databases' integers are signed 64-bit, and an amount may use the whole u64 range.
fn to_i64(v: u64) -> i64 {
    v as i64
}

fn to_u64(v: i64) -> u64 {
    v as u64
}

/// One row, as read from either database.
struct Row {
    txid: Vec<u8>,
    height: i64,
    time_ms: i64,
    kind: i64,
    public_value: i64,
    asset: i64,
    sender: Vec<u8>,
    receivers: [Vec<u8>; 2],
    values: [i64; 2],
    /// Empty when the query left the record out.
    record: Vec<u8>,
}

impl Row {
    fn recorded(&self) -> Result<Recorded, RecordsError> {
        let corrupt = |what: &str| RecordsError::Corrupt(format!("a record's {what}"));
        let fr = |b: &[u8], what: &'static str| -> Result<_, RecordsError> {
            let a: [u8; 32] = b.try_into().map_err(|_| corrupt(what))?;
            fr_from_bytes(what, &a).map_err(|_| corrupt(what))
        };
        Ok(Recorded {
            txid: TxId(self.txid.as_slice().try_into().map_err(|_| corrupt("id"))?),
            height: to_u64(self.height),
            time_ms: to_u64(self.time_ms),
            kind: u8::try_from(self.kind)
                .ok()
                .and_then(|k| TxKind::from_u8(k).ok())
                .ok_or_else(|| corrupt("kind"))?,
            public_value: Amount(to_u64(self.public_value)),
            plaintext: AuditPlaintext {
                sender: fr(&self.sender, "sender")?,
                receivers: [
                    fr(&self.receivers[0], "receiver")?,
                    fr(&self.receivers[1], "receiver")?,
                ],
                values: [
                    Amount(to_u64(self.values[0])),
                    Amount(to_u64(self.values[1])),
                ],
                asset: AssetId(to_u64(self.asset)),
            },
        })
    }

    fn entry(self) -> Result<AuditEntry, RecordsError> {
        let r = self.recorded()?;
        let mut reader = Reader::new("audit record", &self.record);
        let corrupt = || RecordsError::Corrupt("a record's audit record".into());
        let record = AuditRecord::read(&mut reader).map_err(|_| corrupt())?;
        reader.finish().map_err(|_| corrupt())?;
        Ok(AuditEntry {
            txid: r.txid,
            height: r.height,
            time_ms: r.time_ms,
            kind: r.kind,
            public_value: r.public_value,
            plaintext: r.plaintext,
            record,
        })
    }
}

/// One account record as stored: an issuer's side is an empty key.
struct AccountRow {
    txid: Vec<u8>,
    height: i64,
    time_ms: i64,
    kind: i64,
    asset: i64,
    sender: Vec<u8>,
    receiver: Vec<u8>,
    amount: i64,
}

impl AccountRow {
    fn record(self) -> Result<AccountRecord, RecordsError> {
        let corrupt = |what: &str| RecordsError::Corrupt(format!("an account record's {what}"));
        let key = |b: Vec<u8>, what: &str| match b.len() {
            0 => Ok(None),
            _ => <[u8; 32]>::try_from(b).map(Some).map_err(|_| corrupt(what)),
        };
        Ok(AccountRecord {
            txid: TxId(self.txid.try_into().map_err(|_| corrupt("id"))?),
            height: to_u64(self.height),
            time_ms: to_u64(self.time_ms),
            kind: u8::try_from(self.kind).map_err(|_| corrupt("kind"))?,
            asset: AssetId(to_u64(self.asset)),
            from: key(self.sender, "sender")?,
            to: key(self.receiver, "receiver")?,
            amount: Amount(to_u64(self.amount)),
        })
    }
}

fn sqlite_account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        txid: r.get(0)?,
        height: r.get(1)?,
        time_ms: r.get(2)?,
        kind: r.get(3)?,
        asset: r.get(4)?,
        sender: r.get(5)?,
        receiver: r.get(6)?,
        amount: r.get(7)?,
    })
}

fn postgres_account_row(r: &postgres::Row) -> Result<AccountRow, postgres::Error> {
    Ok(AccountRow {
        txid: r.try_get(0)?,
        height: r.try_get(1)?,
        time_ms: r.try_get(2)?,
        kind: i64::from(r.try_get::<_, i16>(3)?),
        asset: r.try_get(4)?,
        sender: r.try_get(5)?,
        receiver: r.try_get(6)?,
        amount: r.try_get(7)?,
    })
}

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        txid: r.get(0)?,
        height: r.get(1)?,
        time_ms: r.get(2)?,
        kind: r.get(3)?,
        public_value: r.get(4)?,
        asset: r.get(5)?,
        sender: r.get(6)?,
        receivers: [r.get(7)?, r.get(9)?],
        values: [r.get(8)?, r.get(10)?],
        record: r.get(11)?,
    })
}

fn postgres_row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    Ok(Row {
        txid: r.try_get(0)?,
        height: r.try_get(1)?,
        time_ms: r.try_get(2)?,
        kind: i64::from(r.try_get::<_, i16>(3)?),
        public_value: r.try_get(4)?,
        asset: r.try_get(5)?,
        sender: r.try_get(6)?,
        receivers: [r.try_get(7)?, r.try_get(9)?],
        values: [r.try_get(8)?, r.try_get(10)?],
        record: r.try_get(11)?,
    })
}

/// The WHERE clause of `q`, with placeholders written by `p(n)`, and its parameters.
fn filter(q: &Query, p: impl Fn(usize) -> String) -> (String, Vec<Param>) {
    let mut clause = format!("height >= {} AND height <= {}", p(1), p(2));
    let mut params = vec![Param::Int(to_i64(q.from)), Param::Int(to_i64(q.to))];
    if let Some(t) = q.since_ms {
        params.push(Param::Int(to_i64(t)));
        clause.push_str(&format!(" AND time_ms >= {}", p(params.len())));
    }
    if let Some(t) = q.until_ms {
        params.push(Param::Int(to_i64(t)));
        clause.push_str(&format!(" AND time_ms < {}", p(params.len())));
    }
    if let Some(apk) = q.participant {
        params.push(Param::Bytes(apk.to_vec()));
        let n = p(params.len());
        clause.push_str(&format!(
            " AND (sender = {n} OR receiver0 = {n} OR receiver1 = {n})"
        ));
    }
    if let Some(a) = q.asset {
        params.push(Param::Int(to_i64(a.0)));
        clause.push_str(&format!(" AND asset = {}", p(params.len())));
    }
    (clause, params)
}

/// A batch of entries as one array per column, for PostgreSQL's `UNNEST`.
#[derive(Default)]
struct PgColumns {
    txid: Vec<Vec<u8>>,
    height: Vec<i64>,
    time_ms: Vec<i64>,
    kind: Vec<i16>,
    public_value: Vec<i64>,
    asset: Vec<i64>,
    sender: Vec<Vec<u8>>,
    receiver0: Vec<Vec<u8>>,
    value0: Vec<i64>,
    receiver1: Vec<Vec<u8>>,
    value1: Vec<i64>,
    record: Vec<Vec<u8>>,
}

impl PgColumns {
    fn push(&mut self, e: &AuditEntry) {
        let p = &e.plaintext;
        self.txid.push(e.txid.0.to_vec());
        self.height.push(to_i64(e.height));
        self.time_ms.push(to_i64(e.time_ms));
        self.kind.push(i16::from(e.kind as u8));
        self.public_value.push(to_i64(e.public_value.0));
        self.asset.push(to_i64(p.asset.0));
        self.sender.push(fr_to_bytes(&p.sender).to_vec());
        self.receiver0.push(fr_to_bytes(&p.receivers[0]).to_vec());
        self.value0.push(to_i64(p.values[0].0));
        self.receiver1.push(fr_to_bytes(&p.receivers[1]).to_vec());
        self.value1.push(to_i64(p.values[1].0));
        self.record.push(e.record.to_bytes());
    }
}

enum Param {
    Int(i64),
    Bytes(Vec<u8>),
}

impl Records {
    /// Opens (creating if needed) the records database at `location`: a `postgres://` or
    /// `postgresql://` URL ([`connect_postgres`] says when it uses TLS; `ca` adds a trusted
    /// certificate authority), or an SQLite file path (optionally `sqlite:` before it; a new
    /// file is created readable by its owner only). It is bound to `key` on first use; another
    /// key's database, or another schema version, is refused.
    pub fn open(
        location: &str,
        key: &AuditPublicKey,
        ca: Option<&std::path::Path>,
    ) -> Result<Records, RecordsError> {
        let mut records =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                let mut client = connect_postgres(location, ca)?;
                client.batch_execute(&schema(true))?;
                Records {
                    db: Backend::Postgres(Box::new(client)),
                }
            } else {
                let path = location.strip_prefix("sqlite:").unwrap_or(location);
                create_private(path)?;
                let conn = rusqlite::Connection::open(path)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                conn.execute_batch(&schema(false))?;
                Records {
                    db: Backend::Sqlite(conn),
                }
            };
        records.bind(key)?;
        Ok(records)
    }

    /// `sqlite` or `postgresql`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
        }
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, RecordsError> {
        Ok(match &mut self.db {
            Backend::Sqlite(c) => {
                use rusqlite::OptionalExtension;
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?
            }
            Backend::Postgres(c) => c
                .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                .map(|r| r.try_get(0))
                .transpose()?,
        })
    }

    fn bind(&mut self, key: &AuditPublicKey) -> Result<(), RecordsError> {
        let ours = hex_encode(&key.to_bytes());
        match (self.meta("auditor")?, self.meta("schema")?) {
            (Some(found), _) if found != ours => Err(RecordsError::OtherKey { found, ours }),
            (_, Some(v)) if v != SCHEMA_VERSION.to_string() => {
                Err(RecordsError::Schema { found: v })
            }
            (Some(_), Some(_)) => Ok(()),
            _ => {
                let rows = [
                    ("auditor", ours),
                    ("schema", SCHEMA_VERSION.to_string()),
                    ("height", "0".to_string()),
                ];
                match &mut self.db {
                    Backend::Sqlite(c) => {
                        let tx = c.transaction()?;
                        for (k, v) in &rows {
                            tx.execute(
                                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                                [k, v.as_str()],
                            )?;
                        }
                        tx.commit()?;
                    }
                    Backend::Postgres(c) => {
                        let mut tx = c.transaction()?;
                        for (k, v) in &rows {
                            tx.execute(
                                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                                &[k, v],
                            )?;
                        }
                        tx.commit()?;
                    }
                }
                Ok(())
            }
        }
    }

    /// The last height scanned into the database.
    pub fn height(&mut self) -> Result<u64, RecordsError> {
        let v = self.meta("height")?.unwrap_or_else(|| "0".into());
        v.parse()
            .map_err(|_| RecordsError::Corrupt(format!("the scanned height {v:?}")))
    }

    /// How many records the database holds.
    pub fn count(&mut self) -> Result<u64, RecordsError> {
        let n: i64 = match &mut self.db {
            Backend::Sqlite(c) => c.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))?,
            Backend::Postgres(c) => c
                .query_one("SELECT COUNT(*) FROM records", &[])?
                .try_get(0)?,
        };
        Ok(to_u64(n))
    }

    /// Appends `entries` and `accounts` and records that blocks up to `height` are scanned,
    /// in one database transaction: after a crash, either all or none are there. A record
    /// already present (the same id) is kept as it is.
    pub fn append(
        &mut self,
        entries: &[AuditEntry],
        accounts: &[AccountRecord],
        height: u64,
    ) -> Result<(), RecordsError> {
        let h = height.to_string();
        let key = |k: &Option<[u8; 32]>| k.map_or(Vec::new(), |k| k.to_vec());
        match &mut self.db {
            Backend::Sqlite(c) => {
                let tx = c.transaction()?;
                {
                    let mut insert = tx.prepare_cached(&format!(
                        "INSERT INTO records ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (txid) DO NOTHING"
                    ))?;
                    for e in entries {
                        let p = &e.plaintext;
                        insert.execute(rusqlite::params![
                            e.txid.0.as_slice(),
                            to_i64(e.height),
                            to_i64(e.time_ms),
                            e.kind as u8 as i64,
                            to_i64(e.public_value.0),
                            to_i64(p.asset.0),
                            fr_to_bytes(&p.sender).as_slice(),
                            fr_to_bytes(&p.receivers[0]).as_slice(),
                            to_i64(p.values[0].0),
                            fr_to_bytes(&p.receivers[1]).as_slice(),
                            to_i64(p.values[1].0),
                            e.record.to_bytes(),
                        ])?;
                    }
                    let mut insert = tx.prepare_cached(&format!(
                        "INSERT INTO account_records ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (txid) DO NOTHING"
                    ))?;
                    for a in accounts {
                        insert.execute(rusqlite::params![
                            a.txid.0.as_slice(),
                            to_i64(a.height),
                            to_i64(a.time_ms),
                            i64::from(a.kind),
                            to_i64(a.asset.0),
                            key(&a.from),
                            key(&a.to),
                            to_i64(a.amount.0),
                        ])?;
                    }
                }
                tx.execute("UPDATE meta SET value = ?1 WHERE key = 'height'", [&h])?;
                tx.commit()?;
            }
            Backend::Postgres(c) => {
                // One statement per batch: the columns as arrays, unnested server-side (a
                // round trip per row would cost more than the insert).
                let mut cols = PgColumns::default();
                for e in entries {
                    cols.push(e);
                }
                let mut tx = c.transaction()?;
                tx.execute(
                    &format!(
                        "INSERT INTO records ({COLUMNS}) SELECT * FROM UNNEST($1::bytea[], $2::bigint[], $3::bigint[], $4::smallint[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bigint[], $10::bytea[], $11::bigint[], $12::bytea[]) ON CONFLICT (txid) DO NOTHING"
                    ),
                    &[
                        &cols.txid,
                        &cols.height,
                        &cols.time_ms,
                        &cols.kind,
                        &cols.public_value,
                        &cols.asset,
                        &cols.sender,
                        &cols.receiver0,
                        &cols.value0,
                        &cols.receiver1,
                        &cols.value1,
                        &cols.record,
                    ],
                )?;
                // Account transactions are few beside note records: a statement each.
                for a in accounts {
                    tx.execute(
                        &format!(
                            "INSERT INTO account_records ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (txid) DO NOTHING"
                        ),
                        &[
                            &a.txid.0.as_slice(),
                            &to_i64(a.height),
                            &to_i64(a.time_ms),
                            &i16::from(a.kind),
                            &to_i64(a.asset.0),
                            &key(&a.from),
                            &key(&a.to),
                            &to_i64(a.amount.0),
                        ],
                    )?;
                }
                tx.execute("UPDATE meta SET value = $1 WHERE key = 'height'", &[&h])?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// The entry of transaction `txid`, if the database holds one. Its record is decrypted with
    /// `key` again and must say what the row says.
    pub fn entry(
        &mut self,
        txid: &TxId,
        key: &shoji_primitives::audit::AuditSecretKey,
    ) -> Result<Option<AuditEntry>, RecordsError> {
        let sql = |p: &str| format!("SELECT {COLUMNS} FROM records WHERE txid = {p}");
        let row = match &mut self.db {
            Backend::Sqlite(c) => {
                use rusqlite::OptionalExtension;
                c.query_row(&sql("?1"), [txid.0.as_slice()], sqlite_row)
                    .optional()?
            }
            Backend::Postgres(c) => c
                .query_opt(&sql("$1"), &[&txid.0.as_slice()])?
                .map(|r| postgres_row(&r))
                .transpose()?,
        };
        let Some(entry) = row.map(Row::entry).transpose()? else {
            return Ok(None);
        };
        match key.decrypt(&entry.record) {
            Ok(p) if p == entry.plaintext => Ok(Some(entry)),
            _ => Err(RecordsError::Corrupt(format!(
                "the row of transaction {txid} does not match its record"
            ))),
        }
    }

    /// The account record of transaction `txid`, if the database holds one.
    pub fn account_record(&mut self, txid: &TxId) -> Result<Option<AccountRecord>, RecordsError> {
        let sql =
            |p: &str| format!("SELECT {ACCOUNT_COLUMNS} FROM account_records WHERE txid = {p}");
        let row = match &mut self.db {
            Backend::Sqlite(c) => {
                use rusqlite::OptionalExtension;
                c.query_row(&sql("?1"), [txid.0.as_slice()], sqlite_account_row)
                    .optional()?
            }
            Backend::Postgres(c) => c
                .query_opt(&sql("$1"), &[&txid.0.as_slice()])?
                .map(|r| postgres_account_row(&r))
                .transpose()?,
        };
        row.map(AccountRow::record).transpose()
    }

    /// What the entries `q` selects say, in height order (then by id), without their records.
    pub fn query(&mut self, q: &Query) -> Result<Vec<Recorded>, RecordsError> {
        let (sqlite_columns, postgres_columns) = (REPORT_COLUMNS_SQLITE, REPORT_COLUMNS_POSTGRES);
        let rows = self.select(
            (sqlite_columns, postgres_columns, "records"),
            q,
            sqlite_row,
            postgres_row,
        )?;
        rows.iter().map(Row::recorded).collect()
    }

    /// The account records `q` selects (its height and time window and asset; a participant
    /// is an owner tag, which accounts do not have, so it is not applied here), in height
    /// order.
    pub fn query_accounts(&mut self, q: &Query) -> Result<Vec<AccountRecord>, RecordsError> {
        let q = Query {
            participant: None,
            ..q.clone()
        };
        let rows = self.select(
            (ACCOUNT_COLUMNS, ACCOUNT_COLUMNS, "account_records"),
            &q,
            sqlite_account_row,
            postgres_account_row,
        )?;
        rows.into_iter().map(AccountRow::record).collect()
    }

    /// `SELECT columns FROM table WHERE filter(q) ORDER BY height, txid` on either database
    /// (`columns` as SQLite and as PostgreSQL write them).
    fn select<T>(
        &mut self,
        (sqlite_columns, postgres_columns, table): (&str, &str, &str),
        q: &Query,
        sqlite: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        postgres: impl Fn(&postgres::Row) -> Result<T, postgres::Error>,
    ) -> Result<Vec<T>, RecordsError> {
        Ok(match &mut self.db {
            Backend::Sqlite(c) => {
                let (clause, params) = filter(q, |n| format!("?{n}"));
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {sqlite_columns} FROM {table} WHERE {clause} ORDER BY height, txid"
                ))?;
                let values: Vec<rusqlite::types::Value> = params
                    .into_iter()
                    .map(|p| match p {
                        Param::Int(i) => rusqlite::types::Value::Integer(i),
                        Param::Bytes(b) => rusqlite::types::Value::Blob(b),
                    })
                    .collect();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(values), sqlite)?
                    .collect::<Result<Vec<_>, _>>()?;
                rows
            }
            Backend::Postgres(c) => {
                let (clause, params) = filter(q, |n| format!("${n}"));
                let boxed: Vec<Box<dyn postgres::types::ToSql + Sync>> = params
                    .into_iter()
                    .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
                        match p {
                            Param::Int(i) => Box::new(i),
                            Param::Bytes(b) => Box::new(b),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                c.query(
                    &format!(
                        "SELECT {postgres_columns} FROM {table} WHERE {clause} ORDER BY height, txid"
                    ),
                    &refs,
                )?
                .iter()
                .map(postgres)
                .collect::<Result<Vec<_>, _>>()?
            }
        })
    }
}

/// Connects to PostgreSQL. With `sslmode=require`, or a `ca` given, over TLS (rustls), the
/// server's certificate verified against the system's roots and `ca` — stricter than libpq's
/// `require`, which does not verify. With `sslmode=disable`, in the clear. Otherwise (libpq's
/// default, `prefer`) in the clear only when every host is this machine (loopback or a Unix
/// socket); a remote host is refused ([`RecordsError::Unencrypted`]).
pub fn connect_postgres(
    location: &str,
    ca: Option<&std::path::Path>,
) -> Result<postgres::Client, RecordsError> {
    use postgres::config::{Host, SslMode};
    let config: postgres::Config = location.parse()?;
    let local = config.get_hosts().iter().all(|h| match h {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    });
    let tls = match config.get_ssl_mode() {
        SslMode::Disable => false,
        SslMode::Require => true,
        _ if ca.is_some() => true,
        _ if local => false,
        _ => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            return Err(RecordsError::Unencrypted(hosts.join(", ")));
        }
    };
    if !tls {
        return Ok(config.connect(postgres::NoTls)?);
    }
    let mut config = config;
    config.ssl_mode(SslMode::Require);
    config.connect(tls_connector(ca)?).map_err(|e| {
        // The handshake's own reason (an unknown issuer, a name mismatch) is in the causes.
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            why.push_str(&format!(": {c}"));
            cause = c.source();
        }
        RecordsError::Tls(why)
    })
}

/// A rustls connector trusting the system's roots and, when given, the certificates in the
/// PEM file `ca`.
fn tls_connector(
    ca: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, RecordsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system root this build cannot parse is skipped, as a browser would.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| RecordsError::Tls(format!("reading {}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RecordsError::Tls(format!("reading {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(RecordsError::Tls(format!(
                "{} holds no PEM certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| RecordsError::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(RecordsError::Tls(
            "no trusted certificate authority: the system has none, give --database-ca".into(),
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RecordsError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Creates the SQLite file readable and writable by its owner only, if it does not exist.
fn create_private(path: &str) -> Result<(), RecordsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(RecordsError::Create {
            path: path.to_string(),
            source,
        }),
    }
}
