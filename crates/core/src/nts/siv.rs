//! AEAD_AES_SIV_CMAC_256 (RFC 5297 §2.4–2.7; AEAD algorithm 15 of RFC 5116 as NTS uses it)
//! with the key schedules kept, for the server's per-packet path.
//!
//! The `aes-siv` crate expands the CTR key (encryption and decryption round keys) on every
//! call and recomputes CMAC(K, 0¹²⁸) each time; a server sealing cookies with the same four
//! keys for a week pays that on every response. [`SivKey`] expands both halves once
//! (encryption round keys only: SIV never runs AES backwards), keeps the first S2V value, and
//! encrypts and decrypts in place without allocating. Output is byte-identical to RFC 5297
//! (checked against its Appendix A.1 vector and against `aes-siv` in the tests).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128Enc;

/// Key length (two AES-128 keys: CMAC first, CTR second).
pub const SIV_KEY_LEN: usize = 32;
/// Length of the synthetic IV / tag.
pub const SIV_TAG_LEN: usize = 16;
/// RFC 5297 §2.6: at most 126 associated-data components (plus the nonce-less plaintext).
const MAX_HEADERS: usize = 126;
/// Counter blocks encrypted per AES call (AES-NI pipelines several blocks).
const CTR_BATCH: usize = 8;

type Block = [u8; 16];

/// One AES-SIV-CMAC-256 key, expanded.
///
/// CMAC (RFC 4493) is computed here over the expanded cipher rather than with the `cmac`
/// crate: its MAC state embeds the cipher, and cloning that (about a kilobyte with the
/// software fallback's round keys) for each of the four CMACs of an S2V cost more than the
/// AES itself.
#[derive(Clone)]
pub struct SivKey {
    mac: Aes128Enc,
    /// CMAC subkeys K1 and K2 (RFC 4493 §2.3).
    k1: Block,
    k2: Block,
    ctr: Aes128Enc,
    /// CMAC(K1, 0¹²⁸), the constant start of every S2V.
    zero_mac: Block,
}

/// The tag does not match: the message was not sealed with this key and these headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SivError;

impl std::fmt::Display for SivError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AES-SIV authentication failed")
    }
}

impl std::error::Error for SivError {}

/// RFC 5297 §2.3 doubling in GF(2¹²⁸) (RFC 4493's subkey step is the same operation).
fn dbl(b: Block) -> Block {
    let v = u128::from_be_bytes(b);
    let carry = if v >> 127 == 1 { 0x87 } else { 0 };
    ((v << 1) ^ carry).to_be_bytes()
}

