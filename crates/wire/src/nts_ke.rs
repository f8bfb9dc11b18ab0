//! NTS Key Establishment records (RFC 8915 §4), exchanged over TLS on TCP port 4460.
//!
//! ```text
//! |C| Record Type (15) | Body Length (16) | Record Body (Body Length octets) |
//! ```
//!
//! A message is a sequence of records ending with End of Message (type 0, critical, empty
//! body). Decoding borrows from the input, never allocates, and reports a record cut short
//! separately from a malformed one so a reader can wait for more TLS data.

use crate::error::DecodeError;

/// TCP port of NTS-KE (RFC 8915 §4).
pub const NTS_KE_PORT: u16 = 4460;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 4;
/// Largest NTS-KE message chrony reads or writes (its NKE message buffer).
pub const MAX_MESSAGE_LEN: usize = 16384;

/// End of Message (RFC 8915 §4.1.1).
pub const RECORD_END_OF_MESSAGE: u16 = 0;
/// NTS Next Protocol Negotiation (RFC 8915 §4.1.2).
pub const RECORD_NEXT_PROTOCOL: u16 = 1;
/// Error (RFC 8915 §4.1.3).
pub const RECORD_ERROR: u16 = 2;
/// Warning (RFC 8915 §4.1.4).
pub const RECORD_WARNING: u16 = 3;
/// AEAD Algorithm Negotiation (RFC 8915 §4.1.5).
pub const RECORD_AEAD_ALGORITHM: u16 = 4;
/// New Cookie for NTPv4 (RFC 8915 §4.1.6).
pub const RECORD_NEW_COOKIE: u16 = 5;
/// NTPv4 Server Negotiation (RFC 8915 §4.1.7).
pub const RECORD_NTPV4_SERVER: u16 = 6;
/// NTPv4 Port Negotiation (RFC 8915 §4.1.8).
pub const RECORD_NTPV4_PORT: u16 = 7;

/// Next-protocol identifier of NTPv4 (RFC 8915 §7.7).
pub const NEXT_PROTOCOL_NTPV4: u16 = 0;
/// AEAD_AES_SIV_CMAC_256 (RFC 5297), mandatory to implement (RFC 8915 §5.1).
pub const AEAD_AES_SIV_CMAC_256: u16 = 15;
/// AEAD_AES_SIV_CMAC_384.
pub const AEAD_AES_SIV_CMAC_384: u16 = 16;
/// AEAD_AES_SIV_CMAC_512.
pub const AEAD_AES_SIV_CMAC_512: u16 = 17;
/// AEAD_AES_128_GCM_SIV (RFC 8452).
pub const AEAD_AES_128_GCM_SIV: u16 = 30;

/// Error code: Unrecognized Critical Record (RFC 8915 §4.1.3).
pub const ERROR_UNRECOGNIZED_CRITICAL_RECORD: u16 = 0;
/// Error code: Bad Request.
pub const ERROR_BAD_REQUEST: u16 = 1;
/// Error code: Internal Server Error.
pub const ERROR_INTERNAL_SERVER_ERROR: u16 = 2;

/// One NTS-KE record, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtsKeRecord<'a> {
    /// The critical bit: a receiver that does not know the type must fail.
    pub critical: bool,
    /// Record type (15 bits).
    pub record_type: u16,
    /// Record body.
    pub body: &'a [u8],
}

impl<'a> NtsKeRecord<'a> {
    /// Decodes the record at the start of `buf`, returning it and its length on the wire.
    /// `TruncatedRecord { offset: 0 }` means `buf` ends inside the record (read more).
    pub fn decode(buf: &'a [u8]) -> Result<(NtsKeRecord<'a>, usize), DecodeError> {
        let Some((&[t0, t1, l0, l1], rest)) = buf.split_first_chunk::<4>() else {
            return Err(DecodeError::TruncatedRecord { offset: 0 });
        };
        let body_len = usize::from(u16::from_be_bytes([l0, l1]));
        let Some(body) = rest.get(..body_len) else {
            return Err(DecodeError::TruncatedRecord { offset: 0 });
        };
        let raw_type = u16::from_be_bytes([t0, t1]);
        Ok((
            NtsKeRecord {
                critical: raw_type & 0x8000 != 0,
                record_type: raw_type & 0x7fff,
                body,
            },
            RECORD_HEADER_LEN + body_len,
        ))
    }

    /// Length on the wire.
    #[inline]
    pub fn wire_len(&self) -> usize {
        RECORD_HEADER_LEN + self.body.len()
    }

    /// True for an End of Message record.
    #[inline]
    pub fn is_end_of_message(&self) -> bool {
        self.record_type == RECORD_END_OF_MESSAGE
    }

    /// The body as one big-endian u16 (Error, Warning, Port records).
    pub fn body_u16(&self) -> Result<u16, DecodeError> {
        match self.body {
            &[a, b] => Ok(u16::from_be_bytes([a, b])),
            _ => Err(DecodeError::BadRecordBody {
                record_type: self.record_type,
                len: self.body.len(),
            }),
        }
    }

