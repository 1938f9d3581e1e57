//! Request parameters as privacyIDEA merges them: query string, form, JSON body and path,
//! later sources winning. Values are strings; JSON numbers and booleans are converted. Only
//! the front ends read them: they parse them into the service's typed requests.

use otpgate_service::ServiceError;
use serde_json::Value;
use std::collections::BTreeMap;

/// The merged parameters of one call.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Empty parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a parameter (a later value replaces an earlier one).
    pub fn insert(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.insert(k.into(), v.into());
    }

    /// The raw value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// The value, trimmed, treating blank as absent.
    pub fn get_nonblank(&self, k: &str) -> Option<&str> {
        self.get(k).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A required value.
    pub fn required(&self, k: &str) -> Result<&str, ServiceError> {
        self.get(k).ok_or_else(|| ServiceError::missing(k))
    }

    /// privacyIDEA's truthiness: `1`, `true`, `yes`, `on` (any case).
    pub fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(is_true)
    }

    /// An integer parameter; a non-number is a parameter error naming the key.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ServiceError> {
        match self.get_nonblank(k) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ServiceError::Parameter(format!("{k} must be an integer."))),
        }
    }

    /// All parameters.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// A list parameter: a JSON list (`["a","b"]`, as a JSON body sends it) or a
    /// comma-separated string; items trimmed, blanks and repeats dropped, order kept. None when
    /// absent; `Some([])` for `[]`.
    pub fn list(&self, k: &str) -> Option<Vec<String>> {
        let raw = self.get(k)?.trim();
        let items: Vec<String> = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            _ => raw.split(',').map(str::to_owned).collect(),
        };
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for i in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            if !out.iter().any(|o| o == i) {
                out.push(i.to_owned());
            }
        }
        Some(out)
    }

    /// True if the key is present.
    pub fn contains(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    /// Removes a key (internal keys clients must not inject).
    pub fn remove(&mut self, k: &str) {
        self.0.remove(k);
    }
}

pub use otpgate_core::params::is_true;

/// privacyIDEA's event `conditions` parameter: a JSON dictionary, its values as privacyIDEA's
/// strings.
pub fn conditions(raw: Option<&str>) -> Result<BTreeMap<String, String>, ServiceError> {
    let Some(s) = raw.filter(|s| !s.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(otpgate_core::params::json_texts(m)),
        _ => Err(ServiceError::Parameter(
            "The 'conditions' parameter must be a dictionary.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_as_json_or_commas_without_blanks_or_repeats() {
        let mut p = Params::new();
        for (raw, want) in [
            ("A, B,,A", vec!["A", "B"]),
            (r#"["r1", "r2", "r1", " "]"#, vec!["r1", "r2"]),
            ("[]", vec![]),
            ("", vec![]),
            ("[not json", vec!["[not json"]),
        ] {
            p.insert("k", raw);
            assert_eq!(p.list("k").unwrap(), want, "{raw}");
        }
        assert!(p.list("absent").is_none());
    }
}
