//! How a virtual server names what its targets offer: tools and prompts become
//! `<target>_<name>`, resource URIs `<target>+<uri>` (a valid URI scheme, since target names
//! are lowercase letters, digits and '-'). Names are resolved back by the longest target name
//! they start with. Also the server's pagination cursor, which carries each target's own.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

/// What a list method lists: the array field of its result and the field naming each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Listed {
    pub fn from_method(m: &str) -> Option<Listed> {
        Some(match m {
            "tools/list" => Listed::Tools,
            "prompts/list" => Listed::Prompts,
            "resources/list" => Listed::Resources,
            "resources/templates/list" => Listed::Templates,
            _ => return None,
        })
    }

    pub fn field(self) -> &'static str {
        match self {
            Listed::Tools => "tools",
            Listed::Prompts => "prompts",
            Listed::Resources => "resources",
            Listed::Templates => "resourceTemplates",
        }
    }

    /// The item field that names it, and whether it is a URI.
    pub fn key(self) -> (&'static str, bool) {
        match self {
            Listed::Tools | Listed::Prompts => ("name", false),
            Listed::Resources => ("uri", true),
            Listed::Templates => ("uriTemplate", true),
        }
    }

    /// The resource type label of metrics and the `mcp` CEL attribute.
    pub fn resource_type(self) -> &'static str {
        match self {
            Listed::Tools => "tool",
            Listed::Prompts => "prompt",
            Listed::Resources | Listed::Templates => "resource",
        }
    }
}

/// Target names of one backend, and whether names carry them.
#[derive(Debug, Clone)]
pub struct Naming {
    pub prefix: bool,
    targets: Vec<String>,
}

impl Naming {
    pub fn new(prefix: bool, targets: Vec<String>) -> Self {
        Self { prefix, targets }
    }

    pub fn name(&self, target: &str, name: &str) -> String {
        if self.prefix {
            format!("{target}_{name}")
        } else {
            name.to_string()
        }
    }

    pub fn uri(&self, target: &str, uri: &str) -> String {
        if self.prefix {
            format!("{target}+{uri}")
        } else {
            uri.to_string()
        }
    }

    /// `(target index, original name)` of a prefixed name.
    pub fn resolve_name<'a>(&self, name: &'a str) -> Option<(usize, &'a str)> {
        self.resolve(name, '_')
    }

    pub fn resolve_uri<'a>(&self, uri: &'a str) -> Option<(usize, &'a str)> {
        self.resolve(uri, '+')
    }

    fn resolve<'a>(&self, s: &'a str, sep: char) -> Option<(usize, &'a str)> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                s.len() > t.len() + 1 && s.starts_with(t.as_str()) && s[t.len()..].starts_with(sep)
            })
            .max_by_key(|(_, t)| t.len())
            .map(|(i, t)| (i, &s[t.len() + 1..]))
    }

    /// Renames the items of one target's list result in place.
    pub fn expose_items(&self, what: Listed, target: &str, items: &mut [Value]) {
        if !self.prefix {
            return;
        }
        let (key, is_uri) = what.key();
        for item in items {
            if let Some(Value::String(v)) = item.get_mut(key) {
                *v = if is_uri {
                    self.uri(target, v)
                } else {
                    self.name(target, v)
                };
            }
        }
    }
}

/// The virtual server's cursor: the targets with more pages and each one's cursor (`None`
/// for a target whose first page is still to come).
pub type Cursor = BTreeMap<String, Option<String>>;

pub fn encode_cursor(c: &Cursor) -> String {
    B64.encode(serde_json::to_vec(c).unwrap_or_default())
}

pub fn decode_cursor(s: &str) -> Option<Cursor> {
    serde_json::from_slice(&B64.decode(s).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefixes_and_resolves_by_longest_target() {
        let n = Naming::new(true, vec!["a".into(), "a-b".into(), "docs".into()]);
        assert_eq!(n.name("docs", "search"), "docs_search");
        assert_eq!(n.resolve_name("docs_search"), Some((2, "search")));
        assert_eq!(n.resolve_name("a-b_x_y"), Some((1, "x_y")));
        assert_eq!(n.resolve_name("a_b"), Some((0, "b")));
        assert_eq!(n.resolve_name("zzz_b"), None);
        assert_eq!(n.resolve_name("docs_"), None);
        assert_eq!(n.uri("docs", "file:///x"), "docs+file:///x");
        assert_eq!(n.resolve_uri("docs+file:///x"), Some((2, "file:///x")));
        assert_eq!(n.resolve_uri("file:///x"), None);
        let mut items = vec![json!({"uri": "mem://1", "name": "one"})];
        n.expose_items(Listed::Resources, "a", &mut items);
        assert_eq!(items[0], json!({"uri": "a+mem://1", "name": "one"}));
        let flat = Naming::new(false, vec!["a".into()]);
        assert_eq!(flat.name("a", "t"), "t");
    }

    #[test]
    fn cursors_round_trip() {
        let c: Cursor = [
            ("a".to_string(), Some("p2".to_string())),
            ("b".to_string(), None),
        ]
        .into_iter()
        .collect();
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("!!"), None);
    }
}
