//! Generated gRPC types for Terraform plugin protocol 6.8 (`tfplugin6`) and go-plugin's internal services
//! (`plugin`: controller, stdio, broker), plus redacted `Debug` for the messages that carry user data.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// Configuration and state may hold secrets: print only which encoding is present and its size.
impl std::fmt::Debug for tfplugin6::DynamicValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicValue")
            .field("msgpack_len", &self.msgpack.len())
            .field("json_len", &self.json.len())
            .finish()
    }
}

/// Stored state may hold secrets: print sizes and flatmap keys count only.
impl std::fmt::Debug for tfplugin6::RawState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawState")
            .field("json_len", &self.json.len())
            .field("flatmap_entries", &self.flatmap.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::tfplugin6::{DynamicValue, RawState};

    #[test]
    fn dynamic_value_debug_hides_payload() {
        let v = DynamicValue {
            msgpack: b"hunter2-secret".to_vec(),
            json: Vec::new(),
        };
        let s = format!("{v:?}");
        assert!(!s.contains("104"), "byte values leaked: {s}");
        assert!(s.contains("msgpack_len: 14"), "{s}");
        let r = RawState {
            json: br#"{"password":"x"}"#.to_vec(),
            flatmap: [("password".into(), "x".into())].into(),
        };
        let s = format!("{r:?}");
        assert!(!s.contains("password"), "{s}");
    }
}
