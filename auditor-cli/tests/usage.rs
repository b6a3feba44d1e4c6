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
