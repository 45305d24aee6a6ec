//! JSON schemas (tool parameters, response formats) cut down to the OpenAPI subset Gemini's
//! `Schema` accepts: Gemini rejects a request with any other keyword (`additionalProperties`,
//! `$schema`, `strict`, `$ref`, ...).
//!
//! Only known keywords are kept, recursively through `properties` (whose keys are property
//! names, never stripped), `items` and `anyOf`. Some keywords are rewritten rather than
//! dropped: local `$ref`s to `$defs`/`definitions` are inlined (a recursive reference, or one
//! past the expansion budget, becomes a plain `{"type": "object"}`); `oneOf` becomes `anyOf`;
//! `allOf` branches (pydantic wraps a described reference in one) are merged in; a string
//! `const` becomes a one-value `enum` (Gemini enums are strings: other `const`s are dropped),
//! and an `enum` of strings without a type gets `type: "string"`; a `type` array
//! (`["string", "null"]`) and a `null` branch of `anyOf` become `nullable: true`; a `null`
//! `default` is dropped.

use serde_json::{Map, Value, json};

/// Keywords of Gemini's `Schema` that are kept as they are.
const KEPT: &[&str] = &[
    "type",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

/// `format` values Gemini accepts.
const FORMATS: &[&str] = &["enum", "date-time", "int32", "int64", "float", "double"];

/// How many `$ref`s one schema may expand (a schema whose references fan out would otherwise
/// grow exponentially).
const MAX_EXPANSIONS: usize = 256;

/// `schema` with only what Gemini accepts.
pub(super) fn clean(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object);
    let mut cleaner = Cleaner {
        defs,
        stack: Vec::new(),
        expansions: 0,
    };
    cleaner.node(schema)
}

/// Cleaned tool parameters; `None` for an object schema without properties (Gemini rejects
/// an `OBJECT` with empty `properties`; a function may simply take no parameters).
pub(super) fn parameters(schema: Option<&Value>) -> Option<Value> {
    let cleaned = clean(schema?);
    let is_object = cleaned.get("type").and_then(Value::as_str) == Some("object");
    let no_properties = cleaned
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if is_object && no_properties || cleaned.as_object().is_some_and(Map::is_empty) {
        None
    } else {
        Some(cleaned)
    }
}

struct Cleaner<'a> {
    defs: Option<&'a Map<String, Value>>,
    /// References being expanded (a reference to one of them is recursive).
    stack: Vec<&'a str>,
    expansions: usize,
}

impl<'a> Cleaner<'a> {
    fn node(&mut self, schema: &'a Value) -> Value {
        let Some(obj) = schema.as_object() else {
            // `true` or anything else: no constraint.
            return json!({});
        };
        let mut out = Map::new();
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            out = match self.resolve(r) {
                Some(Value::Object(m)) => m,
                _ => object_placeholder(),
            };
        }
        for (key, value) in obj {
            match key.as_str() {
                "properties" => {
                    if let Some(props) = value.as_object() {
                        let cleaned = props
                            .iter()
                            .map(|(name, s)| (name.clone(), self.node(s)))
                            .collect();
                        out.insert(key.clone(), Value::Object(cleaned));
                    }
                }
                "items" => {
                    // Tuple form: Gemini has one item schema; take the first.
                    let item = match value {
                        Value::Array(items) => items.first(),
                        v => Some(v),
                    };
                    if let Some(item) = item {
                        let cleaned = self.node(item);
                        out.insert(key.clone(), cleaned);
                    }
                }
                "anyOf" | "oneOf" => self.any_of(value, &mut out),
                "allOf" => {
                    for part in value.as_array().into_iter().flatten() {
                        if let Value::Object(m) = self.node(part) {
                            for (k, v) in m {
                                out.entry(k).or_insert(v);
                            }
                        }
                    }
                }
                "type" => set_type(value, &mut out),
                // Gemini enums are strings only (other `const`s fall through and are dropped).
                "const" if value.is_string() => {
                    out.insert("enum".into(), json!([value]));
                }
                "format" if value.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
                    out.insert(key.clone(), value.clone());
                }
                "default" if value.is_null() => {}
                k if KEPT.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                _ => {}
            }
        }
        let string_enum = out
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|values| values.iter().all(Value::is_string));
        if string_enum && !out.contains_key("type") && !out.contains_key("anyOf") {
            out.insert("type".into(), "string".into());
        }
        Value::Object(out)
    }

    /// The cleaned target of a local reference; `None` when unknown, recursive or over budget.
    fn resolve(&mut self, reference: &'a str) -> Option<Value> {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))?;
        let target = self.defs?.get(name)?;
        if self.stack.contains(&name) || self.expansions >= MAX_EXPANSIONS {
            return None;
        }
        self.expansions += 1;
        self.stack.push(name);
        let cleaned = self.node(target);
        self.stack.pop();
        Some(cleaned)
    }

    /// `anyOf`/`oneOf`: `null` branches become `nullable`; a single branch left is merged.
    fn any_of(&mut self, value: &'a Value, out: &mut Map<String, Value>) {
        let Some(branches) = value.as_array() else {
            return;
        };
        let mut kept = Vec::new();
        for b in branches {
            if b.get("type").and_then(Value::as_str) == Some("null") {
                out.insert("nullable".into(), true.into());
            } else {
                kept.push(self.node(b));
            }
        }
        if kept.len() == 1 {
            if let Some(Value::Object(m)) = kept.pop() {
                for (k, v) in m {
                    out.entry(k).or_insert(v);
                }
            }
        } else if !kept.is_empty() {
            out.insert("anyOf".into(), Value::Array(kept));
        }
    }
}

