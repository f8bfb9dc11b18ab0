//! Key-file and MAC tests. The MAC vectors were computed independently (Python hashlib and
//! `cryptography`'s CMAC), with the same construction that chronyd 4.3 accepted and answered
//! on loopback for these keys (MD5 16, SHA256 20 in NTPv4, SHA512 64 in NTPv3, AES128 16).

use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    decode_hex(s).unwrap().to_vec()
}

fn packet() -> Vec<u8> {
    hex("230006ec0000000000000000000000000000000000000000000000000000000000000000000000000102030405060708")
}

const KEYS: &str = "\
1 MD5 HEX:00112233445566778899AABBCCDDEEFF
2 SHA256 HEX:00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF
3 AES128 HEX:7EA62AE64D190114D46D5A082F948EC1
4 SHA512 ASCII:secretsecret
5 SHA3-256 HEX:00112233445566778899AABBCCDDEEFF
";

fn store() -> KeyStore {
    let (s, w) = KeyStore::parse(KEYS);
    assert!(w.is_empty(), "{w:?}");
    s
}

fn digest(key: &Key, version: u8) -> Vec<u8> {
    let mut out = [0u8; MAX_DIGEST_LEN];
    let n = key.sign(&packet(), version, &mut out);
    out[..n].to_vec()
}

#[test]
fn seed_001_unexpanded_shell_substitution_lines_are_skipped_with_line_numbers() {
    // /work/shared/seeds 001: a key file written with `$(openssl rand -hex 20)` left
    // unexpanded (crates/conf/tests/seeds/001-chrony.keys).
    let (s, w) = KeyStore::parse(
        "1 SHA1 HEX:$(openssl rand -hex 20)\n2 SHA256 HEX:$(openssl rand -hex 32)\n",
    );
    assert!(s.is_empty());
    let got: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Could not parse key at line 1",
            "Could not parse key at line 2"
        ]
    );
}

#[test]
fn key_is_decoded_before_its_type_is_checked_and_unbuilt_hashes_are_unsupported() {
    // chronyd 4.3 (loopback run): decode errors win over type errors; TIGER and WHIRLPOOL are
    // "Unsupported hash function", unknown names "Invalid type".
    let (s, w) = KeyStore::parse(
        "11 sha1 HEX:zz\n12 TIGER HEX:zz\n14 BOGUS ASCII:\n\
         8 TIGER HEX:00112233445566778899AABB\n4 WHIRLPOOL ASCII:abcdefghijk\n\
         3 RMD160 HEX:00112233445566778899AABB\n",
    );
    let got: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "Could not decode key 11 at line 1",
            "Could not decode key 12 at line 2",
            "Could not decode key 14 at line 3",
            "Unsupported hash function in key 8 at line 4",
            "Unsupported hash function in key 4 at line 5",
            "Invalid type in key 3 at line 6",
        ]
    );
    assert!(s.is_empty());
}

#[test]
fn md5_mac_is_hash_of_key_then_packet() {
    let s = store();
    assert_eq!(
        digest(s.get(1).unwrap(), 4),
        hex("9cb7fa376e8252c92ebd561bab4c9c43")
    );
}

#[test]
fn sha256_is_truncated_to_20_octets_in_ntpv4_only() {
    let s = store();
    let full = hex("3edfb2b830f1b557219c1f531f654c6836d49f4556916e6e11254a31d56df04d");
    assert_eq!(digest(s.get(2).unwrap(), 4), full[..20]);
    assert_eq!(digest(s.get(2).unwrap(), 3), full);
}

#[test]
fn sha512_ascii_key_carries_64_octets_in_ntpv3() {
    let s = store();
    let full = hex("1a7f17ff336ab2cec5a7f19fb6f874b0994f8f793b0e4c56fa603f60e2093ff0a05507053d88e9dd4faeea21f596511bbd04c4cc569a0f7577ec70a613a5e4ab");
    assert_eq!(digest(s.get(4).unwrap(), 3), full);
    assert_eq!(digest(s.get(4).unwrap(), 4), full[..20]);
}

