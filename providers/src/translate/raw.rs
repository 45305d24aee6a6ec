//! A JSON object whose values are kept as raw text, in their original order, so a body can be
//! edited (model, `stream_options`) without touching any other byte of any other field.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::Error;

/// A top-level JSON object with raw values.
pub(crate) struct RawObject(Vec<(String, Box<RawValue>)>);

impl RawObject {
    /// Parses a request body; anything but a JSON object is an invalid request.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body).map_err(|e| Error::InvalidRequest(e.to_string()))
    }

    /// The value of `key` (the last one if the key repeats, as most parsers do).
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Reads `key` as `T`; `null` or absent is `None`; a wrong type is an invalid request.
    pub(crate) fn read<'a, T: Deserialize<'a>>(&'a self, key: &str) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<Option<T>>(raw.get())
                .map_err(|e| Error::InvalidRequest(format!("{key}: {e}"))),
        }
    }

    /// Sets `key` to `value`, in place of its first occurrence (other occurrences are
    /// removed), or at the end.
    pub(crate) fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let raw = serde_json::value::to_raw_value(value).map_err(Error::request)?;
        match self.0.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.0[i].1 = raw;
                let mut j = 0;
                self.0.retain(|(k, _)| {
                    j += 1;
                    j - 1 == i || k != key
                });
            }
            None => self.0.push((key.to_string(), raw)),
        }
        Ok(())
    }

    /// The object as JSON bytes.
    pub(crate) fn to_vec(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(Error::request)
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((k, v));
                }
                Ok(RawObject(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_other_bytes_and_order() {
        let body =
            br#"{"z":1.50,"model":"a","x":{"b":2,"a":1},"model":"b","n":18446744073709551616}"#;
        let mut o = RawObject::parse(body).unwrap();
        assert_eq!(o.read::<String>("model").unwrap().as_deref(), Some("b"));
        o.set("model", "c").unwrap();
        o.set("new", &true).unwrap();
        assert_eq!(
            String::from_utf8(o.to_vec().unwrap()).unwrap(),
            r#"{"z":1.50,"model":"c","x":{"b":2,"a":1},"n":18446744073709551616,"new":true}"#
        );
    }

    #[test]
    fn rejects_non_objects_and_wrong_types() {
        assert!(RawObject::parse(b"[1]").is_err());
        assert!(RawObject::parse(b"nope").is_err());
        let o = RawObject::parse(br#"{"stream":"yes"}"#).unwrap();
        assert!(o.read::<bool>("stream").is_err());
    }
}
