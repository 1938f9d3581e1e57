//! The stylesheet, script and icon, embedded in the binary and served under names that carry
//! a hash of their content (`app.3f2a…css`), so browsers may keep them for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

struct Asset {
    stem: &'static str,
    ext: &'static str,
    mime: &'static str,
    body: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset {
        stem: "app",
        ext: "css",
        mime: "text/css; charset=utf-8",
        body: include_str!("../../assets/app.css"),
    },
    Asset {
        stem: "app",
        ext: "js",
        mime: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/app.js"),
    },
    Asset {
        stem: "icon",
        ext: "svg",
        mime: "image/svg+xml",
        body: include_str!("../../assets/icon.svg"),
    },
];

fn names() -> &'static [String; 3] {
    static NAMES: OnceLock<[String; 3]> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS.each_ref().map(|a| {
            let hash = Sha256::digest(a.body.as_bytes());
            let short: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
            format!("{}.{short}.{}", a.stem, a.ext)
        })
    })
}

/// The URL of an asset by file name (`app.css`).
pub fn url(file: &str) -> String {
    ASSETS
        .iter()
        .zip(names())
        .find(|(a, _)| format!("{}.{}", a.stem, a.ext) == file)
        .map(|(_, n)| format!("/ui/assets/{n}"))
        .unwrap_or_default()
}

/// `GET /ui/assets/{name}`: only the current hashed names exist.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some((asset, _)) = ASSETS.iter().zip(names()).find(|(_, n)| **n == name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut r = asset.body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash() {
        let css = url("app.css");
        assert!(
            css.starts_with("/ui/assets/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/ui/assets/app.0123456789.css".len());
        assert!(url("nope.css").is_empty());
    }

    #[test]
    fn assets_hold_no_inline_handlers() {
        // The CSP forbids inline script; the script must not build markup from strings.
        let js = ASSETS.iter().find(|a| a.ext == "js").map(|a| a.body);
        let js = js.unwrap_or_default();
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "eval(",
            "document.write",
        ] {
            assert!(!js.contains(banned), "app.js uses {banned}");
        }
    }
}
