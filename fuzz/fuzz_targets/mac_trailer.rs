//! Fuzz MAC trailers (RFC 5905 §7.3 / RFC 7822 §7.5 with chrony's key types): the first input
//! octet picks a key type, the next ones are the key material, the rest is a datagram.
//! Decoding and verifying any datagram never panics, a crypto-NAK never verifies, a MAC only
//! verifies when its octets are exactly the key's digest of the authenticated part; and the
//! datagram re-signed with the key decodes with that key ID and verifies, while the same
//! trailer with one bit flipped or truncated by one octet does not.
#![no_main]

use gnomon_core::auth::{Key, KeyType, MAX_DIGEST_LEN};
use gnomon_wire::Packet;
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 11] = [
    "MD5", "SHA1", "SHA256", "SHA384", "SHA512", "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512",
    "AES128", "AES256",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some(key_type) = KeyType::from_name(TYPES[usize::from(pick) % TYPES.len()]) else {
        return;
    };
    let klen = key_type
        .cipher_key_len()
        .unwrap_or(usize::from(pick >> 4) + 1);
    if rest.len() < klen {
        return;
    }
    let (material, datagram) = rest.split_at(klen);
    let id = u32::from(pick) + 1;
    let Ok(key) = Key::new(id, key_type, material.to_vec()) else {
        return;
    };
    let Ok(packet) = Packet::decode(datagram) else {
        return;
    };
    let body = packet.authenticated_part(datagram);
    let version = packet.header.version;
    if let Some(mac) = packet.mac {
        let ok = key.verify(body, version, mac.digest);
        if mac.is_crypto_nak() {
            assert!(!ok, "a crypto-NAK verified");
        }
        let mut expected = [0u8; MAX_DIGEST_LEN];
        let n = key.sign(body, version, &mut expected);
        assert_eq!(ok, mac.digest == &expected[..n]);
    }
    // The same body signed with the key: a valid trailer.
    if !(3..=4).contains(&version) {
        return;
    }
    let mut digest = [0u8; MAX_DIGEST_LEN];
    let n = key.sign(body, version, &mut digest);
    let mut signed = body.to_vec();
    signed.extend_from_slice(&id.to_be_bytes());
    signed.extend_from_slice(&digest[..n]);
    let Ok(again) = Packet::decode(&signed) else {
        return;
    };
    let Some(mac) = again.mac else {
        return;
    };
    assert_eq!(mac.key_id, id);
    assert!(key.verify(again.authenticated_part(&signed), version, mac.digest));
    let mut flipped = signed.clone();
    if let Some(last) = flipped.last_mut() {
        *last ^= 0x80;
    }
    if let Ok(p) = Packet::decode(&flipped) {
        if let Some(m) = p.mac {
            assert!(!key.verify(p.authenticated_part(&flipped), version, m.digest));
        }
    }
    let short = &signed[..signed.len() - 1];
    if let Ok(p) = Packet::decode(short) {
        if let Some(m) = p.mac {
            assert!(
                !(m.key_id == id && key.verify(p.authenticated_part(short), version, m.digest))
            );
        }
    }
});
