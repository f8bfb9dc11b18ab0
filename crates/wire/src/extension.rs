//! NTPv4 extension fields (RFC 7822 §3, updating RFC 5905 §7.5).
//!
//! ```text
//! | Field Type (16) | Length (16) |  Value ... | Padding (to a multiple of 4) |
//! ```
//!
//! `Length` counts the whole field: the 4-octet header, the value and the padding. A field is at
//! least 16 octets and a multiple of 4 (RFC 7822 §3). The wire does not say where the value ends
//! and the padding begins, so [`ExtensionField::value`] is everything after the header, as
//! chrony hands it to its extension handlers; formats inside a value (NTS, chrony's
//! experimental fields) carry their own lengths.
//!
//! Which bytes after the header are extension fields and which are a MAC is decided by
//! [`crate::Packet::decode`]; this module only walks a region already known to hold fields.

use crate::error::DecodeError;

/// Smallest extension field (RFC 7822 §3).
pub const MIN_EXTENSION_FIELD_LEN: usize = 16;

/// Smallest last extension field of a packet without a MAC (RFC 7822 §7.5): anything shorter
/// would be taken for a MAC by a receiver following RFC 7822 (and by chrony).
pub const MIN_LAST_EXTENSION_FIELD_LEN: usize = 28;

/// Largest extension field the 16-bit length can describe while staying a multiple of 4.
pub const MAX_EXTENSION_FIELD_LEN: usize = 65532;

/// NTS Unique Identifier (RFC 8915 §5.3).
pub const FIELD_NTS_UNIQUE_IDENTIFIER: u16 = 0x0104;
/// NTS Cookie (RFC 8915 §5.4).
pub const FIELD_NTS_COOKIE: u16 = 0x0204;
/// NTS Cookie Placeholder (RFC 8915 §5.5).
pub const FIELD_NTS_COOKIE_PLACEHOLDER: u16 = 0x0304;
/// NTS Authenticator and Encrypted Extension Fields (RFC 8915 §5.6).
pub const FIELD_NTS_AUTHENTICATOR: u16 = 0x0404;
/// chrony's experimental "monotonic timestamp and root delay/dispersion" field, requested with
/// `extfield F323` (chrony 4.2+). Its value starts with the magic 0xF5BEDD9A.
pub const FIELD_EXP_MONO_ROOT: u16 = 0xF323;
/// chrony's experimental "network correction" field (`extfield F324`), added after chrony 4.3.
pub const FIELD_EXP_NET_CORRECTION: u16 = 0xF324;

/// One extension field, borrowed from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionField<'a> {
    /// Field type (RFC 7822 §3; IANA "NTP Extension Field Types").
    pub field_type: u16,
    /// Everything after the 4-octet header, padding included.
    pub value: &'a [u8],
}

impl ExtensionField<'_> {
    /// Length of the whole field on the wire (header + value).
    #[inline]
    pub fn wire_len(&self) -> usize {
        4 + self.value.len()
    }
}

/// Reads the field at the start of `buf` under RFC 7822 §3's rules: the announced length is at
/// least 16, a multiple of 4 and within `buf`. `offset` only labels errors.
fn read_field(buf: &[u8], offset: usize) -> Result<ExtensionField<'_>, DecodeError> {
    let Some(&[t0, t1, l0, l1]) = buf.first_chunk::<4>() else {
        return Err(DecodeError::BadExtensionLength { offset, length: 0 });
    };
    let length = u16::from_be_bytes([l0, l1]);
    let len = usize::from(length);
    if len < MIN_EXTENSION_FIELD_LEN || len % 4 != 0 || len > buf.len() {
        return Err(DecodeError::BadExtensionLength { offset, length });
    }
    Ok(ExtensionField {
        field_type: u16::from_be_bytes([t0, t1]),
        value: buf.get(4..len).unwrap_or_default(),
    })
}

/// A sequence of extension fields: the bytes between the header and the MAC (or the end).
///
/// Constructed only from bytes that [`ExtensionFields::parse`] (or [`crate::Packet::decode`])
/// validated, so iterating never fails; it yields each field in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExtensionFields<'a> {
    bytes: &'a [u8],
}

