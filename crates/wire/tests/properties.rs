//! Property tests: round trips and the decoder invariants the fuzz targets also check.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/invariants.rs"]
mod invariants;

use gnomon_wire::extension::{encode_extension_field_min, MIN_LAST_EXTENSION_FIELD_LEN};
use gnomon_wire::nts_ke::encode_record;
use gnomon_wire::{encode_extension_field, encode_mac, Header, NtpShort, NtpTimestamp, Packet};
use proptest::prelude::*;

/// Packets built from well-formed parts: header, extension fields and an optional MAC. These
/// reach the accepting paths that random bytes rarely hit.
fn structured_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 48]>(),
        1u8..=4,
        prop::collection::vec(
            (any::<u16>(), prop::collection::vec(any::<u8>(), 0..80)),
            0..5,
        ),
        prop::option::of((any::<u32>(), prop::sample::select(vec![16usize, 20]))),
    )
        .prop_map(|(mut head, version, fields, mac)| {
            head[0] = (head[0] & 0b1100_0111) | (version << 3);
            let mut buf = vec![0u8; 2048];
            buf[..48].copy_from_slice(&head);
            let mut n = 48;
            let count = fields.len();
            for (i, (t, value)) in fields.into_iter().enumerate() {
                // The last field of a packet without a MAC must be at least 28 octets.
                let min = if i + 1 == count && mac.is_none() {
                    MIN_LAST_EXTENSION_FIELD_LEN
                } else {
                    16
                };
                n += encode_extension_field_min(&mut buf[n..], t, &value, min).unwrap();
            }
            if let Some((key, digest_len)) = mac {
                n += encode_mac(&mut buf[n..], key, &vec![0xa5; digest_len]).unwrap();
            }
            buf.truncate(n);
            buf
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn header_encode_inverts_decode_for_any_48_bytes(bytes in any::<[u8; 48]>()) {
        let h = Header::decode(&bytes).unwrap();
        prop_assert_eq!(h.to_bytes(), bytes);
        prop_assert_eq!(Header::decode(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn packet_decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        invariants::check_packet(&bytes);
    }

    #[test]
    fn packet_decode_holds_invariants_on_aligned_v4_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 12..290).prop_map(|mut v| { v.truncate(v.len() / 4 * 4); v })
    ) {
        // Make the random bytes an NTPv4 header followed by random "fields".
        bytes.resize(bytes.len().max(48), 0);
        bytes[0] = (bytes[0] & 0b1100_0111) | (4 << 3);
        invariants::check_packet(&bytes);
    }

    #[test]
    fn structured_packets_decode_to_their_parts(buf in structured_packet()) {
        invariants::check_packet(&buf);
        if buf.len() <= Packet::MAX_LEN {
            let p = Packet::decode(&buf).unwrap();
            if p.header.version == 4 {
                // Fields come back in order with the encoded lengths.
                let lens: usize = p.extensions.iter().map(|f| f.wire_len()).sum();
                prop_assert_eq!(Header::LEN + lens + p.mac.map_or(0, |m| m.wire_len()), buf.len());
            }
        }
    }

    #[test]
    fn nts_ke_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        invariants::check_nts_ke(&bytes);
    }

    #[test]
    fn nts_ke_structured_streams_hold_invariants(
        records in prop::collection::vec((any::<bool>(), 0u16..0x8000, prop::collection::vec(any::<u8>(), 0..40)), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = vec![0u8; 8 * 44 + 4];
        let mut n = 0;
        for (critical, t, body) in &records {
            n += encode_record(&mut buf[n..], *critical, *t, body).unwrap();
        }
        n += encode_record(&mut buf[n..], true, 0, &[]).unwrap();
        buf.truncate(n);
        invariants::check_nts_ke(&buf);
        // Every prefix is either a shorter message or reported as incomplete.
        invariants::check_nts_ke(&buf[..cut.index(buf.len() + 1)]);
    }

    #[test]
    fn unix_time_round_trips_through_the_era(secs in any::<i64>(), nanos in 0u32..1_000_000_000) {
        let t = NtpTimestamp::from_unix(secs, nanos);
        prop_assert_eq!(t.to_unix(secs), (secs, nanos));
    }

    #[test]
    fn pivot_within_68_years_recovers_the_era(
        secs in -4_000_000_000i64..8_000_000_000,
        offset in -(1i64 << 31) + 1..(1i64 << 31),
        nanos in 0u32..1_000_000_000,
    ) {
        let t = NtpTimestamp::from_unix(secs, nanos);
        prop_assert_eq!(t.to_unix(secs + offset), (secs, nanos));
    }

    #[test]
    fn diff_is_antisymmetric(a in any::<u64>(), b in any::<u64>()) {
        prop_assume!(a.wrapping_sub(b) != 1 << 63);
        let (a, b) = (NtpTimestamp(a), NtpTimestamp(b));
        prop_assert_eq!(a.diff_seconds(b), -b.diff_seconds(a));
    }

    #[test]
    fn diff_matches_unix_difference_across_eras(
        start in 1_500_000_000i64..2_600_000_000,
        delta_ms in -2_000_000_000_000i64..2_000_000_000_000,
    ) {
        let a = NtpTimestamp::from_unix_f64(start as f64);
        let later = start as f64 + delta_ms as f64 / 1000.0;
        let b = NtpTimestamp::from_unix_f64(later);
        let d = b.diff_seconds(a);
        prop_assert!((d - delta_ms as f64 / 1000.0).abs() < 1e-6, "{d} vs {delta_ms} ms");
    }

    #[test]
    fn f64_conversion_round_trips_near_pivot(secs in -3e9f64..5e9) {
        let t = NtpTimestamp::from_unix_f64(secs);
        let back = t.to_unix_f64(secs as i64);
        // f64 resolution at 5e9 s is about 1e-6 s; the 32-bit fraction is 2.3e-10 s.
        prop_assert!((back - secs).abs() < 2e-6, "{secs} -> {back}");
    }

    #[test]
    fn add_seconds_then_diff_gives_the_offset(t in any::<u64>(), secs in -2.0e9f64..2.0e9) {
        let t = NtpTimestamp(t);
        prop_assert!((t.add_seconds(secs).diff_seconds(t) - secs).abs() < 1e-6);
    }

    #[test]
    fn short_format_round_trips(raw in any::<u32>()) {
        let s = NtpShort(raw);
        prop_assert_eq!(NtpShort::from_seconds(s.to_seconds()), s);
    }

    #[test]
    fn short_format_is_total(x in any::<f64>()) {
        let s = NtpShort::from_seconds(x);
        if x.is_nan() || x <= 0.0 {
            prop_assert_eq!(s, NtpShort(0));
        } else {
            prop_assert!((s.to_seconds() - x.min(65535.99998)).abs() <= 1.0 / 65536.0);
        }
    }

    #[test]
    fn extension_field_encoding_is_parsed_back(t in any::<u16>(), value in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut out = vec![0u8; 320];
        let n = encode_extension_field(&mut out, t, &value).unwrap();
        prop_assert!(n >= 16 && n % 4 == 0 && n >= value.len() + 4 && n < value.len() + 4 + 16);
        let fields = gnomon_wire::ExtensionFields::parse(&out[..n]).unwrap();
        let f = fields.iter().next().unwrap();
        prop_assert_eq!(f.field_type, t);
        prop_assert_eq!(&f.value[..value.len()], &value[..]);
        prop_assert!(f.value[value.len()..].iter().all(|&b| b == 0));
    }
}
