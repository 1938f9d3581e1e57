//! HS256 JSON Web Tokens (RFC 7519) for `/auth`: the only algorithm accepted is HS256, so
//! `alg: none` and algorithm confusion are impossible. Verification is constant time.

use crate::CoreError;
use crate::error::JwtError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

type HmacSha256 = Hmac<sha2::Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn mac(secret: &[u8]) -> Result<HmacSha256, CoreError> {
    <HmacSha256 as KeyInit>::new_from_slice(secret).map_err(|_| CoreError::InvalidKey("jwt secret"))
}

/// Signs `claims` (a JSON object) with `secret`.
pub fn sign(claims: &Value, secret: &[u8]) -> Result<String, CoreError> {
    let payload = serde_json::to_vec(claims).map_err(|_| CoreError::Jwt(JwtError::Malformed))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut m = mac(secret)?;
    m.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    Ok(format!("{signing_input}.{sig}"))
}

/// Verifies `token` and returns its claims; `now` is Unix seconds, checked against `exp`.
pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<Value, CoreError> {
    let malformed = CoreError::Jwt(JwtError::Malformed);
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(CoreError::Jwt(JwtError::Malformed))?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(malformed);
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| CoreError::Jwt(JwtError::Malformed))?;
    let mut m = mac(secret)?;
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig)
        .map_err(|_| CoreError::Jwt(JwtError::BadSignature))?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(CoreError::Jwt(JwtError::Malformed))?;
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now => Ok(claims),
        Some(_) => Err(CoreError::Jwt(JwtError::Expired)),
        None => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7515_a1_signature_verifies() {
        // RFC 7515 Appendix A.1 (its header differs from ours, the HMAC is the same).
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(verify(token, &key, 1_300_000_000).unwrap()["iss"], "joe");
        assert_eq!(
            verify(token, &key, 1_400_000_000).unwrap_err(),
            CoreError::Jwt(JwtError::Expired)
        );
    }

    #[test]
    fn sign_verify_and_tamper() {
        let t = sign(
            &json!({"username":"admin","role":"admin","exp":2000}),
            b"secret",
        )
        .unwrap();
        assert_eq!(verify(&t, b"secret", 1000).unwrap()["role"], "admin");
        assert_eq!(
            verify(&t, b"other", 1000).unwrap_err(),
            CoreError::Jwt(JwtError::BadSignature)
        );
        let mut forged = t.clone();
        forged.push('A');
        assert!(verify(&forged, b"secret", 1000).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(r#"{"role":"admin","exp":9999999999}"#);
        assert_eq!(
            verify(&format!("{h}.{p}."), b"s", 0).unwrap_err(),
            CoreError::Jwt(JwtError::Malformed)
        );
        assert!(verify("garbage", b"s", 0).is_err());
        assert!(verify("a.b.c.d", b"s", 0).is_err());
    }
}
