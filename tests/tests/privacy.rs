//! The privacy promise, checked on what an observer can hold: every committed transaction and
//! every byte a validator stores. Neither contains any participant's address, owner tag or
//! encryption key, nor any amount of a shielded transfer, nor any memo, in any encoding the
//! project uses. (A mint's amount and asset are public by design: value crosses the boundary
//! there.) A second auditor key, not designated, decrypts nothing.

use shoji_primitives::encoding::{fr_to_bytes, point_to_bytes};
use shoji_primitives::note::{pack_asset_value, Amount, AssetId};
use shoji_primitives::tx::Transaction;
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read stored file"),
            ));
        }
    }
}

/// A transaction's encoding, field by field (the pieces of `Transaction::to_bytes`).
fn fields(tx: &Transaction) -> Vec<Vec<u8>> {
    let b = tx.bundle();
    let mut out = vec![vec![tx.to_bytes()[0]], vec![tx.to_bytes()[1]]];
    out.push(fr_to_bytes(&b.anchor).to_vec());
    for x in b.nullifiers.iter().chain(&b.commitments) {
        out.push(fr_to_bytes(x).to_vec());
    }
    for v in [b.value_in.0, b.value_out.0, b.asset.0] {
        out.push(v.to_le_bytes().to_vec());
    }
    out.push(b.auditor.to_bytes().to_vec());
    out.push(point_to_bytes(&b.audit.epk).to_vec());
    for c in &b.audit.ciphertext {
        out.push(fr_to_bytes(c).to_vec());
    }
    for o in &b.outputs {
        out.push(o.to_bytes().to_vec());
    }
    out.push(b.expiry_height.to_le_bytes().to_vec());
    out.push(b.network.to_vec());
    out.push(b.proof.0.to_vec());
    out.extend(tx.issuer().map(|i| i.to_vec()));
    if let Transaction::Mint { auth, .. } = tx {
        out.push(auth.signature.to_vec());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_observer_of_blocks_and_storage_learns_no_participant_amount_or_memo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let out = shoji_tests::run_story(
        Box::new(move |config, verifier| {
            Ok(Box::new(shoji_tests::devnet::Devnet::start_in(
                config, verifier, &path,
            )?))
        }),
        &mut |_| {},
    )
    .expect("story runs");
    assert_eq!(
        out.other_auditor_entries, 0,
        "a key that is not designated reads nothing"
    );

    // What the observer holds: the committed transactions and every stored byte (the validators
    // have stopped, so their databases are complete on disk).
    let mut held: Vec<(String, Vec<u8>)> = out
        .chain_bytes
        .iter()
        .enumerate()
        .map(|(i, b)| (format!("committed transaction {i}"), b.clone()))
        .collect();
    files(dir.path(), &mut held);
    let stored: usize = held.iter().map(|(_, b)| b.len()).sum();
    assert!(stored > 10_000, "nothing was stored? {stored} bytes");

    // What must not be found.
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, addr) in &out.participants {
        needles.push((format!("{name}'s address"), addr.to_string().into_bytes()));
        needles.push((format!("{name}'s address bytes"), addr.to_bytes().to_vec()));
        needles.push((
            format!("{name}'s owner tag"),
            fr_to_bytes(&addr.apk).to_vec(),
        ));
        let mut be = fr_to_bytes(&addr.apk).to_vec();
        be.reverse();
        needles.push((format!("{name}'s owner tag (big-endian)"), be));
        needles.push((format!("{name}'s encryption key"), addr.pk_enc.to_vec()));
    }
    // Amounts of the shielded transfers (payments and change) in every encoding: the note's
    // packed field element, the audit record's packing, and the bare integer.
    let usd = AssetId(840);
    for v in [250u64, 750, 100, 150] {
        needles.push((
            format!("{v} packed with its asset"),
            fr_to_bytes(&pack_asset_value(usd, Amount(v))).to_vec(),
        ));
    }
    needles.push((
        "the audit packing of Alice's payment".into(),
        fr_to_bytes(&shoji_primitives::audit::pack_audit_amounts(
            usd,
            [Amount(250), Amount(750)],
        ))
        .to_vec(),
    ));
    for memo in ["invoice 17", "initial funding"] {
        needles.push((format!("memo {memo:?}"), memo.as_bytes().to_vec()));
    }

    let mut found = Vec::new();
    for (what, needle) in &needles {
        for (place, bytes) in &held {
            if contains(bytes, needle) {
                found.push(format!("{what} in {place}"));
            }
        }
    }
    // A bare integer is only meaningful where every field is known: in the transactions, and
    // within one field. In a database file, eight bytes equal to 100 are as likely a page
    // offset or a length as an amount (the distinctive encodings above are searched there
    // instead); across two fields, they are as likely a commitment's top byte 0x64 followed by
    // a transfer's zero public values.
    for (i, bytes) in out.chain_bytes.iter().enumerate() {
        let tx = Transaction::from_bytes(bytes).expect("a committed transaction decodes");
        let fields = fields(&tx);
        assert_eq!(
            fields.concat(),
            *bytes,
            "the fields make up transaction {i}"
        );
        for v in [250u64, 750, 100, 150] {
            for (order, needle) in [("LE", v.to_le_bytes()), ("BE", v.to_be_bytes())] {
                if fields.iter().any(|f| contains(f, &needle)) {
                    found.push(format!("{v} as u64 {order} in committed transaction {i}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "an observer finds: {found:#?}");

    // And the search can fail: the mint's public amount is in the chain.
    assert!(held
        .iter()
        .any(|(_, b)| contains(b, &1000u64.to_le_bytes())));
}
