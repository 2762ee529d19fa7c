//! Docker's `filters` query parameter: `{"key":["v1","v2"]}` or the older `{"key":{"v1":true}}`.

use std::collections::BTreeMap;

use super::error::ApiError;

/// Most filter values a request may carry; a bound on what a client can make us hold.
const MAX_FILTER_VALUES: usize = 256;

/// Parsed filters: key -> values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the JSON of a `filters` parameter; an empty string means no filters.
    pub(crate) fn parse(raw: &str) -> Result<Filters, ApiError> {
        let mut out = BTreeMap::new();
        if raw.trim().is_empty() {
            return Ok(Filters(out));
        }
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request(
                "invalid filters: expected a JSON object",
            ));
        };
        let mut count = 0usize;
        for (key, values) in map {
            let list: Vec<String> = match values {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(ApiError::bad_request(format!(
                            "invalid filters: values of {key:?} must be strings"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(v, _)| v)
                    .collect(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filters: bad value for {key:?}"
                    )))
                }
            };
            count += list.len();
            if count > MAX_FILTER_VALUES {
                return Err(ApiError::bad_request(format!(
                    "invalid filters: more than {MAX_FILTER_VALUES} values"
                )));
            }
            out.insert(key, list);
        }
        Ok(Filters(out))
    }

    pub(crate) fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub(crate) fn add(&mut self, key: &str, value: &str) {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }

    /// Refuses keys this endpoint does not know, with dockerd's message.
    pub(crate) fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// True when the key is absent, or one of its values equals `source`.
    pub(crate) fn exact_match(&self, key: &str, source: &str) -> bool {
        match self.0.get(key) {
            None => true,
            Some(values) => values.iter().any(|v| v == source),
        }
    }

    /// True when the key is absent, or one of its values equals or prefixes `source`.
    pub(crate) fn fuzzy_match(&self, key: &str, source: &str) -> bool {
        match self.0.get(key) {
            None => true,
            Some(values) => values.iter().any(|v| source.starts_with(v.as_str())),
        }
    }

    /// `label=key` / `label=key=value` filters: every one must match the attributes.
    pub(crate) fn match_kv(&self, key: &str, attributes: &BTreeMap<String, String>) -> bool {
        self.get(key).iter().all(|f| match f.split_once('=') {
            Some((k, v)) => attributes.get(k).is_some_and(|a| a == v),
            None => attributes.contains_key(f.as_str()),
        })
    }

    /// A boolean filter (`dangling=true`), refusing anything but true/false/1/0.
    pub(crate) fn bool_value(&self, key: &str) -> Result<Option<bool>, ApiError> {
        let values = self.get(key);
        let mut result = None;
        for v in values {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::bad_request(format!("invalid filter '{key}={v}'"))),
            };
            if result.is_some_and(|r| r != b) {
                return Err(ApiError::bad_request(format!(
                    "invalid filter '{key}': conflicting values"
                )));
            }
            result = Some(b);
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        type Parsed<'a> = Result<Vec<(&'a str, Vec<&'a str>)>, &'a str>;
        let cases: &[(&str, Parsed)] = &[
            ("", Ok(vec![])),
            (
                r#"{"type":["image"],"event":["tag","untag"]}"#,
                Ok(vec![
                    ("event", vec!["tag", "untag"]),
                    ("type", vec!["image"]),
                ]),
            ),
            (
                r#"{"dangling":{"true":true,"false":false}}"#,
                Ok(vec![("dangling", vec!["true"])]),
            ),
            (
                "garbage",
                Err("invalid filters: expected value at line 1 column 1"),
            ),
            ("[1]", Err("invalid filters: expected a JSON object")),
            (
                r#"{"type":[1]}"#,
                Err("invalid filters: values of \"type\" must be strings"),
            ),
            (
                r#"{"type":"image"}"#,
                Err("invalid filters: bad value for \"type\""),
            ),
        ];
        for (raw, want) in cases {
            let got = Filters::parse(raw).map_err(|e| e.message);
            let want = want
                .clone()
                .map(|v| {
                    Filters(
                        v.into_iter()
                            .map(|(k, vs)| {
                                (k.to_string(), vs.into_iter().map(String::from).collect())
                            })
                            .collect(),
                    )
                })
                .map_err(String::from);
            assert_eq!(got, want, "raw {raw:?}");
        }
    }

    #[test]
    fn matching() {
        let f =
            Filters::parse(r#"{"label":["a","b=2"],"container":["ab"],"type":["image"]}"#).unwrap();
        let attrs = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(f.match_kv("label", &attrs(&[("a", "x"), ("b", "2")])));
        assert!(!f.match_kv("label", &attrs(&[("a", "x"), ("b", "3")])));
        assert!(!f.match_kv("label", &attrs(&[("b", "2")])));
        assert!(f.fuzzy_match("container", "abcdef"));
        assert!(!f.fuzzy_match("container", "bcd"));
        assert!(f.exact_match("type", "image") && !f.exact_match("type", "container"));
        assert!(f.exact_match("absent", "anything"));
        assert_eq!(f.only(&["label", "container", "type"]), Ok(()));
        assert_eq!(
            f.only(&["label"]).unwrap_err().message,
            "invalid filter 'container'"
        );
        let d = Filters::parse(r#"{"dangling":["TRUE"]}"#).unwrap();
        assert_eq!(d.bool_value("dangling").unwrap(), Some(true));
        assert!(Filters::parse(r#"{"dangling":["maybe"]}"#)
            .unwrap()
            .bool_value("dangling")
            .is_err());
    }
}
