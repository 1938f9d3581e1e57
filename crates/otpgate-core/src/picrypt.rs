//! privacyIDEA's encryption at rest, read-only, for the import of a privacyIDEA installation.
//!
//! privacyIDEA's default security module keeps three AES-256 keys in its key file
//! (`PI_ENCFILE`, 96 bytes): slot 0 for token seeds and encrypted PINs, slot 1 for
//! passwords in the configuration (resolver bind passwords, SMTP passwords, RADIUS secrets),
//! slot 2 for other values. Values are AES-256-CBC with PKCS#7 padding; values written by old
//! versions were hex text ended by `\x01\x02` and zero bytes instead, which privacyIDEA still
//! reads and so does this module. Token seeds are stored as hex of the ciphertext with the IV
//! in a column of its own; passwords as `hex(iv):hex(ciphertext)`.

use crate::CoreError;
use crate::secret::decode_hex;
use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, KeyInit};
use zeroize::Zeroizing;

/// The key slot of token seeds and encrypted PINs.
pub const TOKEN_SLOT: usize = 0;
/// The key slot of passwords in the configuration.
pub const CONFIG_SLOT: usize = 1;
/// The key slot of other values.
pub const VALUE_SLOT: usize = 2;

/// The three keys of a privacyIDEA key file.
pub struct PiKeys {
    keys: Zeroizing<[[u8; 32]; 3]>,
}

impl std::fmt::Debug for PiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiKeys(..)")
    }
}

impl PiKeys {
    /// The keys of a key file's bytes: exactly 96 bytes. privacyIDEA's password-encrypted key
    /// files (more than 100 bytes) are refused with a message that says so.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() > 100 {
            return Err(CoreError::InvalidKey(
                "the key file is password-encrypted (PI_ENCFILE_ENCRYPTED); decrypt it first \
                 with privacyIDEA's pi-manage",
            ));
        }
        if bytes.len() != 96 {
            return Err(CoreError::InvalidKey(
                "a privacyIDEA key file has 96 bytes (three AES-256 keys)",
            ));
        }
        let mut keys = Zeroizing::new([[0u8; 32]; 3]);
        for (slot, chunk) in keys.iter_mut().zip(bytes.chunks_exact(32)) {
            slot.copy_from_slice(chunk);
        }
        Ok(Self { keys })
    }

    /// Decrypts `data` (a multiple of 16 bytes) with the key of `slot` and `iv`, and removes
    /// the padding (PKCS#7, or the old `\x01\x02` end mark over hex text).
    pub fn decrypt(
        &self,
        slot: usize,
        iv: &[u8],
        data: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let key = self
            .keys
            .get(slot)
            .ok_or(CoreError::InvalidKey("no such key slot"))?;
        if iv.len() != 16 || data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(CoreError::Decrypt("not an AES-CBC value"));
        }
        let cipher =
            Aes256::new_from_slice(key).map_err(|_| CoreError::InvalidKey("AES-256 key"))?;
        let mut out = Zeroizing::new(Vec::with_capacity(data.len()));
        let mut previous: [u8; 16] = iv
            .try_into()
            .map_err(|_| CoreError::Decrypt("initialisation vector"))?;
        for chunk in data.chunks_exact(16) {
            let mut block = Array::<u8, _>::default();
            block.copy_from_slice(chunk);
            cipher.decrypt_block(&mut block);
            for (b, p) in block.iter_mut().zip(previous.iter()) {
                *b ^= p;
            }
            out.extend_from_slice(&block);
            previous.copy_from_slice(chunk);
        }
        if let Some(n) = pkcs7_len(&out) {
            out.truncate(n);
            return Ok(out);
        }
        // The old format: hex text, the end mark, zero padding.
        let end = out
            .windows(2)
            .rposition(|w| w == [1, 2])
            .unwrap_or(out.len());
        let text = out
            .get(..end)
            .ok_or(CoreError::Decrypt("padding"))?
            .to_vec();
        let text = Zeroizing::new(text);
        decode_hex(&text).ok_or(CoreError::Decrypt(
            "the value does not open with this key (wrong key file?)",
        ))
    }

    /// Decrypts a value stored as `hex(iv):hex(ciphertext)` (passwords in the configuration:
    /// `slot` [`CONFIG_SLOT`]; encrypted PINs: [`TOKEN_SLOT`]) into text.
    pub fn decrypt_value(&self, slot: usize, stored: &str) -> Result<Zeroizing<String>, CoreError> {
        let (iv, data) = stored
            .trim()
            .split_once(':')
            .ok_or(CoreError::Decrypt("not an encrypted value (iv:data)"))?;
        let iv = decode_hex(iv.as_bytes()).ok_or(CoreError::Decrypt("initialisation vector"))?;
        let data = decode_hex(data.as_bytes()).ok_or(CoreError::Decrypt("hex"))?;
        let plain = self.decrypt(slot, &iv, &data)?;
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| {
                CoreError::Decrypt("the value does not open with this key (wrong key file?)")
            })
    }

    /// A token's seed from its `key_enc` and `key_iv` columns (both hex): privacyIDEA encrypts
    /// the seed's hex text, so the plain text must be hex; anything else means the wrong key.
    pub fn token_seed(&self, key_enc: &str, key_iv: &str) -> Result<Zeroizing<Vec<u8>>, CoreError> {
        let data = decode_hex(key_enc.trim().as_bytes()).ok_or(CoreError::Decrypt("hex"))?;
        let iv = decode_hex(key_iv.trim().as_bytes()).ok_or(CoreError::Decrypt("hex"))?;
        let hex_text = self.decrypt(TOKEN_SLOT, &iv, &data)?;
        decode_hex(&hex_text).ok_or(CoreError::Decrypt(
            "the token seed does not open with this key (wrong key file?)",
        ))
    }
}