fn xor(a: Block, b: &[u8]) -> Block {
    let mut out = a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

fn encrypt(cipher: &Aes128Enc, block: Block) -> Block {
    let mut b = aes::Block::from(block);
    cipher.encrypt_block(&mut b);
    b.into()
}

impl SivKey {
    /// Expands `key` (first half CMAC, second half CTR, RFC 5297 §2.6).
    pub fn new(key: &[u8; SIV_KEY_LEN]) -> SivKey {
        let (k_mac, k_ctr) = key.split_at(SIV_KEY_LEN / 2);
        let mac = Aes128Enc::new(k_mac.into());
        let k1 = dbl(encrypt(&mac, [0; 16]));
        let k2 = dbl(k1);
        let mut key = SivKey {
            mac,
            k1,
            k2,
            ctr: Aes128Enc::new(k_ctr.into()),
            zero_mac: [0; 16],
        };
        key.zero_mac = key.cmac(&[&[0; 16]]);
        key
    }

    /// CMAC (RFC 4493 §2.4) of the concatenation of `parts`.
    fn cmac(&self, parts: &[&[u8]]) -> Block {
        let mut x = [0u8; 16];
        let mut buf = [0u8; 16];
        let mut n = 0;
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                // A full buffer is processed only once more data shows it is not the last.
                if n == 16 {
                    x = encrypt(&self.mac, xor(x, &buf));
                    n = 0;
                }
                let take = (16 - n).min(rest.len());
                buf[n..n + take].copy_from_slice(&rest[..take]);
                n += take;
                rest = &rest[take..];
            }
        }
        let last = if n == 16 {
            xor(buf, &self.k1)
        } else {
            buf[n] = 0x80;
            buf[n + 1..].fill(0);
            xor(buf, &self.k2)
        };
        encrypt(&self.mac, xor(x, &last))
    }

    /// S2V over the headers and the plaintext (RFC 5297 §2.4).
    fn s2v(&self, headers: &[&[u8]], plaintext: &[u8]) -> Result<Block, SivError> {
        if headers.len() > MAX_HEADERS {
            return Err(SivError);
        }
        let mut d = self.zero_mac;
        for h in headers {
            d = xor(dbl(d), &self.cmac(&[h]));
        }
        Ok(match plaintext.len().checked_sub(16) {
            Some(n) => {
                let (head, tail) = plaintext.split_at(n);
                let t = xor(d, tail);
                self.cmac(&[head, &t])
            }
            None => {
                let mut t = xor(dbl(d), plaintext);
                t[plaintext.len()] ^= 0x80;
                self.cmac(&[&t])
            }
        })
    }

    /// XORs `msg` with the CTR keystream from the synthetic IV (§2.5: bits 63 and 31 cleared).
    fn apply_keystream(&self, tag: &Block, msg: &mut [u8]) {
        let mut iv = *tag;
        iv[8] &= 0x7f;
        iv[12] &= 0x7f;
        let mut counter = u128::from_be_bytes(iv);
        for chunk in msg.chunks_mut(16 * CTR_BATCH) {
            let n = chunk.len().div_ceil(16);
            let mut blocks = [aes::Block::default(); CTR_BATCH];
            for b in blocks.iter_mut().take(n) {
                b.copy_from_slice(&counter.to_be_bytes());
                counter = counter.wrapping_add(1);
            }
            let blocks = &mut blocks[..n];
            self.ctr.encrypt_blocks(blocks);
            for (part, ks) in chunk.chunks_mut(16).zip(blocks.iter()) {
                for (o, k) in part.iter_mut().zip(ks.iter()) {
                    *o ^= k;
                }
            }
        }
    }

    /// Encrypts `buf` in place and returns the tag (the ciphertext on the wire is tag ‖ buf).
    /// Fails only with more than 126 headers.
    pub fn seal_in_place(&self, headers: &[&[u8]], buf: &mut [u8]) -> Result<Block, SivError> {
        let tag = self.s2v(headers, buf)?;
        self.apply_keystream(&tag, buf);
        Ok(tag)
    }

    /// Decrypts `buf` in place if `tag` authenticates it; on failure `buf` is left as it was
    /// (re-encrypted, so no unauthenticated plaintext is exposed).
    pub fn open_in_place(
        &self,
        headers: &[&[u8]],
        buf: &mut [u8],
        tag: &Block,
    ) -> Result<(), SivError> {
        self.apply_keystream(tag, buf);
        let ok = match self.s2v(headers, buf) {
            Ok(t) => subtle::ConstantTimeEq::ct_eq(&t[..], &tag[..]).into(),
            Err(_) => false,
        };
        if ok {
            Ok(())
        } else {
            self.apply_keystream(tag, buf);
            Err(SivError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_siv::siv::Aes128Siv;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5297 Appendix A.1 (deterministic authenticated encryption).
    #[test]
    fn rfc5297_a1_vector() {
        let key: [u8; 32] = hex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .try_into()
            .unwrap();
        let ad = hex("101112131415161718191a1b1c1d1e1f2021222324252627");
        let mut pt = hex("112233445566778899aabbccddee");
        let k = SivKey::new(&key);
        let tag = k.seal_in_place(&[&ad], &mut pt).unwrap();
        assert_eq!(tag.to_vec(), hex("85632d07c6e8f37f950acd320a2ecc93"));
        assert_eq!(pt, hex("40c02b9690c4dc04daef7f6afe5c"));
        k.open_in_place(&[&ad], &mut pt, &tag).unwrap();
        assert_eq!(pt, hex("112233445566778899aabbccddee"));
    }

    /// RFC 4493 §4 examples (CMAC of 0, 16, 40 and 64 octets), whole and split in parts.
    #[test]
    fn cmac_matches_rfc4493_examples() {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&hex("2b7e151628aed2a6abf7158809cf4f3c"));
        let k = SivKey::new(&key);
        let m = hex(
            "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
             30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
        );
        for (len, mac) in [
            (0, "bb1d6929e95937287fa37d129b756746"),
            (16, "070a16b46b4d4144f79bdd9dd04a287c"),
            (40, "dfa66747de9ae63030ca32611497c827"),
            (64, "51f0bebf7e3b9d92fc49741779363cfe"),
        ] {
            assert_eq!(k.cmac(&[&m[..len]]).to_vec(), hex(mac), "length {len}");
            for cut in 0..=len {
                let (a, b) = m[..len].split_at(cut);
                assert_eq!(k.cmac(&[a, b]).to_vec(), hex(mac), "length {len} cut {cut}");
            }
        }
    }

    #[test]
    fn matches_aes_siv_crate_for_all_lengths_and_header_counts() {
        let key: [u8; 32] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let k = SivKey::new(&key);
        let h1: Vec<u8> = (0..61).map(|i| i as u8).collect();
        let h2: Vec<u8> = (0..16).map(|i| (i * 3) as u8).collect();
        for len in 0..300 {
            let pt: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            for headers in [&[][..], &[&h1[..]][..], &[&h1[..], &h2[..]][..]] {
                let mut reference = Aes128Siv::new(&key.into());
                let expected = reference.encrypt(headers, &pt).unwrap();
                let mut buf = pt.clone();
                let tag = k.seal_in_place(headers, &mut buf).unwrap();
                assert_eq!(&expected[..16], &tag[..], "tag len {len}");
                assert_eq!(&expected[16..], &buf[..], "ciphertext len {len}");
            }
        }
    }

    #[test]
    fn any_changed_octet_fails_and_leaves_the_ciphertext() {
        let k = SivKey::new(&[9; 32]);
        let mut buf = *b"forty octets of plaintext to be sealed.!";
        let tag = k.seal_in_place(&[b"ad"], &mut buf).unwrap();
        let sealed = buf;
        for i in 0..buf.len() {
            let mut bad = sealed;
            bad[i] ^= 1;
            let copy = bad;
            assert_eq!(k.open_in_place(&[b"ad"], &mut bad, &tag), Err(SivError));
            assert_eq!(bad, copy, "octet {i}");
        }
        let mut bad_tag = tag;
        bad_tag[15] ^= 1;
        let mut b = sealed;
        assert!(k.open_in_place(&[b"ad"], &mut b, &bad_tag).is_err());
        assert!(k.open_in_place(&[b"ae"], &mut b, &tag).is_err());
        k.open_in_place(&[b"ad"], &mut b, &tag).unwrap();
        assert_eq!(&b, b"forty octets of plaintext to be sealed.!");
    }

    #[test]
    fn too_many_headers_are_refused() {
        let k = SivKey::new(&[1; 32]);
        let headers = vec![&b"x"[..]; 127];
        assert_eq!(k.seal_in_place(&headers, &mut []), Err(SivError));
    }
}