#[test]
fn aes128_cmac_matches_rfc4493_construction() {
    let s = store();
    assert_eq!(
        digest(s.get(3).unwrap(), 4),
        hex("a47460f5c32f7a4bff9e8ae889715101")
    );
}

#[test]
fn sha3_256_mac() {
    let s = store();
    let full = hex("bd2d01efa79207dfb2bbe9e56f1533f6e662891024940d3e9d722c4b343a3798");
    assert_eq!(digest(s.get(5).unwrap(), 3), full);
}

#[test]
fn verify_accepts_only_the_wire_length_for_the_version() {
    let s = store();
    let k = s.get(2).unwrap();
    let full = digest(k, 3);
    assert!(k.verify(&packet(), 4, &full[..20]));
    assert!(!k.verify(&packet(), 4, &full));
    assert!(!k.verify(&packet(), 4, &full[..16]));
    assert!(k.verify(&packet(), 3, &full));
    assert!(!k.verify(&packet(), 3, &full[..20]));
}

/// Catalogue case 12 (corrupted MAC), server side: every flipped byte, truncation to 4·k
/// octets and a different packet byte all fail.
#[test]
fn case12_corrupted_mac_never_verifies() {
    let s = store();
    for id in [1, 2, 3, 4, 5] {
        let k = s.get(id).unwrap();
        let good = digest(k, 4);
        assert!(k.verify(&packet(), 4, &good));
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(!k.verify(&packet(), 4, &bad));
            }
        }
        for len in (0..good.len()).step_by(4) {
            assert!(!k.verify(&packet(), 4, &good[..len]));
        }
        let mut p = packet();
        p[47] ^= 1;
        assert!(!k.verify(&p, 4, &good));
    }
}

/// Catalogue case 13 (skeleton key): a digest made with key 2 never verifies under key 1.
#[test]
fn case13_other_keys_digest_does_not_verify() {
    let s = store();
    let d1 = digest(s.get(1).unwrap(), 4);
    let d3 = digest(s.get(3).unwrap(), 4);
    assert!(!s.get(3).unwrap().verify(&packet(), 4, &d1));
    assert!(!s.get(1).unwrap().verify(&packet(), 4, &d3));
}

/// Catalogue case 17: the comparison goes through `subtle::ConstantTimeEq`; this checks the
/// primitive used gives the right answers on equal-length inputs differing at the first and
/// the last octet (timing is a benchmark matter, not a timed test).
#[test]
fn case17_mac_comparison_is_constant_time_eq() {
    let a = [7u8; 20];
    let mut first = a;
    first[0] = 0;
    let mut last = a;
    last[19] = 0;
    assert!(bool::from(a.ct_eq(&a)));
    assert!(!bool::from(a.ct_eq(&first)));
    assert!(!bool::from(a.ct_eq(&last)));
}

