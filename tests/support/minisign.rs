//! minisign keys and signatures made by the real `minisign` tool (Debian's package), for the
//! tests of signed plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A minisign key pair made by `minisign -G` without a password, in `dir`.
pub struct Key {
    pub public: PathBuf,
    pub secret: PathBuf,
    pub id: String,
}

impl Key {
    pub fn generate(dir: &Path, name: &str) -> Key {
        let public = dir.join(format!("{name}.pub"));
        let secret = dir.join(format!("{name}.key"));
        let output = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&public)
            .arg("-s")
            .arg(&secret)
            .output()
            .expect("minisign runs (Debian package minisign)");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&public).expect("public key");
        let id = text
            .lines()
            .next()
            .and_then(|comment| comment.rsplit(' ').next())
            .expect("minisign names the key id");
        // minisign writes the id in its comment without leading zeros; mecha prints all 16
        // digits, as the key's bytes give them.
        let id = format!("{id:0>16}");
        Key { public, secret, id }
    }

    /// Signs `file` with `minisign -S`, which writes `<file>.minisig`; returns its bytes.
    pub fn sign(&self, file: &Path) -> Vec<u8> {
        let output = Command::new("minisign")
            .arg("-S")
            .arg("-s")
            .arg(&self.secret)
            .arg("-m")
            .arg(file)
            .output()
            .expect("minisign runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(format!("{}.minisig", file.display())).expect("signature written")
    }
}

/// Whether the `minisign` tool can be run.
pub fn minisign_present() -> bool {
    Command::new("minisign").arg("-v").output().is_ok()
}