/// A `type`, with `null` in a type array turned into `nullable`.
fn set_type(value: &Value, out: &mut Map<String, Value>) {
    let Some(types) = value.as_array() else {
        out.insert("type".into(), value.clone());
        return;
    };
    let mut rest: Vec<&Value> = Vec::new();
    for t in types {
        if t.as_str() == Some("null") {
            out.insert("nullable".into(), true.into());
        } else {
            rest.push(t);
        }
    }
    match rest.as_slice() {
        [] => {}
        [one] => {
            out.insert("type".into(), (*one).clone());
        }
        many => {
            let branches = many.iter().map(|t| json!({ "type": t })).collect();
            out.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

fn object_placeholder() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), "object".into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_unknown_keywords_but_not_property_names() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "strict": {"type": "boolean", "description": "a property named strict"},
                "additionalProperties": {"type": ["string", "null"], "format": "uri"},
                "when": {"type": "string", "format": "date-time", "examples": ["x"]},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}},
                "kind": {"const": "a"},
                "level": {"const": 3, "default": null},
                "n": {"type": "integer", "exclusiveMinimum": 0, "minimum": 1}
            },
            "required": ["strict"]
        });
        assert_eq!(
            clean(&schema),
            json!({
                "type": "object",
                "properties": {
                    "strict": {"type": "boolean", "description": "a property named strict"},
                    "additionalProperties": {"type": "string", "nullable": true},
                    "when": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "kind": {"enum": ["a"], "type": "string"},
                    "level": {},
                    "n": {"type": "integer", "minimum": 1}
                },
                "required": ["strict"]
            })
        );
    }

    #[test]
    fn refs_are_inlined_and_recursion_is_cut() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Node": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                }},
                "Color": {"type": "string", "enum": ["red", "blue"]}
            },
            "properties": {
                "root": {"$ref": "#/$defs/Node"},
                "color": {"allOf": [{"$ref": "#/$defs/Color"}], "description": "The color"},
                "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                "missing": {"$ref": "#/$defs/Nope"}
            }
        });
        let out = clean(&schema);
        let p = &out["properties"];
        assert_eq!(p["root"]["properties"]["name"], json!({"type": "string"}));
        assert_eq!(
            p["root"]["properties"]["children"]["items"],
            json!({"type": "object"})
        );
        assert_eq!(
            p["color"],
            json!({"type": "string", "enum": ["red", "blue"], "description": "The color"})
        );
        assert_eq!(p["maybe"], json!({"type": "integer", "nullable": true}));
        assert_eq!(
            p["either"],
            json!({"anyOf": [{"type": "integer"}, {"type": "string"}]})
        );
        assert_eq!(p["missing"], json!({"type": "object"}));
        assert!(out.get("$defs").is_none());
    }

    #[test]
    fn fan_out_references_stay_bounded() {
        // Each level references the next twice: 2^40 nodes if expanded naively.
        let mut defs = Map::new();
        for i in 0..40 {
            let next = format!("#/$defs/D{}", i + 1);
            defs.insert(
                format!("D{i}"),
                json!({"type": "object", "properties": {"a": {"$ref": next}, "b": {"$ref": next}}}),
            );
        }
        let schema = json!({"$defs": defs, "$ref": "#/$defs/D0"});
        let out = clean(&schema);
        assert!(out.to_string().len() < 200_000);
    }

    #[test]
    fn empty_object_parameters_are_left_out() {
        assert_eq!(parameters(None), None);
        assert_eq!(
            parameters(Some(&json!({"type": "object", "properties": {}}))),
            None
        );
        assert_eq!(
            parameters(Some(
                &json!({"type": "object", "additionalProperties": false})
            )),
            None
        );
        assert_eq!(
            parameters(Some(&json!({"type": "object", "properties": {"a": {}}}))),
            Some(json!({"type": "object", "properties": {"a": {}}}))
        );
    }
}