    /// The body as a list of big-endian u16 (Next Protocol and AEAD Algorithm records).
    pub fn body_u16_list(&self) -> Result<U16List<'a>, DecodeError> {
        if self.body.len() % 2 != 0 {
            return Err(DecodeError::BadRecordBody {
                record_type: self.record_type,
                len: self.body.len(),
            });
        }
        Ok(U16List { rest: self.body })
    }

    /// Encodes this record at the start of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, DecodeError> {
        encode_record(out, self.critical, self.record_type, self.body)
    }
}

/// Iterator over a record body read as big-endian u16 values.
#[derive(Clone, Debug)]
pub struct U16List<'a> {
    rest: &'a [u8],
}

impl Iterator for U16List<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        let (&[a, b], rest) = self.rest.split_first_chunk::<2>()?;
        self.rest = rest;
        Some(u16::from_be_bytes([a, b]))
    }
}

/// Writes one record at the start of `out` and returns its length.
pub fn encode_record(
    out: &mut [u8],
    critical: bool,
    record_type: u16,
    body: &[u8],
) -> Result<usize, DecodeError> {
    let body_out = record_frame(out, critical, record_type, body.len())?;
    body_out.copy_from_slice(body);
    Ok(RECORD_HEADER_LEN + body.len())
}

/// Checks a record's type and body length, writes its 4-octet header at the start of `out`
/// and returns the `body_len` octets after it for the body.
fn record_frame(
    out: &mut [u8],
    critical: bool,
    record_type: u16,
    body_len: usize,
) -> Result<&mut [u8], DecodeError> {
    if record_type > 0x7fff {
        return Err(DecodeError::BadRecordType { record_type });
    }
    let Ok(len16) = u16::try_from(body_len) else {
        return Err(DecodeError::RecordTooLong { len: body_len });
    };
    let total = RECORD_HEADER_LEN + body_len;
    let available = out.len();
    let Some(dst) = out.get_mut(..total) else {
        return Err(DecodeError::BufferTooSmall {
            needed: total,
            available,
        });
    };
    let raw_type = record_type | if critical { 0x8000 } else { 0 };
    let (head, rest) = dst.split_at_mut(RECORD_HEADER_LEN);
    head[..2].copy_from_slice(&raw_type.to_be_bytes());
    head[2..].copy_from_slice(&len16.to_be_bytes());
    Ok(rest)
}

/// Writes a record whose body is a list of big-endian u16 values, using `out` directly.
pub fn encode_u16_record(
    out: &mut [u8],
    critical: bool,
    record_type: u16,
    values: &[u16],
) -> Result<usize, DecodeError> {
    let body_len = values.len().saturating_mul(2);
    let body_out = record_frame(out, critical, record_type, body_len)?;
    for (chunk, v) in body_out.chunks_exact_mut(2).zip(values) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    Ok(RECORD_HEADER_LEN + body_len)
}

/// Writes the End of Message record (critical, empty body).
pub fn encode_end_of_message(out: &mut [u8]) -> Result<usize, DecodeError> {
    encode_record(out, true, RECORD_END_OF_MESSAGE, &[])
}

/// Iterator over the records of a buffer; yields an error (then stops) at a record cut short.
#[derive(Clone, Debug)]
pub struct NtsKeRecords<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> NtsKeRecords<'a> {
    /// Iterates over every record in `buf`, End of Message included, without stopping at it.
    pub fn new(buf: &'a [u8]) -> Self {
        NtsKeRecords { buf, offset: 0 }
    }

    /// Offset of the next record.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for NtsKeRecords<'a> {
    type Item = Result<NtsKeRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.offset..).filter(|r| !r.is_empty())?;
        match NtsKeRecord::decode(rest) {
            Ok((record, len)) => {
                self.offset += len;
                Some(Ok(record))
            }
            Err(_) => {
                let offset = self.offset;
                self.offset = self.buf.len();
                Some(Err(DecodeError::TruncatedRecord { offset }))
            }
        }
    }
}

/// A complete NTS-KE message: the records up to and including End of Message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtsKeMessage<'a> {
    bytes: &'a [u8],
}

