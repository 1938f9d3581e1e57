//! privacyIDEA's request parameters from the query string and the body: a form body, or a
//! JSON object (also when the body is undeclared but parses as one). Later sources win. This
//! is the whole parser for untrusted request input, kept pure so it is property-tested and
//! fuzzed (`fuzz/fuzz_targets/params_parse.rs`).

/// Why a body cannot be read as parameters (the messages are privacyIDEA-style, for a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// `multipart/*` bodies are refused.
    #[error("multipart request bodies are not supported; send form or JSON data.")]
    Multipart,
    /// A declared JSON body that is not an object.
    #[error("The JSON body must be an object.")]
    NotAnObject,
    /// A declared JSON body that does not parse.
    #[error("The request body is not valid JSON.")]
    InvalidJson,
}

/// privacyIDEA's truthiness of parameter and config values: `1`, `true`, `yes`, `on` (any
/// case, surrounding blanks ignored).
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// A JSON value as privacyIDEA's string: strings as they are, booleans as `True` / `False`,
/// everything else as JSON text.
pub fn json_text(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Bool(b) => if b { "True" } else { "False" }.to_owned(),
        other => other.to_string(),
    }
}

/// A JSON object's members as privacyIDEA's strings ([`json_text`]).
pub fn json_texts(
    m: serde_json::Map<String, serde_json::Value>,
) -> std::collections::BTreeMap<String, String> {
    m.into_iter().map(|(k, v)| (k, json_text(v))).collect()
}

/// A JSON value as privacyIDEA's parameter string ([`json_text`]); `null` leaves the
/// parameter out.
fn json_to_param(v: serde_json::Value) -> Option<String> {
    (!v.is_null()).then(|| json_text(v))
}

/// The parameters of a request, in order (a later pair with the same key wins): the query
/// string, then the body. `content_type` is the `Content-Type` header (any case).
pub fn parse(
    query: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, ParamsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    if let Some(q) = query {
        out.extend(
            form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }
    if body.is_empty() {
        return Ok(out);
    }
    let ctype = content_type.to_ascii_lowercase();
    if ctype.starts_with("multipart/") {
        return Err(ParamsError::Multipart);
    }
    let declared_json = ctype.starts_with("application/json") || ctype.ends_with("+json");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            out.extend(
                map.into_iter()
                    .filter_map(|(k, v)| json_to_param(v).map(|v| (k, v))),
            );
        }
        Ok(_) if declared_json => return Err(ParamsError::NotAnObject),
        Err(_) if declared_json => return Err(ParamsError::InvalidJson),
        _ => {
            out.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn last<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn query_form_and_json() {
        let p = parse(
            Some("user=a&pass=1"),
            "application/x-www-form-urlencoded",
            b"pass=2&phone=%2B49",
        )
        .unwrap();
        assert_eq!(
            (last(&p, "user"), last(&p, "pass"), last(&p, "phone")),
            (Some("a"), Some("2"), Some("+49"))
        );
        let p = parse(
            None,
            "",
            br#"{"user":"a","active":true,"n":5,"x":null,"o":{"k":1}}"#,
        )
        .unwrap();
        assert_eq!(last(&p, "active"), Some("True"));
        assert_eq!(last(&p, "n"), Some("5"));
        assert_eq!(last(&p, "x"), None);
        assert_eq!(last(&p, "o"), Some(r#"{"k":1}"#));
        assert_eq!(
            parse(None, "application/json", b"[1]"),
            Err(ParamsError::NotAnObject)
        );
        assert_eq!(
            parse(None, "Application/JSON; charset=utf-8", b"{"),
            Err(ParamsError::InvalidJson)
        );
        assert_eq!(
            parse(None, "multipart/form-data; boundary=x", b"--x"),
            Err(ParamsError::Multipart)
        );
        // Undeclared non-JSON is a form; undeclared JSON that is no object is a form too.
        assert_eq!(
            parse(None, "text/plain", b"a=1").unwrap(),
            vec![("a".into(), "1".into())]
        );
        assert_eq!(
            parse(None, "", b"5").unwrap(),
            vec![("5".into(), String::new())]
        );
    }

    proptest! {
        #[test]
        fn never_panics(query in ".{0,64}", ctype in ".{0,40}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(Some(&query), &ctype, &body);
        }

        /// Any parameters, form-encoded, come back exactly, in order.
        #[test]
        fn form_round_trip(pairs in proptest::collection::vec(("[^\u{0}]{0,12}", "\\PC{0,24}"), 0..8)) {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let parsed = parse(None, "application/x-www-form-urlencoded", body.as_bytes()).unwrap();
            prop_assert_eq!(parsed, pairs);
        }

        /// A JSON object of strings gives each of its members.
        #[test]
        fn json_strings_round_trip(map in proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,24}", 0..8)) {
            let body = serde_json::to_vec(&map).unwrap();
            let parsed = parse(None, "application/json", &body).unwrap();
            prop_assert_eq!(parsed.len(), map.len());
            for (k, v) in &map {
                prop_assert_eq!(last(&parsed, k), Some(v.as_str()));
            }
        }
    }
}
