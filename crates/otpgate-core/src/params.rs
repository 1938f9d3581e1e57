//! privacyIDEA's request parameters from the query string and the body: a form body, a
//! `multipart/form-data` body (privacyIDEA's PHP client sends every request so), or a JSON
//! object (also when the body is undeclared but parses as one). Later sources win. This
//! is the whole parser for untrusted request input, kept pure so it is property-tested and
//! fuzzed (`fuzz/fuzz_targets/params_parse.rs`).

/// Why a body cannot be read as parameters (the messages are privacyIDEA-style, for a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// A `multipart/form-data` body that cannot be read; the text says why.
    #[error("The multipart body is malformed: {0}.")]
    Multipart(&'static str),
    /// A declared JSON body that is not an object.
    #[error("The JSON body must be an object.")]
    NotAnObject,
    /// A declared JSON body that does not parse.
    #[error("The request body is not valid JSON.")]
    InvalidJson,
    /// A name or value with a NUL character (no text column of either database stores one).
    #[error("Parameters must not contain NUL characters.")]
    Nul,
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
    let out = parse_sources(query, content_type, body)?;
    if out
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(ParamsError::Nul);
    }
    Ok(out)
}

fn parse_sources(
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
        out.extend(multipart(content_type, body)?);
        return Ok(out);
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

/// The value of a `Content-Type` parameter (`boundary`), quoted or not.
fn content_type_param<'a>(content_type: &'a str, name: &str) -> Option<&'a str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` and whether the part
/// is a file (`filename=`). Quoted values may hold `;` and backslash escapes.
fn disposition(value: &str) -> Result<(Option<String>, bool), ParamsError> {
    let mut rest = value.trim_start();
    let kind_end = rest.find(';').unwrap_or(rest.len());
    let kind = rest.get(..kind_end).unwrap_or_default().trim();
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(ParamsError::Multipart("a part is not form-data"));
    }
    rest = rest.get(kind_end..).unwrap_or_default();
    let (mut name, mut file) = (None, false);
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok((name, file));
        }
        let eq = rest.find('=').ok_or(ParamsError::Multipart(
            "a part header parameter has no value",
        ))?;
        let key = rest
            .get(..eq)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        rest = rest.get(eq + 1..).unwrap_or_default().trim_start();
        let mut val = String::new();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            val.push(e);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => val.push(c),
                }
            }
            let end = end.ok_or(ParamsError::Multipart(
                "a quoted part header value is not closed",
            ))?;
            rest = quoted.get(end..).unwrap_or_default();
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            val = rest.get(..end).unwrap_or_default().trim().to_owned();
            rest = rest.get(end..).unwrap_or_default();
        }
        match key.as_str() {
            "name" => name = Some(val),
            "filename" | "filename*" => file = true,
            _ => {}
        }
    }
}

/// `multipart/form-data` (RFC 7578) as parameters, in order. Parts that carry a file are left
/// out: privacyIDEA reads its parameters from the form fields only. Values are UTF-8 (invalid
/// bytes replaced, as privacyIDEA's web framework does).
fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, ParamsError> {
    let boundary = content_type_param(content_type, "boundary")
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or(ParamsError::Multipart("the Content-Type names no boundary"))?;
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let next_delimiter = [b"\r\n--", boundary.as_bytes()].concat();
    // The first delimiter opens the body, or ends a preamble line.
    let mut at = if body.starts_with(&delimiter) {
        delimiter.len()
    } else {
        find(body, &next_delimiter).ok_or(ParamsError::Multipart(
            "the boundary does not occur in the body",
        ))? + next_delimiter.len()
    };
    let mut out = Vec::new();
    loop {
        let rest = body.get(at..).unwrap_or_default();
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        // Transport padding, then the line break that ends the delimiter line.
        let pad = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        let rest = rest
            .get(pad..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or(ParamsError::Multipart(
                "a boundary line does not end in CRLF",
            ))?;
        let end = find(rest, &next_delimiter).ok_or(ParamsError::Multipart(
            "the body ends before its closing boundary",
        ))?;
        let part = rest.get(..end).unwrap_or_default();
        at = body.len() - rest.len() + end + next_delimiter.len();
        let (head, value) = match find(part, b"\r\n\r\n") {
            Some(i) => (
                part.get(..i).unwrap_or_default(),
                part.get(i + 4..).unwrap_or_default(),
            ),
            None if part.starts_with(b"\r\n") => (&[][..], part.get(2..).unwrap_or_default()),
            None => {
                return Err(ParamsError::Multipart(
                    "a part has no blank line after its headers",
                ));
            }
        };
        let mut field = None;
        for line in String::from_utf8_lossy(head).split("\r\n") {
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-disposition")
            {
                field = Some(disposition(v)?);
            }
        }
        match field {
            Some((Some(name), false)) => {
                out.push((name, String::from_utf8_lossy(value).into_owned()))
            }
            Some((_, true)) => {}
            _ => return Err(ParamsError::Multipart("a part has no field name")),
        }
    }
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
        assert!(matches!(
            parse(None, "multipart/form-data; boundary=x", b"--x"),
            Err(ParamsError::Multipart(_))
        ));
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

    /// A multipart body as a PHP or browser client builds it.
    fn multipart_body(boundary: &str, parts: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in parts {
            b.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        b
    }

    #[test]
    fn multipart_form_data() {
        let body = multipart_body(
            "----abc",
            &[("user", "alice"), ("pass", "12 34\r\nx"), ("e", "")],
        );
        let p = parse(
            Some("user=q&realm=r"),
            "multipart/form-data; boundary=----abc",
            &body,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                ("user".into(), "q".into()),
                ("realm".into(), "r".into()),
                ("user".into(), "alice".into()),
                ("pass".into(), "12 34\r\nx".into()),
                ("e".into(), String::new()),
            ]
        );
        // A quoted boundary, a preamble and an epilogue, a part Content-Type, an escaped
        // name with a semicolon, and a file part (left out).
        let body = b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\ncontent-disposition: form-data; name=\"a\\\"b;c\"\r\n\r\nv\r\n--b1\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\r\nfile\r\n--b1--\r\nepilogue";
        assert_eq!(
            parse(
                None,
                "Multipart/Form-Data; charset=utf-8; boundary=\"b1\"",
                body
            )
            .unwrap(),
            vec![("a\"b;c".into(), "v".into())]
        );
        for (ctype, body, why) in [
            ("multipart/form-data", &b"--x\r\n"[..], "names no boundary"),
            (
                "multipart/form-data; boundary=y",
                b"--x\r\n",
                "does not occur",
            ),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
                "closing boundary",
            ),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\n\r\nv\r\n--x--",
                "no field name",
            ),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--x--",
                "not form-data",
            ),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--x--",
                "not closed",
            ),
            ("multipart/form-data; boundary=x", b"--xjunk", "CRLF"),
        ] {
            let e = parse(None, ctype, body).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    proptest! {
        /// Any fields, sent as multipart the way clients send them, come back exactly.
        #[test]
        fn multipart_round_trip(pairs in proptest::collection::vec(("[a-z_.]{1,12}", "[^\u{0}]{0,40}"), 0..8)) {
            let boundary = "------------------------7c4a2b9e01d3f5a8";
            let parts: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let body = multipart_body(boundary, &parts);
            let parsed = parse(None, &format!("multipart/form-data; boundary={boundary}"), &body).unwrap();
            prop_assert_eq!(parsed, pairs);
        }

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
