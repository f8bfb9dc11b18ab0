//! A whole NTP packet: header, extension fields and MAC trailer, told apart the way chrony 4.3
//! does it (RFC 5905 §7.5 as updated by RFC 7822 §7.5).
//!
//! Rules, in order (each checked by a unit test below and, for chrony 4.3, black-box against a
//! running `chronyd`):
//!
//! 1. The packet is at least the 48-octet header, a multiple of 4 octets, and at most
//!    [`Packet::MAX_LEN`] = 48 + 1024 + 68 octets (chrony's buffer: 1024 octets of extension
//!    fields plus the longest MAC; chrony answers a 1140-octet request and ignores 1144).
//! 2. The version is 1..=4; chrony ignores version 0 and 5..=7.
//! 3. NTPv1–v3 packets have no extension fields: any octets after the header are a MAC (key
//!    identifier + digest of any length, judged later by authentication).
//! 4. NTPv4, exactly 4 octets after the header holding key identifier 0: a crypto-NAK.
//! 5. Otherwise, NTPv4, repeatedly: if nothing remains, there is no MAC; if 20 or 24 octets
//!    remain (key identifier + 128- or 160-bit digest, RFC 7822 §7.5), they are the MAC; if
//!    any other amount up to 24 octets remains, the packet is malformed; otherwise an extension
//!    field starts here and must be ≥ 16 octets, a multiple of 4 and fit (RFC 7822 §3).
//!
//! A consequence of rule 5 is RFC 7822 §7.5's requirement that the last extension field of a
//! packet without a MAC be at least 28 octets: chrony 4.3 ignores a request whose only field
//! is 16, 20 or 24 octets long and answers the same request with a 28-octet field.
//!
//! Decoding borrows from the input and never allocates; encoding reproduces the input exactly.

use crate::error::DecodeError;
use crate::extension::{ExtensionFields, MIN_EXTENSION_FIELD_LEN};
use crate::header::Header;
use crate::mac::{Mac, CRYPTO_NAK_LEN, MAX_DIGEST_LEN, MAX_V4_DIGEST_LEN, MIN_DIGEST_LEN};

/// Longest MAC trailer accepted in an NTPv4 packet with extension fields (RFC 7822 §7.5).
const MAX_V4_MAC_LEN: usize = 4 + MAX_V4_DIGEST_LEN;
/// Shortest MAC trailer (key identifier + 128-bit digest).
const MIN_MAC_LEN: usize = 4 + MIN_DIGEST_LEN;

/// A decoded NTP packet borrowing its variable parts from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The 48-octet header.
    pub header: Header,
    /// Extension fields (always empty below NTPv4).
    pub extensions: ExtensionFields<'a>,
    /// The MAC trailer or crypto-NAK, if any.
    pub mac: Option<Mac<'a>>,
}

impl<'a> Packet<'a> {
    /// Largest packet accepted: header + 1024 octets of extension fields + the longest MAC
    /// (chrony's `NTP_Packet` buffer).
    pub const MAX_LEN: usize = Header::LEN + 1024 + 4 + MAX_DIGEST_LEN;

