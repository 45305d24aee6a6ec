//! Known provider endpoints, as data: where each vendor's API lives and how it authenticates.
//! Every preset but `anthropic` speaks the OpenAI chat completions format.

use crate::WireFormat;

/// A vendor's endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The name used in config (`openai`, `groq`, ...).
    pub name: &'static str,
    /// Scheme, host and optional port; no path.
    pub base_url: &'static str,
    /// What replaces the `/v1` of the standard paths (e.g. `/openai/v1` for Groq).
    pub path_prefix: &'static str,
    /// The header carrying the API key (lowercase).
    pub auth_header: &'static str,
    /// What precedes the key in that header (`"Bearer "`, or `""`).
    pub auth_scheme: &'static str,
    /// The port when `base_url` has none.
    pub default_port: u16,
    /// Whether the endpoint uses TLS.
    pub tls: bool,
}

impl Preset {
    /// The wire format the endpoint speaks.
    pub fn format(&self) -> WireFormat {
        if self.name == "anthropic" {
            WireFormat::Anthropic
        } else {
            WireFormat::OpenAi
        }
    }

    /// The host part of `base_url` (no scheme, no port).
    pub fn host(&self) -> &'static str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url, |(_, r)| r);
        rest.split(':').next().unwrap_or(rest)
    }

    /// The path to request upstream for a standard path such as `/v1/chat/completions`
    /// (from [`WireFormat::path_for`]): its leading `/v1` is replaced by `path_prefix`.
    pub fn upstream_path(&self, path: &str) -> String {
        let rest = path.strip_prefix("/v1").unwrap_or(path);
        format!("{}{rest}", self.path_prefix)
    }
}

const fn https(name: &'static str, base_url: &'static str, path_prefix: &'static str) -> Preset {
    Preset {
        name,
        base_url,
        path_prefix,
        auth_header: "authorization",
        auth_scheme: "Bearer ",
        default_port: 443,
        tls: true,
    }
}

const fn local(name: &'static str, base_url: &'static str, port: u16) -> Preset {
    Preset {
        name,
        base_url,
        path_prefix: "/v1",
        auth_header: "authorization",
        auth_scheme: "Bearer ",
        default_port: port,
        tls: false,
    }
}

/// Every known preset.
pub const PRESETS: &[Preset] = &[
    https("openai", "https://api.openai.com", "/v1"),
    Preset {
        name: "anthropic",
        base_url: "https://api.anthropic.com",
        path_prefix: "/v1",
        auth_header: "x-api-key",
        auth_scheme: "",
        default_port: 443,
        tls: true,
    },
    local("ollama", "http://localhost:11434", 11434),
    local("vllm", "http://localhost:8000", 8000),
    https("groq", "https://api.groq.com", "/openai/v1"),
    https("mistral", "https://api.mistral.ai", "/v1"),
    https("deepseek", "https://api.deepseek.com", "/v1"),
    https("together", "https://api.together.xyz", "/v1"),
    https("openrouter", "https://openrouter.ai", "/api/v1"),
    https("fireworks", "https://api.fireworks.ai", "/inference/v1"),
    https("xai", "https://api.x.ai", "/v1"),
    https("cerebras", "https://api.cerebras.ai", "/v1"),
];

/// The preset with this name (ASCII case-insensitive).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientApi;

    #[test]
    fn lookup_and_paths() {
        let groq = preset("Groq").unwrap();
        assert_eq!(groq.host(), "api.groq.com");
        let path = WireFormat::OpenAi
            .path_for(ClientApi::ChatCompletions)
            .unwrap();
        assert_eq!(groq.upstream_path(path), "/openai/v1/chat/completions");
        assert_eq!(preset("ollama").unwrap().host(), "localhost");
        assert_eq!(preset("anthropic").unwrap().format(), WireFormat::Anthropic);
        assert_eq!(preset("openai").unwrap().format(), WireFormat::OpenAi);
        assert!(preset("nope").is_none());
    }

    #[test]
    fn presets_are_well_formed() {
        for (i, p) in PRESETS.iter().enumerate() {
            assert!(
                p.base_url
                    .starts_with(if p.tls { "https://" } else { "http://" })
            );
            let (_, host) = p.base_url.split_once("://").unwrap();
            assert!(!host.contains('/'), "{}", p.name);
            assert!(p.path_prefix.starts_with('/') && !p.path_prefix.ends_with('/'));
            assert!(PRESETS[..i].iter().all(|q| q.name != p.name), "{}", p.name);
        }
    }
}
