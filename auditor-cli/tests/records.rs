//! The records database, on SQLite and on a real PostgreSQL server: scans append and survive a
//! reopen, reports select by height, time, participant and asset, a row edited in the database
//! is caught when read back, account records come back as written, and another key's database
//! is refused.
//!
//! The PostgreSQL test needs a server: `SHOJI_TEST_POSTGRES=postgres://user:password@host/db`
//! naming a database it may drop its tables in (`.ci/run` installs, starts and names one).

use shoji_auditor::records::{Query, Records, RecordsError};
use shoji_auditor::{AccountRecord, AuditEntry, Recorded};
use shoji_primitives::audit::{encrypt, AuditEphemeral, AuditPlaintext, AuditSecretKey};
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::{TxId, TxKind};
use shoji_primitives::Fr;

/// Entry `i`: at height `i / 2 + 1`, time `1000 * height`, from participant `i % 3` to
/// participant `(i + 1) % 3`, asset 840 or (every fourth) 978, amount `i + 1`.
fn entry(key: &AuditSecretKey, i: u64) -> AuditEntry {
    let height = i / 2 + 1;
    let plaintext = AuditPlaintext {
        sender: Fr::from(100 + i % 3),
        receivers: [Fr::from(100 + (i + 1) % 3), Fr::from(100 + i % 3)],
        values: [Amount(i + 1), Amount(if i == 5 { u64::MAX } else { 0 })],
        asset: AssetId(if i % 4 == 3 { 978 } else { 840 }),
    };
    let record = encrypt(
        &key.public_key(),
        &plaintext,
        &AuditEphemeral::random(&mut rand_core::OsRng),
    );
    let mut txid = [0u8; 32];
    txid[..8].copy_from_slice(&i.to_le_bytes());
    AuditEntry {
        txid: TxId(txid),
        height,
        time_ms: 1000 * height,
        kind: TxKind::Transfer,
        public_value: Amount(0),
        plaintext,
        record,
    }
}

/// A transfer, a mint (from the issuer), a redemption (to the issuer) and a transfer of the
/// largest amount, at heights 1, 2, 5 and 6.
fn account_records() -> Vec<AccountRecord> {
    let kinds = [
        shoji_primitives::account::TRANSFER_KIND,
        shoji_primitives::account::MINT_KIND,
        shoji_primitives::account::REDEEM_KIND,
        shoji_primitives::account::TRANSFER_KIND,
    ];
    [1u64, 2, 5, 6]
        .into_iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (height, kind))| AccountRecord {
            txid: TxId([0xa0 + i as u8; 32]),
            height,
            time_ms: 1000 * height,
            kind,
            asset: AssetId(if height == 5 { 978 } else { 840 }),
            from: (kind != shoji_primitives::account::MINT_KIND).then_some([1; 32]),
            to: (kind != shoji_primitives::account::REDEEM_KIND).then_some([2; 32]),
            amount: Amount(if height == 6 { u64::MAX } else { 10 * height }),
        })
        .collect()
}

fn heights(entries: &[Recorded]) -> Vec<u64> {
    entries.iter().map(|e| e.height).collect()
}

/// Everything the database promises, against the database at `location`; `tamper` edits one
/// row's amount behind the auditor's back.
fn exercise(location: &str, mut tamper: impl FnMut(&TxId)) {
    let key = AuditSecretKey::random(&mut rand_core::OsRng);
    let all: Vec<AuditEntry> = (0..12).map(|i| entry(&key, i)).collect();
    let accounts = account_records();
    {
        let mut db = Records::open(location, &key.public_key(), None).expect("open");
        assert_eq!(
            (db.height().expect("height"), db.count().expect("count")),
            (0, 0)
        );
        db.append(&all[..6], &accounts[..2], 3).expect("append");
        db.append(&all[6..], &accounts[2..], 6).expect("append");
        // Appending a record again (a rescan after a crash) keeps one copy.
        db.append(&all[..2], &accounts[..1], 6)
            .expect("append again");
    }
    let mut db = Records::open(location, &key.public_key(), None).expect("reopen");
    assert_eq!(db.height().expect("height"), 6);
    assert_eq!(db.count().expect("count"), 12);

    let q = |from, to| Query {
        from,
        to,
        ..Default::default()
    };
    let everything = db.query(&q(1, 6)).expect("query");
    let expected: Vec<Recorded> = all.iter().map(AuditEntry::recorded).collect();
    assert_eq!(everything, expected, "read back exactly as written");
    assert_eq!(heights(&db.query(&q(2, 3)).expect("query")), [2, 2, 3, 3]);
    let window = Query {
        since_ms: Some(4000),
        until_ms: Some(6000),
        ..q(1, 6)
    };
    assert_eq!(heights(&db.query(&window).expect("query")), [4, 4, 5, 5]);
    // Participant 101 sent entries 1, 4, 7, 10 and received from 0, 3, 6, 9 (and its own
    // change): as sender or receiver.
    let apk = fr_to_bytes(&Fr::from(101u64));
    let theirs = Query {
        participant: Some(apk),
        ..q(1, 6)
    };
    let ids: Vec<u64> = db
        .query(&theirs)
        .expect("query")
        .iter()
        .map(|e| u64::from_le_bytes(e.txid.0[..8].try_into().expect("8 bytes")))
        .collect();
    assert_eq!(ids, [0, 1, 3, 4, 6, 7, 9, 10]);
    let euros = Query {
        asset: Some(AssetId(978)),
        ..q(1, 6)
    };
    assert_eq!(heights(&db.query(&euros).expect("query")), [2, 4, 6]);
    // The full u64 range survives the signed columns.
    assert_eq!(all[5].plaintext.values[1], Amount(u64::MAX));

    // Account records: read back as written, issuer sides and the full range included, by
    // height, time and asset.
    assert_eq!(db.query_accounts(&q(1, 6)).expect("accounts"), accounts);
    let account_heights = |q: &Query, db: &mut Records| -> Vec<u64> {
        db.query_accounts(q)
            .expect("accounts")
            .iter()
            .map(|a| a.height)
            .collect()
    };
    assert_eq!(account_heights(&q(2, 5), &mut db), [2, 5]);
    assert_eq!(account_heights(&window, &mut db), [5]);
    assert_eq!(account_heights(&euros, &mut db), [5]);

    // One record read back is decrypted again: an edited row is caught.
    assert_eq!(
        db.entry(&all[4].txid, &key).expect("entry").as_ref(),
        Some(&all[4])
    );
    assert_eq!(db.entry(&TxId([9; 32]), &key).expect("entry"), None);
    tamper(&all[4].txid);
    match db.entry(&all[4].txid, &key) {
        Err(RecordsError::Corrupt(why)) => assert!(why.contains("does not match"), "{why}"),
        other => panic!("an edited row was believed: {other:?}"),
    }

    // Another key's database is refused, whatever it would have read.
    let other = AuditSecretKey::random(&mut rand_core::OsRng);
    match Records::open(location, &other.public_key(), None) {
        Err(RecordsError::OtherKey { .. }) => {}
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("another key's database was opened"),
    }
}