    /// A packet with a header only.
    pub fn new(header: Header) -> Packet<'static> {
        Packet {
            header,
            extensions: ExtensionFields::EMPTY,
            mac: None,
        }
    }

    /// Decodes a packet under the rules in the module documentation.
    pub fn decode(buf: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let len = buf.len();
        let Some((head, rest)) = buf.split_first_chunk::<{ Header::LEN }>() else {
            return Err(DecodeError::ShortHeader { len });
        };
        if len % 4 != 0 {
            return Err(DecodeError::UnalignedLength { len });
        }
        if len > Self::MAX_LEN {
            return Err(DecodeError::PacketTooLong { len });
        }
        let header = Header::decode_array(head);
        if !(1..=4).contains(&header.version) {
            return Err(DecodeError::UnsupportedVersion {
                version: header.version,
            });
        }
        let mut packet = Packet::new(header);
        if rest.is_empty() {
            return Ok(packet);
        }
        if header.version <= 3 {
            // Rule 3: rest is a non-empty multiple of 4, so it holds a key identifier.
            packet.mac = Mac::split(rest);
            return Ok(packet);
        }
        if rest == [0, 0, 0, 0] {
            packet.mac = Some(Mac::CRYPTO_NAK);
            return Ok(packet);
        }
        let mut parsed = 0;
        loop {
            let remaining = rest.len() - parsed;
            if remaining == 0 {
                break;
            }
            let tail = rest.get(parsed..).unwrap_or_default();
            if (MIN_MAC_LEN..=MAX_V4_MAC_LEN).contains(&remaining) {
                packet.mac = Mac::split(tail);
                break;
            }
            if remaining <= MAX_V4_MAC_LEN {
                return Err(DecodeError::InvalidTrailer {
                    offset: Header::LEN + parsed,
                });
            }
            let length = tail
                .get(2..4)
                .map_or(0, |l| u16::from_be_bytes([l[0], l[1]]));
            let field_len = usize::from(length);
            if field_len < MIN_EXTENSION_FIELD_LEN || field_len % 4 != 0 || field_len > remaining {
                return Err(DecodeError::BadExtensionLength {
                    offset: Header::LEN + parsed,
                    length,
                });
            }
            parsed += field_len;
        }
        packet.extensions = ExtensionFields::from_validated(rest.get(..parsed).unwrap_or_default());
        Ok(packet)
    }

    /// Length of the encoded packet.
    pub fn wire_len(&self) -> usize {
        Header::LEN + self.extensions.wire_len() + self.mac.map_or(0, |m| m.wire_len())
    }

    /// Encodes the packet into the start of `out` and returns its length. For any input that
    /// [`Packet::decode`] accepts, this writes the same octets back.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, DecodeError> {
        let needed = self.wire_len();
        let available = out.len();
        let Some(dst) = out.get_mut(..needed) else {
            return Err(DecodeError::BufferTooSmall { needed, available });
        };
        let (head, rest) = dst.split_at_mut(Header::LEN);
        if let Some(h) = head.first_chunk_mut::<{ Header::LEN }>() {
            self.header.encode(h);
        }
        let (ext, mac) = rest.split_at_mut(self.extensions.wire_len());
        ext.copy_from_slice(self.extensions.as_bytes());
        if let Some(m) = self.mac {
            let (id, digest) = mac.split_at_mut(4);
            id.copy_from_slice(&m.key_id.to_be_bytes());
            digest.copy_from_slice(m.digest);
        }
        Ok(needed)
    }

    /// The octets a MAC covers: everything before the trailer. `buf` must be the input this
    /// packet was decoded from.
    pub fn authenticated_part<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        let end = Header::LEN + self.extensions.wire_len();
        buf.get(..end).unwrap_or(buf)
    }

    /// True for a crypto-NAK (RFC 5905 §7.4).
    pub fn is_crypto_nak(&self) -> bool {
        self.mac.is_some_and(|m| m.is_crypto_nak())
    }
}