/// Catalogue case 16: each bad line warns with its line number and is skipped, valid keys
/// still load, short keys load with an "insecure" warning, a CRLF file loads.
#[test]
fn case16_key_file_bad_lines_warn_with_line_numbers() {
    let long = format!("20 MD5 ASCII:{}", "a".repeat(2048));
    let text = format!(
        "# keys\r\n\
         1 MD5 HEX:zz\r\n\
         2 SHA1 HEX:123\r\n\
         3 SHA256 HEX:\r\n\
         4 FOO HEX:0011223344556677\r\n\
         5 AES128 HEX:00112233445566778899AABBCCDDEE\r\n\
         6 MD5 HEX:00112233445566778899\r\n\
         6 MD5 HEX:FFFFFFFFFFFFFFFFFFFF\r\n\
         4294967296 MD5 HEX:00112233445566778899\r\n\
         7 MD5 HEX:001122334455667788\r\n\
         {long}\r\n\
         8 MD5 ASCII:nul\0byte\r\n\
         9 sha1 HEX:00112233445566778899\r\n\
         10\r\n\
         11 MD5 two words\r\n\
         12 AES256 HEX:{}\r\n\
         \x20 ! indented comment\r\n\
         13 abcdefghij\r\n\
         0 MD5 ASCII:zeroidkey\r\n",
        "ab".repeat(32)
    );
    let (s, w) = KeyStore::parse(&text);
    let got: Vec<(usize, KeyWarningKind)> = w.iter().map(|w| (w.line, w.kind)).collect();
    assert_eq!(
        got,
        vec![
            (2, KeyWarningKind::Undecodable { id: 1 }),
            (3, KeyWarningKind::Undecodable { id: 2 }),
            (4, KeyWarningKind::Undecodable { id: 3 }),
            (5, KeyWarningKind::InvalidType { id: 4 }),
            (
                6,
                KeyWarningKind::InvalidLength {
                    id: 5,
                    key_type: KeyType::Aes128
                }
            ),
            (8, KeyWarningKind::Duplicate { id: 6 }),
            (9, KeyWarningKind::Unparsable),
            (10, KeyWarningKind::Insecure { id: 7 }),
            (11, KeyWarningKind::Unparsable),
            (12, KeyWarningKind::Unparsable),
            (13, KeyWarningKind::InvalidType { id: 9 }),
            (14, KeyWarningKind::Unparsable),
            (15, KeyWarningKind::Unparsable),
            (19, KeyWarningKind::Insecure { id: 0 }),
        ]
    );
    let ids: Vec<u32> = s.iter().map(Key::id).collect();
    assert_eq!(ids, vec![0, 6, 7, 12, 13]);
    // The first definition of a duplicate wins.
    assert_eq!(*s.get(6).unwrap().material, hex("00112233445566778899"));
    assert!(s.get(7).unwrap().is_insecure());
    assert!(!s.get(13).unwrap().is_insecure());
    assert_eq!(s.get(13).unwrap().key_type(), KeyType::Md5);
    assert_eq!(w[0].to_string(), "Could not decode key 1 at line 2");
    assert_eq!(w[8].to_string(), "Could not parse key at line 11");
    assert_eq!(
        w[4].to_string(),
        "Invalid length of AES128 key 5 (expected 128 bits) at line 6"
    );
}

#[test]
fn debug_output_never_shows_key_material() {
    let s = store();
    let text = format!("{:?}", s);
    assert!(!text.contains("secretsecret"));
    assert!(!text.contains("115, 101, 99")); // "sec" as bytes
}

#[test]
fn key_constructor_refuses_empty_material_and_bad_aes_sizes() {
    assert_eq!(Key::new(1, KeyType::Md5, vec![]), Err(KeyError::Empty));
    assert_eq!(
        Key::new(1, KeyType::Aes256, vec![0; 16]),
        Err(KeyError::BadCipherKeyLength {
            key_type: KeyType::Aes256,
            len: 16
        })
    );
}

proptest! {
    #[test]
    fn key_file_parser_is_total(text in ".{0,400}") {
        let (store, warnings) = KeyStore::parse(&text);
        prop_assert!(store.len() + warnings.len() <= text.split('\n').count() * 2);
    }

    #[test]
    fn key_file_parser_is_total_on_structured_lines(
        lines in proptest::collection::vec(
            ("[0-9]{0,11}", prop_oneof![Just(""), Just("MD5 "), Just("AES128 "), Just("SHA512 "), Just("X ")],
             prop_oneof![Just("HEX:"), Just("ASCII:"), Just("")], "[0-9a-fA-Fz]{0,40}"),
            0..20)
    ) {
        let text: String = lines.iter().map(|(a, b, c, d)| format!("{a} {b}{c}{d}\n")).collect();
        let (store, _) = KeyStore::parse(&text);
        for k in store.iter() {
            let mut out = [0u8; MAX_DIGEST_LEN];
            let n = k.sign(b"x", 4, &mut out);
            prop_assert!(k.verify(b"x", 4, &out[..n]));
        }
    }
}