#[test]
fn records_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auditor.db");
    let location = path.display().to_string();
    exercise(&location, |txid| {
        let c = rusqlite::Connection::open(&path).expect("open");
        c.execute(
            "UPDATE records SET value0 = value0 + 1000 WHERE txid = ?1",
            [txid.0.as_slice()],
        )
        .expect("tamper");
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the database is readable by others: {mode:o}"
        );
    }
}

#[test]
fn records_on_postgresql() {
    let url = std::env::var("SHOJI_TEST_POSTGRES").expect(
        "SHOJI_TEST_POSTGRES must name a PostgreSQL database the test may drop its tables in \
         (postgres://user:password@127.0.0.1/db); .ci/run starts one",
    );
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    admin
        .batch_execute("DROP TABLE IF EXISTS records; DROP TABLE IF EXISTS account_records; DROP TABLE IF EXISTS meta;")
        .expect("a clean database");
    exercise(&url, |txid| {
        admin
            .execute(
                "UPDATE records SET value0 = value0 + 1000 WHERE txid = $1",
                &[&txid.0.as_slice()],
            )
            .expect("tamper");
    });
}

/// TLS to PostgreSQL: with the test server's certificate authority the connection is made and
/// verified; without it the certificate is refused; a remote host without TLS is refused before
/// any record is sent. `SHOJI_TEST_POSTGRES_CA` names the authority that signed the server's
/// certificate for `localhost` (`.ci/run` and `scripts/check` make one).
#[test]
fn records_on_postgresql_over_tls() {
    let url = std::env::var("SHOJI_TEST_POSTGRES").expect("SHOJI_TEST_POSTGRES (see above)");
    let ca = std::path::PathBuf::from(std::env::var("SHOJI_TEST_POSTGRES_CA").expect(
        "SHOJI_TEST_POSTGRES_CA must name the PEM certificate authority of the test server's TLS \
         certificate for localhost; scripts/check makes one",
    ));
    let tls_url = format!(
        "{}?sslmode=require",
        url.replace("@127.0.0.1:", "@localhost:")
    );
    let key = AuditSecretKey::random(&mut rand_core::OsRng);
    let mut client = shoji_auditor::records::connect_postgres(&tls_url, Some(&ca))
        .expect("a verified TLS connection");
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .expect("pg_stat_ssl");
    assert!(row.get::<_, bool>(0), "the connection is not encrypted");
    // Without the authority, the server's certificate is not trusted.
    match shoji_auditor::records::connect_postgres(&tls_url, None) {
        Err(e) => assert!(
            matches!(e, RecordsError::Tls(_)) && e.to_string().contains("certificate"),
            "{e}"
        ),
        Ok(_) => panic!("an unverified server was trusted"),
    }
    // A remote host without TLS: refused before connecting.
    let remote = "postgres://auditor:secret@db.example.net:5432/records";
    match Records::open(remote, &key.public_key(), None) {
        Err(RecordsError::Unencrypted(hosts)) => assert_eq!(hosts, "db.example.net"),
        Err(e) => panic!("refused for the wrong reason: {e}"),
        Ok(_) => panic!("records would have crossed the network in the clear"),
    }
}