impl<'a> ExtensionFields<'a> {
    /// No extension fields.
    pub const EMPTY: ExtensionFields<'static> = ExtensionFields { bytes: &[] };

    /// Validates that `bytes` is a whole number of well-formed extension fields (RFC 7822 §3).
    /// It does not apply the "last field ≥ 28 octets" rule, which only matters for telling a
    /// field from a MAC and is applied by [`crate::Packet::decode`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut at = 0;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            at += read_field(rest, at)?.wire_len();
        }
        Ok(ExtensionFields { bytes })
    }

    /// Wraps bytes already validated by the packet decoder.
    pub(crate) fn from_validated(bytes: &'a [u8]) -> Self {
        ExtensionFields { bytes }
    }

    /// The raw bytes of all fields, as on the wire.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when there are no fields.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Total length on the wire.
    #[inline]
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// Iterates over the fields in wire order.
    #[inline]
    pub fn iter(&self) -> ExtensionFieldIter<'a> {
        ExtensionFieldIter {
            rest: self.bytes,
            offset: 0,
        }
    }

    /// The first field of the given type.
    pub fn find(&self, field_type: u16) -> Option<ExtensionField<'a>> {
        self.iter().find(|f| f.field_type == field_type)
    }
}

impl<'a> IntoIterator for ExtensionFields<'a> {
    type Item = ExtensionField<'a>;
    type IntoIter = ExtensionFieldIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &ExtensionFields<'a> {
    type Item = ExtensionField<'a>;
    type IntoIter = ExtensionFieldIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`ExtensionFields`]. Stops (rather than panicking) at anything malformed,
