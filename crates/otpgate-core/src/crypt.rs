//! crypt(3) password hashes, as privacyIDEA's passwd resolver checks them: sha512-crypt
//! (`$6$`), sha256-crypt (`$5$`), bcrypt (`$2a$`, `$2b$`, `$2y$`) and, for older files,
//! md5-crypt (`$1$`). DES crypt and shadow markers (`x`, `*`, `!`) never match.
//!
//! Each check costs what the hash's parameters say (sha-crypt rounds, bcrypt cost): callers
//! run it off the async runtime, as they do PIN hashes.

use crate::secret::ct_eq;
use md5::{Digest, Md5};
use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};

/// Whether `hash` is a crypt(3) hash this module checks.
pub fn is_crypt(hash: &str) -> bool {
    ["$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// Whether `password` matches the crypt(3) `hash`; false for anything that is not one of
/// the supported hashes, or not well formed.
pub fn verify(password: &str, hash: &str) -> bool {
    let hash = hash.trim();
    if hash.starts_with("$5$") || hash.starts_with("$6$") {
        PasswordHashRef::new(hash).is_ok_and(|h| {
            ShaCrypt::default()
                .verify_password(password.as_bytes(), h)
                .is_ok()
        })
    } else if hash.starts_with("$2") {
        // `$2y$` (PHP's name) is bcrypt as `$2b$` is.
        let hash = hash.replacen("$2y$", "$2b$", 1);
        bcrypt::verify(password, &hash).unwrap_or(false)
    } else if let Some(rest) = hash.strip_prefix("$1$") {
        let (salt, _) = rest.split_once('$').unwrap_or((rest, ""));
        ct_eq(&md5_crypt(password.as_bytes(), salt.as_bytes()), hash)
    } else {
        false
    }
}

const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Poul-Henning Kamp's md5-crypt: the whole `$1$salt$hash` string.
fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    let salt = salt.get(..salt.len().min(8)).unwrap_or_default();
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(alt.get(..n).unwrap_or_default());
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(password.get(..1).unwrap_or_default());
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let d = |i: usize| u32::from(digest.get(i).copied().unwrap_or_default());
    let mut out = format!("$1${}$", String::from_utf8_lossy(salt));
    let mut push = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            if let Some(c) = CRYPT64.get((v & 0x3f) as usize) {
                out.push(char::from(*c));
            }
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    push(d(11), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypt_hashes_from_openssl_glibc_and_python_verify() {
        // openssl passwd -1/-5/-6 -salt saltsalt, and Python's passlib and bcrypt.
        for (pw, hash) in [
            ("Geheim 1!", "$1$saltsalt$q08MYZkx/xm/5eSCud2EP/"),
            ("pässwörd", "$1$hOXMEdf4$BTnMV.MmPdQTuT/RSFAxd0"),
            ("x", "$1$$LP5.V3ajGqHDdXW6XwZQy."),
            (
                "Geheim 1!",
                "$5$saltsalt$CDAl98lKZGrEijUnbX5jHY5dpF9Y8uVmUUWpXFfOxX6",
            ),
            (
                "Geheim 1!",
                "$6$saltsalt$fbcac1xgxxXWXUlPI2nnFwBIvnok5utiid7KxpjmRb.dNAjRGuqeE.zyv.02ZBDHWnZ6NeSpyY.2BLSgzJnW0/",
            ),
            (
                "Geheim 1!",
                "$6$rounds=1000$85GJ5MtEpiiZ4fBu$rkHrL2OtXWpMSzXFUkeMQwWSPuJOLdyMDgyhnIIzzLQIEFlCNwt5f31f5YKMmwkPDz320nSBGwBTKxuHUTlDt1",
            ),
            (
                "pässwörd",
                "$5$rounds=12345$LqQr56NY4Cc55ltt$g0akzkX.MqfzN9RPeAN5ZocelSiDkL/julgLlDxX4W8",
            ),
            (
                "Geheim 1!",
                "$2b$04$yut13FIPoFiwnOrlwYDhkenNrdFKco7UHNpdhdc1vgHD22qIufx8q",
            ),
            (
                "Geheim 1!",
                "$2a$04$RzzOb/JeF/xC1zO9TE1.YuNPlyjoo9jxYyxGAtHMzsuwJvnCtQWha",
            ),
            (
                "Geheim 1!",
                "$2y$04$yut13FIPoFiwnOrlwYDhkenNrdFKco7UHNpdhdc1vgHD22qIufx8q",
            ),
        ] {
            assert!(is_crypt(hash), "{hash}");
            assert!(verify(pw, hash), "{pw} {hash}");
            assert!(!verify("Geheim 1", hash), "{hash}");
            assert!(!verify("", hash), "{hash}");
        }
        for junk in [
            "",
            "x",
            "*",
            "!",
            "$6$",
            "$6$salt",
            "$1$",
            "$2b$04$short",
            "abJnggxhB/yWI",
        ] {
            assert!(!verify("", junk) && !verify("x", junk), "{junk}");
        }
        assert!(!is_crypt("$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"));
    }
}
