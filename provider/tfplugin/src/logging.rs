//! Logging on stderr in hclog's JSON line format (`@level`, `@message`, `@module`, `@timestamp` and fields),
//! which go-plugin parses and Terraform shows under `TF_LOG` / `TF_LOG_PROVIDER`.
//!
//! The level comes from `TF_LOG_PROVIDER_<NAME>`, then `TF_LOG_PROVIDER`, then `TF_LOG` (as Go providers do);
//! unset means off. Code must never log secret values: they are not in our events by construction (secret
//! types have redacting `Debug`), and this layer adds nothing but what events carry.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Reads the level for provider `name` from the environment through `get`.
pub fn level_from_env(name: &str, get: impl Fn(&str) -> Option<String>) -> Option<Level> {
    let keys = [
        format!("TF_LOG_PROVIDER_{}", name.to_ascii_uppercase()),
        "TF_LOG_PROVIDER".to_string(),
        "TF_LOG".to_string(),
    ];
    let raw = keys.iter().find_map(|k| get(k).filter(|v| !v.is_empty()))?;
    match raw.to_ascii_lowercase().as_str() {
        "trace" | "json" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "error" => Some(Level::ERROR),
        _ => None,
    }
}

/// Installs the stderr logger for provider `name` (no-op when logging is off or already installed).
pub fn init(name: &str) {
    let Some(level) = level_from_env(name, |k| std::env::var(k).ok()) else {
        return;
    };
    // Our own crates log at the level asked for; libraries (TLS, HTTP/2, SSH internals) only from WARN, or from
    // DEBUG under `trace`, so a trace log stays readable and never dumps handshake internals.
    let libraries = if level == Level::TRACE {
        Level::DEBUG
    } else {
        Level::WARN
    }
    .min(level);
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(libraries)
        .with_target("cloudcode", level)
        .with_target("terraform_provider_cloudcode", level);
    let layer = HclogLayer {
        module: format!("provider.terraform-provider-{name}"),
    }
    .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

struct HclogLayer {
    module: String,
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let line = format_event(event, &self.module);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

fn format_event(event: &Event<'_>, module: &str) -> String {
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    let mut obj = serde_json::Map::new();
    obj.insert(
        "@level".into(),
        match *event.metadata().level() {
            Level::TRACE => "trace",
            Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        }
        .into(),
    );
    obj.insert("@message".into(), fields.message.into());
    obj.insert("@module".into(), module.into());
    obj.insert("@timestamp".into(), timestamp().into());
    obj.insert("target".into(), event.metadata().target().into());
    for (k, v) in fields.fields {
        obj.insert(k, v);
    }
    serde_json::Value::Object(obj).to_string()
}

fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&fmt).unwrap_or_default()
}

#[derive(Default)]
struct JsonFields {
    message: String,
    fields: Vec<(String, serde_json::Value)>,
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, s.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = value.as_str().map(str::to_string).unwrap_or_default();
        } else {
            self.fields.push((field.name().to_string(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_specific_level_wins_over_tf_log() {
        let env = |k: &str| match k {
            "TF_LOG" => Some("error".to_string()),
            "TF_LOG_PROVIDER_CLOUDCODE" => Some("DEBUG".to_string()),
            _ => None,
        };
        assert_eq!(level_from_env("cloudcode", env), Some(Level::DEBUG));
    }

    #[test]
    fn unset_means_off() {
        assert_eq!(level_from_env("cloudcode", |_| None), None);
    }

    #[test]
    fn events_are_hclog_json_lines() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                self.0
                    .lock()
                    .unwrap()
                    .push(format_event(event, "provider.test"));
            }
        }
        let cap = Capture::default();
        let sub = tracing_subscriber::registry().with(cap.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(host = "10.0.0.1", attempt = 3, "connect failed");
        });
        let lines = cap.0.lock().unwrap().clone();
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "connect failed");
        assert_eq!(v["@module"], "provider.test");
        assert_eq!(v["host"], "10.0.0.1");
        assert_eq!(v["attempt"], 3);
        assert!(v["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
