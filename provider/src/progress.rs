//! Deployment sub-steps for the `cloudcode` CLI: appends one JSON line per step boundary
//! (`{"step":"connect|install|upload|up|health","status":"start|done","detail":..}`) to the file named by
//! `CLOUDCODE_PROGRESS_FILE`, because Terraform's `-json` UI stream cannot carry provider sub-steps.
//! Does nothing when the variable is unset; failures to write are ignored (progress is cosmetic).
//! Details are host labels and counts only — never secrets.

use std::io::Write;

/// Environment variable naming the progress file.
pub const PROGRESS_FILE_ENV: &str = "CLOUDCODE_PROGRESS_FILE";

/// Appends `{"step":step,"status":status,"detail":detail}` to the progress file, if one is configured.
pub fn report(step: &str, status: &str, detail: &str) {
    let Some(path) = std::env::var_os(PROGRESS_FILE_ENV) else {
        return;
    };
    let line = serde_json::json!({ "step": step, "status": status, "detail": detail });
    // One write call per line with O_APPEND: concurrent writers never interleave within a line.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}