/// which cannot occur for validated input.
#[derive(Clone, Debug)]
pub struct ExtensionFieldIter<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl ExtensionFieldIter<'_> {
    /// Offset, within the extension field region, of the next field to be returned.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for ExtensionFieldIter<'a> {
    type Item = ExtensionField<'a>;

    fn next(&mut self) -> Option<ExtensionField<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        match read_field(self.rest, self.offset) {
            Ok(field) => {
                let len = field.wire_len();
                self.rest = self.rest.get(len..).unwrap_or_default();
                self.offset += len;
                Some(field)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// Length on the wire of a field carrying `value_len` value octets, padded to a multiple of 4
/// and to at least `min_len` (itself raised to 16 and rounded up to a multiple of 4).
pub fn padded_field_len(value_len: usize, min_len: usize) -> usize {
    let min = min_len.max(MIN_EXTENSION_FIELD_LEN).saturating_add(3) & !3;
    (value_len.saturating_add(4).saturating_add(3) & !3).max(min)
}

/// Writes an extension field at the start of `out`: header, `value`, then zero padding to a
/// multiple of 4 and to the 16-octet minimum (RFC 7822 §3). Returns the field's length.
pub fn encode_extension_field(
    out: &mut [u8],
    field_type: u16,
    value: &[u8],
) -> Result<usize, DecodeError> {
    encode_extension_field_min(out, field_type, value, MIN_EXTENSION_FIELD_LEN)
}

/// Like [`encode_extension_field`], padding the field to at least `min_len` octets. Use
/// [`MIN_LAST_EXTENSION_FIELD_LEN`] for the last field of a packet without a MAC (RFC 7822
/// §7.5), or a cookie's length for an NTS cookie placeholder (RFC 8915 §5.5).
pub fn encode_extension_field_min(
    out: &mut [u8],
    field_type: u16,
    value: &[u8],
    min_len: usize,
) -> Result<usize, DecodeError> {
    let total = padded_field_len(value.len(), min_len);
    if total > MAX_EXTENSION_FIELD_LEN {
        return Err(DecodeError::ExtensionTooLong { len: value.len() });
    }
    let available = out.len();
    let Some(dst) = out.get_mut(..total) else {
        return Err(DecodeError::BufferTooSmall {
            needed: total,
            available,
        });
    };
    let (header, body) = dst.split_at_mut(4);
    header[..2].copy_from_slice(&field_type.to_be_bytes());
    // total <= 65532, checked above.
    header[2..].copy_from_slice(&(total as u16).to_be_bytes());
    let (val, pad) = body.split_at_mut(value.len());
    val.copy_from_slice(value);
    pad.fill(0);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_pads_short_value_to_16_octets() {
        let mut buf = [0xffu8; 32];
        let n = encode_extension_field(&mut buf, 0x1234, &[1, 2, 3]).unwrap();
        assert_eq!(n, 16);
        assert_eq!(&buf[..8], &[0x12, 0x34, 0, 16, 1, 2, 3, 0]);
        assert!(buf[8..16].iter().all(|&b| b == 0));
        assert_eq!(buf[16], 0xff);
    }

    #[test]
    fn encode_pads_to_multiple_of_four() {
        let mut buf = [0u8; 64];
        let n = encode_extension_field(&mut buf, 1, &[7u8; 21]).unwrap();
        assert_eq!(n, 28);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 28);
    }

    #[test]
    fn encode_honours_minimum_for_last_field() {
        let mut buf = [0u8; 64];
        let n = encode_extension_field_min(&mut buf, 1, &[], MIN_LAST_EXTENSION_FIELD_LEN).unwrap();
        assert_eq!(n, 28);
        // A minimum that is not a multiple of 4 is rounded up.
        let n = encode_extension_field_min(&mut buf, 1, &[], 29).unwrap();
        assert_eq!(n, 32);
    }

    #[test]
    fn encode_reports_small_buffer_and_oversized_value() {
        let mut buf = [0u8; 15];
        assert_eq!(
            encode_extension_field(&mut buf, 1, &[]),
            Err(DecodeError::BufferTooSmall {
                needed: 16,
                available: 15
            })
        );
        let big = vec![0u8; 65529];
        let mut out = vec![0u8; 70000];
        assert_eq!(
            encode_extension_field(&mut out, 1, &big),
            Err(DecodeError::ExtensionTooLong { len: 65529 })
        );
        assert_eq!(
            encode_extension_field(&mut out, 1, &big[..65528]),
            Ok(65532)
        );
    }

    #[test]
    fn parse_walks_fields_in_order() {
        let mut buf = [0u8; 64];
        let a = encode_extension_field(&mut buf, 0x0104, &[9u8; 32]).unwrap();
        let b = encode_extension_field(&mut buf[a..], 0x0204, &[8u8; 4]).unwrap();
        let fields = ExtensionFields::parse(&buf[..a + b]).unwrap();
        let all: Vec<_> = fields.iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].field_type, 0x0104);
        assert_eq!(all[0].value, &[9u8; 32][..]);
        assert_eq!(all[1].field_type, 0x0204);
        assert_eq!(&all[1].value[..4], &[8u8; 4]);
        assert_eq!(all[1].value.len(), 12);
        assert_eq!(fields.find(0x0204), Some(all[1]));
        assert_eq!(fields.find(0x0304), None);
    }

    #[test]
    fn parse_rejects_short_unaligned_and_overlong_fields() {
        // Length 12 < 16.
        let mut b = [0u8; 16];
        b[3] = 12;
        assert_eq!(
            ExtensionFields::parse(&b),
            Err(DecodeError::BadExtensionLength {
                offset: 0,
                length: 12
            })
        );
        // Length 18 is not a multiple of 4.
        let mut b = [0u8; 20];
        b[3] = 18;
        assert!(ExtensionFields::parse(&b).is_err());
        // Length 20 with only 16 bytes present.
        let mut b = [0u8; 16];
        b[3] = 20;
        assert!(ExtensionFields::parse(&b).is_err());
        // A trailing fragment shorter than a header.
        let mut b = [0u8; 18];
        b[3] = 16;
        assert_eq!(
            ExtensionFields::parse(&b),
            Err(DecodeError::BadExtensionLength {
                offset: 16,
                length: 0
            })
        );
    }

    #[test]
    fn empty_region_has_no_fields() {
        let f = ExtensionFields::parse(&[]).unwrap();
        assert!(f.is_empty());
        assert_eq!(f.iter().count(), 0);
        assert_eq!(ExtensionFields::EMPTY.iter().count(), 0);
    }
}