impl<'a> NtsKeMessage<'a> {
    /// Scans `buf` for a complete message. Errors: `TruncatedRecord` if a record is cut short,
    /// `NoEndOfMessage` if `buf` ends between records before End of Message (in both cases a
    /// reader may wait for more data). Octets after End of Message are not part of the message;
    /// [`NtsKeMessage::wire_len`] tells where it ended. End of Message is recognised by its
    /// type alone; RFC 8915 §4.1.1 also requires it to be critical with an empty body, which
    /// the caller can check on the last record.
    pub fn decode(buf: &'a [u8]) -> Result<NtsKeMessage<'a>, DecodeError> {
        let mut records = NtsKeRecords::new(buf);
        while let Some(record) = records.next() {
            if record?.is_end_of_message() {
                let end = records.offset();
                return Ok(NtsKeMessage {
                    bytes: buf.get(..end).unwrap_or(buf),
                });
            }
        }
        Err(DecodeError::NoEndOfMessage { len: buf.len() })
    }

    /// Octets of the message, End of Message included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length of the message on the wire.
    pub fn wire_len(&self) -> usize {
        self.bytes.len()
    }

    /// The records, End of Message included. Never yields an error for a decoded message.
    pub fn records(&self) -> impl Iterator<Item = NtsKeRecord<'a>> + 'a {
        NtsKeRecords::new(self.bytes).map_while(Result::ok)
    }

    /// The first record of a type.
    pub fn find(&self, record_type: u16) -> Option<NtsKeRecord<'a>> {
        self.records().find(|r| r.record_type == record_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> Vec<u8> {
        let mut out = vec![0u8; 64];
        let mut n = encode_u16_record(&mut out, true, RECORD_NEXT_PROTOCOL, &[NEXT_PROTOCOL_NTPV4])
            .unwrap();
        n += encode_u16_record(
            &mut out[n..],
            false,
            RECORD_AEAD_ALGORITHM,
            &[AEAD_AES_SIV_CMAC_256, AEAD_AES_128_GCM_SIV],
        )
        .unwrap();
        n += encode_end_of_message(&mut out[n..]).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn request_encodes_to_rfc8915_bytes() {
        assert_eq!(
            sample_request(),
            [
                0x80, 0x01, 0x00, 0x02, 0x00, 0x00, // critical next protocol: NTPv4
                0x00, 0x04, 0x00, 0x04, 0x00, 0x0f, 0x00, 0x1e, // AEAD: 15, 30
                0x80, 0x00, 0x00, 0x00, // end of message
            ]
        );
    }

    #[test]
    fn message_decodes_records_and_stops_at_end() {
        let mut buf = sample_request();
        buf.extend([0xde, 0xad]); // data after the message is not part of it
        let msg = NtsKeMessage::decode(&buf).unwrap();
        assert_eq!(msg.wire_len(), 18);
        let recs: Vec<_> = msg.records().collect();
        assert_eq!(recs.len(), 3);
        assert!(recs[0].critical);
        assert_eq!(recs[0].record_type, RECORD_NEXT_PROTOCOL);
        assert_eq!(
            recs[0].body_u16_list().unwrap().collect::<Vec<_>>(),
            [NEXT_PROTOCOL_NTPV4]
        );
        let aead = msg.find(RECORD_AEAD_ALGORITHM).unwrap();
        assert!(!aead.critical);
        assert_eq!(aead.body_u16_list().unwrap().collect::<Vec<_>>(), [15, 30]);
        assert!(recs[2].is_end_of_message());
    }

    #[test]
    fn truncated_and_unterminated_messages_are_distinguished() {
        let buf = sample_request();
        for cut in 1..buf.len() {
            let err = NtsKeMessage::decode(&buf[..cut]).unwrap_err();
            match cut {
                6 | 14 => assert_eq!(err, DecodeError::NoEndOfMessage { len: cut }),
                _ => assert!(matches!(err, DecodeError::TruncatedRecord { .. }), "{cut}"),
            }
        }
        assert_eq!(
            NtsKeMessage::decode(&[]),
            Err(DecodeError::NoEndOfMessage { len: 0 })
        );
    }

    #[test]
    fn record_iterator_reports_offset_of_cut_record() {
        let buf = sample_request();
        let items: Vec<_> = NtsKeRecords::new(&buf[..10]).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Err(DecodeError::TruncatedRecord { offset: 6 }));
    }

    #[test]
    fn encode_rejects_bad_type_and_long_body() {
        let mut out = vec![0u8; 70000];
        assert_eq!(
            encode_record(&mut out, false, 0x8000, &[]),
            Err(DecodeError::BadRecordType {
                record_type: 0x8000
            })
        );
        let big = vec![0u8; 65536];
        assert_eq!(
            encode_record(&mut out, false, 5, &big),
            Err(DecodeError::RecordTooLong { len: 65536 })
        );
        assert_eq!(encode_record(&mut out, false, 5, &big[..65535]), Ok(65539));
        assert!(matches!(
            encode_record(&mut [0u8; 3], true, 0, &[]),
            Err(DecodeError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn body_helpers_check_lengths() {
        let port = NtsKeRecord {
            critical: false,
            record_type: RECORD_NTPV4_PORT,
            body: &[0x01, 0x7b],
        };
        assert_eq!(port.body_u16(), Ok(379));
        let odd = NtsKeRecord {
            critical: false,
            record_type: RECORD_AEAD_ALGORITHM,
            body: &[0, 15, 0],
        };
        assert_eq!(
            odd.body_u16_list().map(|_| ()),
            Err(DecodeError::BadRecordBody {
                record_type: RECORD_AEAD_ALGORITHM,
                len: 3
            })
        );
        assert!(odd.body_u16().is_err());
    }

    #[test]
    fn record_roundtrip_keeps_critical_bit_and_body() {
        let rec = NtsKeRecord {
            critical: true,
            record_type: RECORD_NEW_COOKIE,
            body: b"cookie-bytes",
        };
        let mut out = [0u8; 32];
        let n = rec.encode(&mut out).unwrap();
        assert_eq!(NtsKeRecord::decode(&out[..n]), Ok((rec, n)));
    }
}
