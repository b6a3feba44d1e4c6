//! The binary's contract at its edge: its help lists the exit codes, and bad usage exits 2
//! without touching any file.

use std::process::Command;

#[test]
fn help_lists_exit_codes_and_bad_usage_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_shoji-wallet"))
        .arg("--help")
        .output()
        .expect("run shoji-wallet");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "insufficient funds",
        "wrong passphrase",
        "no validator reachable",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}: {help}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_shoji-wallet"))
        .current_dir(dir.path())
        .args(["send", "--amount", "not-a-number"])
        .output()
        .expect("run shoji-wallet");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