/// The length without PKCS#7 padding, when the padding is well formed.
fn pkcs7_len(data: &[u8]) -> Option<usize> {
    let n = usize::from(*data.last()?);
    if n == 0 || n > 16 || n > data.len() {
        return None;
    }
    let start = data.len() - n;
    data.get(start..)?
        .iter()
        .all(|&b| usize::from(b) == n)
        .then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key file bytes 0, 1, …, 95 and values privacyIDEA 3.14 itself wrote with it (its
    /// security module's `encrypt`, `encrypt_password`, `encrypt_pin`, and the old format).
    fn keys() -> PiKeys {
        let bytes: Vec<u8> = (0u8..96).collect();
        PiKeys::from_file_bytes(&bytes).unwrap()
    }

    #[test]
    fn opens_what_privacyidea_encrypted() {
        let k = keys();
        let seed = k
            .token_seed(
                "11ba71f56326ed33b52ff10a15f85ced54ae194b0b98cd302af793d28b6db0abc50c5671185963e3d6db378ad23e6f9b",
                "000102030405060708090a0b0c0d0e0f",
            )
            .unwrap();
        assert_eq!(seed.as_slice(), b"12345678901234567890");
        let pw = k
            .decrypt_value(
                CONFIG_SLOT,
                "c568660a90f4399f114f4b3f6683dbfe:4a39af3054a56a7668fcd0ca1973b824",
            )
            .unwrap();
        assert_eq!(pw.as_str(), "bind secret \u{fc}");
        let pin = k
            .decrypt_value(
                TOKEN_SLOT,
                "7611b5a0e8a8c3efa9f46c9e98e05158:81e2bce6d85bec2b7885b1b5026af841",
            )
            .unwrap();
        assert_eq!(pin.as_str(), "1234");
        let iv: Vec<u8> = (0u8..16).collect();
        let old = decode_hex(b"187a6af0826fa00d784a890c02b98e63cb613351fc08c04aa7fced8f838dcc56")
            .unwrap();
        assert_eq!(
            k.decrypt(VALUE_SLOT, &iv, &old).unwrap().as_slice(),
            b"old value"
        );
    }

    #[test]
    fn a_wrong_key_is_told() {
        let other = PiKeys::from_file_bytes(&[7u8; 96]).unwrap();
        let e = other
            .token_seed(
                "11ba71f56326ed33b52ff10a15f85ced54ae194b0b98cd302af793d28b6db0abc50c5671185963e3d6db378ad23e6f9b",
                "000102030405060708090a0b0c0d0e0f",
            )
            .unwrap_err();
        assert!(e.to_string().contains("wrong key file"), "{e}");
    }

    #[test]
    fn key_files_of_other_sizes_are_refused() {
        assert!(PiKeys::from_file_bytes(&[0u8; 95]).is_err());
        let e = PiKeys::from_file_bytes(&[b'a'; 200]).unwrap_err();
        assert!(e.to_string().contains("password-encrypted"), "{e}");
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let k = keys();
        assert!(k.decrypt(0, &[0u8; 15], &[0u8; 16]).is_err());
        assert!(k.decrypt(0, &[0u8; 16], &[0u8; 15]).is_err());
        assert!(k.decrypt(3, &[0u8; 16], &[0u8; 16]).is_err());
        assert!(k.decrypt_value(1, "nocolon").is_err());
        assert!(k.decrypt_value(1, "zz:00").is_err());
        assert!(k.token_seed("abc", "00").is_err());
    }

    #[test]
    fn pkcs7_is_checked_byte_by_byte() {
        assert_eq!(pkcs7_len(&[b'a', 3, 3, 3]), Some(1));
        assert_eq!(pkcs7_len(&[b'a', 2, 3, 3]), None);
        assert_eq!(pkcs7_len(&[0]), None);
        assert_eq!(pkcs7_len(&[]), None);
    }

    #[test]
    fn hex_decoding() {
        use crate::secret::decode_hex;
        assert_eq!(decode_hex(b"00ffA0").unwrap().as_slice(), &[0, 255, 160]);
        assert!(decode_hex(b"0").is_none());
        assert!(decode_hex(b"0g").is_none());
    }
}
