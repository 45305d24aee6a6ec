//! The local YAML config (`agora-proxy -f FILE`): parsing with field-path errors, and
//! conversion into the same proto resources the control plane sends.

mod convert;
mod convert_ai;
mod convert_inference;
mod convert_l4;
mod convert_policy;
pub mod schema;

use std::path::Path;

use agora_proto::resource::Resource;

pub use convert::{parse_duration, to_resources};

use crate::error::{Error, Result};

/// The result of loading a config: the resources plus what labels them.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub gateway: String,
    pub resources: Vec<Resource>,
}

/// Parses YAML text into the typed config; errors name the offending field
/// (`binds[0].listeners[0].routes[2].matches[0].path.type`).
pub fn parse(text: &str) -> Result<schema::LocalConfig> {
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| Error::invalid("<yaml>", e))?;
    if value.is_null() {
        return Ok(schema::LocalConfig::default());
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid(
            if path == "." { "<root>".into() } else { path },
            e.into_inner(),
        )
    })
}

/// Reads, parses and converts a config file. Relative file references inside it (certificates)
/// resolve against the file's directory.
pub fn load_file(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    load_str(&text, path.parent().unwrap_or(Path::new(".")))
}

/// Parses and converts config text; `base` is the directory relative file paths resolve from.
pub fn load_str(text: &str, base: &Path) -> Result<Loaded> {
    let cfg = parse(text)?;
    let gateway = cfg.gateway.clone().unwrap_or_else(|| "local".into());
    let resources = to_resources(&cfg, base)?;
    Ok(Loaded { gateway, resources })
}