/// True when a trailer of `mac_len` octets directly after the header is taken as a MAC (or
/// crypto-NAK) in an NTPv4 packet: 4, 20 or 24 octets. Senders use it to choose digest
/// truncation (chrony truncates longer digests to 160 bits in NTPv4).
pub fn v4_mac_len_is_valid(mac_len: usize) -> bool {
    mac_len == CRYPTO_NAK_LEN
        || ((MIN_MAC_LEN..=MAX_V4_MAC_LEN).contains(&mac_len) && mac_len % 4 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::{encode_extension_field, encode_extension_field_min};
    use crate::mac::encode_mac;

    fn header(version: u8) -> [u8; 48] {
        let mut h = [0u8; 48];
        h[0] = (version << 3) | 3;
        h[40..48].copy_from_slice(&[0xe9, 1, 2, 3, 4, 5, 6, 7]);
        h
    }

    fn packet(version: u8, tail: &[u8]) -> Vec<u8> {
        let mut v = header(version).to_vec();
        v.extend_from_slice(tail);
        v
    }

    fn field(field_type: u16, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        encode_extension_field_min(&mut v, field_type, &[], len).unwrap();
        v
    }

    fn mac(key_id: u32, digest_len: usize) -> Vec<u8> {
        // Built by hand: NTPv3 trailers may be longer than encode_mac allows.
        let mut v = key_id.to_be_bytes().to_vec();
        v.resize(4 + digest_len, 0x5a);
        v
    }

    fn roundtrip(buf: &[u8]) -> Packet<'_> {
        let p = Packet::decode(buf).unwrap();
        let mut out = vec![0u8; buf.len()];
        assert_eq!(p.encode(&mut out), Ok(buf.len()));
        assert_eq!(out, buf);
        p
    }

    #[test]
    fn plain_header_has_no_fields_or_mac() {
        let buf = packet(4, &[]);
        let p = roundtrip(&buf);
        assert!(p.extensions.is_empty());
        assert_eq!(p.mac, None);
    }

    #[test]
    fn short_unaligned_long_and_bad_version_are_rejected() {
        assert_eq!(
            Packet::decode(&[0u8; 47]),
            Err(DecodeError::ShortHeader { len: 47 })
        );
        assert_eq!(
            Packet::decode(&packet(4, &[0, 0])),
            Err(DecodeError::UnalignedLength { len: 50 })
        );
        let long = packet(3, &vec![0u8; Packet::MAX_LEN - 48 + 4]);
        assert_eq!(
            Packet::decode(&long),
            Err(DecodeError::PacketTooLong { len: 1144 })
        );
        for version in [0, 5, 6, 7] {
            assert_eq!(
                Packet::decode(&packet(version, &[])),
                Err(DecodeError::UnsupportedVersion { version })
            );
        }
    }

    #[test]
    fn ntpv4_md5_and_sha1_macs_are_macs() {
        for digest in [16, 20] {
            let buf = packet(4, &mac(42, digest));
            let p = roundtrip(&buf);
            assert!(p.extensions.is_empty());
            let m = p.mac.unwrap();
            assert_eq!(m.key_id, 42);
            assert_eq!(m.digest.len(), digest);
            assert_eq!(p.authenticated_part(&buf), &buf[..48]);
        }
    }

    #[test]
    fn ntpv4_sha256_mac_without_fields_is_not_accepted() {
        // chrony 4.3 drops this request: 36 octets > 24 must parse as an extension field, and
        // key id 1 reads as a field of length 1.
        let buf = packet(4, &mac(1, 32));
        assert_eq!(
            Packet::decode(&buf),
            Err(DecodeError::BadExtensionLength {
                offset: 48,
                length: 1
            })
        );
    }

    #[test]
    fn ntpv3_trailer_of_any_length_is_a_mac() {
        for digest in [0, 16, 20, 32, 64, 68, 200] {
            let buf = packet(3, &mac(9, digest));
            let p = roundtrip(&buf);
            assert!(p.extensions.is_empty());
            assert_eq!(p.mac.unwrap().key_id, 9);
            assert_eq!(p.mac.unwrap().digest.len(), digest);
        }
        // Even bytes that would form an extension field in NTPv4.
        let buf = packet(2, &field(0x0104, 28));
        let p = roundtrip(&buf);
        assert!(p.extensions.is_empty());
        assert_eq!(p.mac.unwrap().key_id, 0x0104_001c);
    }

    #[test]
    fn ntpv4_crypto_nak_is_four_zero_octets() {
        let buf = packet(4, &[0, 0, 0, 0]);
        let p = roundtrip(&buf);
        assert!(p.is_crypto_nak());
        assert_eq!(
            Packet::decode(&packet(4, &[0, 0, 0, 1])),
            Err(DecodeError::InvalidTrailer { offset: 48 })
        );
    }

    #[test]
    fn ntpv4_short_trailers_are_invalid() {
        for n in [8, 12, 16] {
            assert_eq!(
                Packet::decode(&packet(4, &vec![0u8; n])),
                Err(DecodeError::InvalidTrailer { offset: 48 })
            );
        }
    }

    #[test]
    fn ntpv4_last_field_without_mac_must_be_28_octets() {
        // A lone 16-octet field is ignored by chrony 4.3, a 28-octet one answered.
        assert_eq!(
            Packet::decode(&packet(4, &field(0x1234, 16))),
            Err(DecodeError::InvalidTrailer { offset: 48 })
        );
        let buf = packet(4, &field(0x1234, 28));
        let p = roundtrip(&buf);
        assert_eq!(p.mac, None);
        let f: Vec<_> = p.extensions.iter().collect();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field_type, 0x1234);
        assert_eq!(f[0].value.len(), 24);
    }

    #[test]
    fn ntpv4_20_or_24_octet_field_at_the_end_reads_as_mac() {
        for len in [20, 24] {
            let buf = packet(4, &field(0x1234, len));
            let p = roundtrip(&buf);
            assert!(p.extensions.is_empty());
            assert_eq!(p.mac.unwrap().key_id, (0x1234 << 16) | len as u32);
        }
    }

    #[test]
    fn ntpv4_fields_then_mac() {
        let mut tail = field(0x0104, 16);
        tail.extend(field(0x0204, 40));
        tail.extend(mac(3, 20));
        let buf = packet(4, &tail);
        let p = roundtrip(&buf);
        let types: Vec<u16> = p.extensions.iter().map(|f| f.field_type).collect();
        assert_eq!(types, [0x0104, 0x0204]);
        assert_eq!(p.mac.unwrap().key_id, 3);
        assert_eq!(p.authenticated_part(&buf).len(), 48 + 56);
    }

    #[test]
    fn ntpv4_two_16_octet_fields_without_mac_are_invalid() {
        let mut tail = field(1, 16);
        tail.extend(field(2, 16));
        assert_eq!(
            Packet::decode(&packet(4, &tail)),
            Err(DecodeError::InvalidTrailer { offset: 64 })
        );
        // 16 + 28 is fine.
        let mut tail = field(1, 16);
        tail.extend(field(2, 28));
        assert_eq!(roundtrip(&packet(4, &tail)).extensions.iter().count(), 2);
    }

    #[test]
    fn ntpv4_field_with_bad_length_is_rejected() {
        let mut f = field(1, 32);
        f[3] = 30; // not a multiple of 4
        assert_eq!(
            Packet::decode(&packet(4, &f)),
            Err(DecodeError::BadExtensionLength {
                offset: 48,
                length: 30
            })
        );
        f[3] = 36; // past the end
        assert!(matches!(
            Packet::decode(&packet(4, &f)),
            Err(DecodeError::BadExtensionLength { length: 36, .. })
        ));
        f[3] = 0; // zero length must not loop forever
        assert!(Packet::decode(&packet(4, &f)).is_err());
    }

    #[test]
    fn largest_packet_is_accepted() {
        let mut tail = field(1, 1024);
        tail.extend(mac(1, 20));
        let buf = packet(4, &tail);
        assert_eq!(buf.len(), 1096);
        roundtrip(&buf);
        let buf = packet(4, &field(1, Packet::MAX_LEN - 48));
        assert_eq!(buf.len(), 1140);
        roundtrip(&buf);
    }

    #[test]
    fn encode_reports_small_buffer() {
        let buf = packet(4, &mac(1, 16));
        let p = Packet::decode(&buf).unwrap();
        let mut out = [0u8; 60];
        assert_eq!(
            p.encode(&mut out),
            Err(DecodeError::BufferTooSmall {
                needed: 68,
                available: 60
            })
        );
    }

    #[test]
    fn built_packet_decodes_to_itself() {
        let mut buf = [0u8; 200];
        let h = Header::decode(&header(4)).unwrap();
        let mut n = h.encode_to_slice(&mut buf).unwrap();
        n += encode_extension_field(&mut buf[n..], 0x0104, &[7; 32]).unwrap();
        n += encode_mac(&mut buf[n..], 77, &[1; 20]).unwrap();
        let p = Packet::decode(&buf[..n]).unwrap();
        assert_eq!(p.header, h);
        assert_eq!(p.extensions.find(0x0104).unwrap().value, &[7; 32]);
        assert_eq!(
            p.mac,
            Some(Mac {
                key_id: 77,
                digest: &[1; 20]
            })
        );
    }

    #[test]
    fn valid_v4_mac_lengths() {
        assert!(v4_mac_len_is_valid(4));
        assert!(v4_mac_len_is_valid(20));
        assert!(v4_mac_len_is_valid(24));
        assert!(!v4_mac_len_is_valid(36));
        assert!(!v4_mac_len_is_valid(22));
    }
}
