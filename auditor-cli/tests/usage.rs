//! The binary's contract at its edge: its help lists the exit codes, bad usage exits 2, and a
//! file that is not a disclosure is refused as invalid.

use std::process::Command;

#[test]
fn help_lists_exit_codes_and_bad_input_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoji-auditor"))
        .arg("--help")
        .output()
        .expect("run shoji-auditor");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("the disclosure is invalid"), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_shoji-auditor"))
        .args(["report", "--format", "xml"])
        .output()
        .expect("run shoji-auditor");
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("d.json");
    std::fs::write(&bogus, "{\"not\": \"a disclosure\"}").expect("write");
    let network = dir.path().join("network.json");
    std::fs::write(
        &network,
        r#"{"validators":[{"id":0,"addr":"127.0.0.1:9","public_key":"1f244c4e481fc1f709c23fa8948118f0e06c1995b16b7759d06995ef9d6a267f"}],"auditor_public_key":"7ad36fe4a1249cb60abdc4567c7f0366d5dbda85d64fc029cd66b813e2d2296b","network_id":"0000000000000000000000000000000000000000000000000000000000000000","insecure":"development keys"}"#,
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_shoji-auditor"))
        .arg("--network")
        .arg(&network)
        .arg("verify-disclosure")
        .arg(&bogus)
        .output()
        .expect("run shoji-auditor");
    assert_eq!(
        out.status.code(),
        Some(12),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key file of the first layout (the key and every record, sealed together) is read: its
/// records move to the records database, the report shows them, and the key file keeps only
/// the key.
#[test]
fn a_key_file_of_the_first_layout_has_its_records_moved_to_the_database() {
    use shoji_primitives::audit::{encrypt, AuditEphemeral, AuditPlaintext, AuditSecretKey};
    use shoji_primitives::note::{Amount, AssetId};
    use shoji_primitives::Fr;

    let dir = tempfile::tempdir().expect("tempdir");
    let key = AuditSecretKey::random(&mut rand_core::OsRng);
    // Layout 1: version, key, height, count, then each record with its block's facts.
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&key.to_bytes());
    v1.extend_from_slice(&7u64.to_le_bytes());
    v1.extend_from_slice(&3u64.to_le_bytes());
    for i in 0..3u64 {
        let plaintext = AuditPlaintext {
            sender: Fr::from(1u64),
            receivers: [Fr::from(2 + i), Fr::from(1u64)],
            values: [Amount(10 * (i + 1)), Amount(0)],
            asset: AssetId(840),
        };
        let record = encrypt(
            &key.public_key(),
            &plaintext,
            &AuditEphemeral::random(&mut rand_core::OsRng),
        );
        v1.extend_from_slice(&[i as u8 + 1; 32]);
        v1.extend_from_slice(&(i + 2).to_le_bytes());
        v1.extend_from_slice(&(1_700_000_000_000 + i).to_le_bytes());
        v1.push(0);
        v1.extend_from_slice(&0u64.to_le_bytes());
        record.write(&mut v1);
    }
    let key_path = dir.path().join("auditor.shoji");
    drop(
        shoji_client::sealed::SealedFile::create(
            &key_path,
            b"SHOJIAUD",
            b"correct horse",
            shoji_client::sealed::KdfParams::default(),
            &v1,
        )
        .expect("seal"),
    );
    let report = || {
        Command::new(env!("CARGO_BIN_EXE_shoji-auditor"))
            .current_dir(dir.path())
            .env("SHOJI_AUDITOR_PASSPHRASE", "correct horse")
            .args(["--json", "--network", "none.json", "report"])
            .output()
            .expect("run shoji-auditor")
    };
    let out = report();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Moved 3 records"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let amounts: Vec<u64> = json["payments"]
        .as_array()
        .expect("payments")
        .iter()
        .map(|p| p["amount"].as_u64().expect("amount"))
        .collect();
    assert_eq!(amounts, [10, 20, 30]);
    assert_eq!(json["scanned_to"], 7);
    assert!(dir.path().join("auditor.db").exists());
    let (_, payload) =
        shoji_client::sealed::SealedFile::open(&key_path, b"SHOJIAUD", b"correct horse")
            .expect("open");
    assert_eq!(payload.len(), 33, "the key file still holds records");
    // Once moved, the same report reads them from the database alone.
    let again = report();
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stderr).contains("Moved"));
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(json["payments"].as_array().map(Vec::len), Some(3));
}
