//! Client log: per-address access records of the NTP, NTS-KE and command services, with the
//! rate-limit buckets. chrony's `clientloglimit`, `noclientlog` and the data behind
//! `chronyc clients` and `serverstats` ("Client log records dropped").
//!
//! Memory is bounded by `clientloglimit` (default 524288 bytes). A record is 80 bytes
//! (checked by a test): 64 of access data (address 16, last access 3×4, hits 3×4, drops 3×4,
//! buckets 3×2, interval estimates 3×1, the NTP "after limiting" interval 1, flags 1) and 16
//! of interleaved-mode timestamps ([`NtpTimestamps`]: the receive and transmit timestamps of
//! the last response to the client, see `server/interleaved.rs`) plus their flag byte in the
//! padding. Like chronyd, the limit is split between the access data and those timestamps
//! (128 bytes per record in all), and the number of records is a power of two: `2^floor(log2(limit / 128))`, i.e. 4096 addresses
//! for the default limit (chrony.conf(5) says the same) and 16777216 for 2 GiB, the largest
//! effective value, but never fewer than 16 (chronyd 4.3 keeps 16 even with a limit of 0). The table starts small and doubles up to that size as clients arrive.
//!
//! The table is set-associative with two choices: a keyed hash of the address (key drawn
//! from the engine's seeded RNG, so remote clients cannot aim collisions at a victim's
//! buckets) picks two buckets of 8 records and a new record goes to the less full one, so the
//! table fills to ~99 % before the first eviction. Lookup and insertion are O(1) (at most 16
//! slots) and never allocate once the table is at full size. When both buckets are full and
//! the table cannot grow, the least recently active of their 16 records is evicted and counted
//! in [`ClientLog::records_dropped`].
//!
//! Interval estimates are exponential averages of log2 of the interval between accesses
//! (quarter-log2 resolution), reported in log2 seconds as chronyc's `Int` columns; 127 means
//! unknown. For NTP the log also keeps the average interval of requests that follow a
//! limited one (`IntL`): when that is less than half the normal interval, the client is
//! polling faster because it gets no replies, and its limiting is suspended (chrony.conf(5),
//! `ratelimit`: "its rate limiting will be temporarily suspended").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::RngCore;

use crate::rate_limit::{bucket_periods, ticks, Limiter, RateVerdict, TICKS_PER_SECOND};

/// The services whose accesses are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// NTP requests.
    Ntp = 0,
    /// NTS-KE connections.
    NtsKe = 1,
    /// cmdmon requests over UDP.
    Command = 2,
}

/// Default `clientloglimit`.
pub const DEFAULT_LIMIT_BYTES: u64 = 524_288;
/// `clientloglimit` values above this have no further effect (chrony.conf(5)).
pub const MAX_LIMIT_BYTES: u64 = 2_147_483_648;
/// Bytes of one record's access data, the unit of the memory accounting: the limit allows
/// `limit / (2 * RECORD_BYTES)` records, the other half being for interleaved timestamps.
pub const RECORD_BYTES: u64 = 64;
/// Bytes of one record's interleaved-mode timestamps ([`NtpTimestamps`]).
pub const TIMESTAMP_BYTES: u64 = 16;
/// Fewest records the table holds: chronyd 4.3 logs 16 addresses with any `clientloglimit`
/// below 4096 bytes, 0 included (measured black-box, 80 client addresses on loopback).
const MIN_RECORDS: u64 = 16;
/// Records per hash bucket.
const WAYS: usize = 8;
/// Buckets allocated before the table first grows.
const INITIAL_BUCKETS: usize = 16;

/// Interval estimates: "unknown".
pub const UNKNOWN_INTERVAL: i8 = 127;

const FLAG_USED: u8 = 1;
const FLAG_V6: u8 = 2;
const FLAG_LIMITED_BASE: u8 = 4; // bits 2..=4: the last request of that service was limited
const FLAG_SEEN_BASE: u8 = 32; // bits 5..=7: the service has been accessed

#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Record {
    addr: [u8; 16],
    last: [u32; 3],
    hits: [u32; 3],
    drops: [u32; 3],
    tokens: [u16; 3],
    /// Average interval, quarter-log2 seconds.
    rate: [i8; 3],
    /// Average interval after a limited NTP request, quarter-log2 seconds.
    ntp_limited_rate: i8,
    flags: u8,
    /// Interleaved-mode state (sits in what was the padding byte).
    ntp_flags: u8,
    /// Interleaved-mode timestamps of the last response.
    ntp: NtpTimestamps,
}

/// The timestamps of the last NTP response sent to a client, as raw NTP timestamps (0 =
/// none): what a server needs to answer that client's next request in interleaved mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NtpTimestamps {
    /// Receive timestamp of the request the response answered (its receive field).
    pub rx: u64,
    /// Transmit time of that response: the daemon's reading or the kernel's stamp, 0 while
    /// unknown (not captured for this client, or not yet sent).
    pub tx: u64,
}

const EMPTY: Record = Record {
    addr: [0; 16],
    last: [0; 3],
    hits: [0; 3],
    drops: [0; 3],
    tokens: [0; 3],
    rate: [UNKNOWN_INTERVAL; 3],
    ntp_limited_rate: UNKNOWN_INTERVAL,
    flags: 0,
    ntp_flags: 0,
    ntp: NtpTimestamps { rx: 0, tx: 0 },
};

/// `ntp_flags`: the client has sent an interleaved request, so the transmit time of its
/// responses is captured.
const NTP_INTERLEAVED: u8 = 1;
/// `ntp_flags`: the saved transmit timestamp is the kernel's.
const NTP_TX_KERNEL: u8 = 2;

impl Record {
    fn seen(&self, s: usize) -> bool {
        self.flags & (FLAG_SEEN_BASE << s) != 0
    }
    fn limited(&self, s: usize) -> bool {
        self.flags & (FLAG_LIMITED_BASE << s) != 0
    }
    /// Most recent access of any service, as ticks before `now`.
    fn idle(&self, now: u32) -> u32 {
        (0..3)
            .filter(|&s| self.seen(s))
            .map(|s| now.wrapping_sub(self.last[s]))
            .min()
            .unwrap_or(u32::MAX)
    }
    fn address(&self) -> IpAddr {
        if self.flags & FLAG_V6 != 0 {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        } else {
            let [.., a, b, c, d] = self.addr;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        }
    }
}

/// One row of `chronyc clients` (chrony's client access report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAccessReport {
    /// The client address.
    pub addr: IpAddr,
    /// NTP requests received.
    pub ntp_hits: u32,
    /// NTP requests dropped (or answered with KoD) by rate limiting.
    pub ntp_drops: u32,
    /// Average interval between NTP requests, log2 s (127 unknown).
    pub ntp_interval: i8,
    /// Average interval of NTP requests after a limited one, log2 s (127 unknown).
    pub ntp_timeout_interval: i8,
    /// Seconds since the last NTP request (u32::MAX never).
    pub last_ntp_hit_ago: u32,
    /// NTS-KE connections accepted.
    pub nke_hits: u32,
    /// NTS-KE connections dropped.
    pub nke_drops: u32,
    /// Average interval between NTS-KE connections, log2 s (127 unknown).
    pub nke_interval: i8,
    /// Seconds since the last NTS-KE connection (u32::MAX never).
    pub last_nke_hit_ago: u32,
    /// Command requests received.
    pub cmd_hits: u32,
    /// Command requests dropped.
    pub cmd_drops: u32,
    /// Average interval between command requests, log2 s (127 unknown).
    pub cmd_interval: i8,
    /// Seconds since the last command request (u32::MAX never).
    pub last_cmd_hit_ago: u32,
}

/// The bounded table of client records.
#[derive(Debug, Clone)]
pub struct ClientLog {
    slots: Vec<Record>,
    buckets: usize,
    max_buckets: usize,
    key: [u64; 2],
    limiters: [Option<Limiter>; 3],
    records_dropped: u64,
    /// Records in use.
    used: usize,
    /// Records whose [`NtpTimestamps::rx`] is set (kept up to date: O(1) to report).
    ntp_held: usize,
    enabled: bool,
}

/// Derives key material from the engine seed (SplitMix64 steps).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn folded_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// The record key of an address: IPv4-mapped IPv6 folds to IPv4 (one client, one record).
fn key_of(addr: IpAddr) -> ([u8; 16], u8) {
    match addr {
        IpAddr::V4(a) => (a.to_ipv6_compatible().octets(), 0),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => (v4.to_ipv6_compatible().octets(), 0),
            None => (a.octets(), FLAG_V6),
        },
    }
}

/// Quarter-log2 seconds of an interval in ticks (≥ -32, i.e. 1/256 s, for 0 or 1 tick).
fn quarter_log2(interval_ticks: u32) -> i8 {
    let t = interval_ticks.max(1);
    let int = 31 - t.leading_zeros() as i32;
    // Two fractional bits from the mantissa (linear approximation of log2 within an octave).
    let frac = if int >= 2 {
        ((t >> (int - 2)) & 3) as i32
    } else {
        ((t << (2 - int)) & 3) as i32
    };
    let q = 4 * int + frac - 4 * 8; // ticks are 1/256 s
    q.clamp(-128, 126) as i8
}

fn update_average(avg: &mut i8, sample: i8) {
    if *avg == UNKNOWN_INTERVAL {
        *avg = sample;
    } else {
        let a = i32::from(*avg);
        let next = a + (i32::from(sample) - a) / 4;
        *avg = next.clamp(-128, 126) as i8;
    }
}

/// Quarter-log2 to whole log2 seconds, rounded; unknown stays 127.
fn report_interval(q: i8) -> i8 {
    if q == UNKNOWN_INTERVAL {
        UNKNOWN_INTERVAL
    } else {
        ((i32::from(q) + 2) >> 2) as i8
    }
}

impl ClientLog {
    /// A client log bounded by `limit_bytes` (`clientloglimit`), with the given per-service
    /// limiters (`ratelimit`, `ntsratelimit`, `cmdratelimit`; `None` = not limited) and a
    /// hash key derived from `seed`.
    pub fn new(limit_bytes: u64, limiters: [Option<Limiter>; 3], seed: u64) -> ClientLog {
        let records = limit_bytes.min(MAX_LIMIT_BYTES) / (2 * RECORD_BYTES);
        let records = if records == 0 {
            0
        } else {
            1u64 << (63 - records.leading_zeros())
        };
        // chronyd never goes below 16 records, whatever the limit (even 0).
        let records = records.max(MIN_RECORDS);
        let max_buckets = usize::try_from(records).unwrap_or(usize::MAX) / WAYS;
        let mut state = seed ^ 0x636C_6965_6E74_6C6F;
        let key = [splitmix(&mut state), splitmix(&mut state)];
        let buckets = max_buckets.min(INITIAL_BUCKETS);
        ClientLog {
            slots: vec![EMPTY; buckets * WAYS],
            buckets,
            max_buckets,
            key,
            limiters,
            records_dropped: 0,
            used: 0,
            ntp_held: 0,
            enabled: max_buckets > 0,
        }
    }

    /// `noclientlog`: nothing is logged, so nothing is rate limited either.
    pub fn disabled() -> ClientLog {
        let mut log = ClientLog::new(0, [None; 3], 0);
        log.enabled = false;
        log
    }

    /// Whether accesses are logged (false with `noclientlog`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Most records the table will ever hold.
    pub fn max_records(&self) -> usize {
        self.max_buckets * WAYS
    }

    /// Records slots currently allocated (the index range of [`report`](Self::report)).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Bytes currently allocated for records (access data and interleaved timestamps).
    pub fn memory_bytes(&self) -> u64 {
        (self.slots.capacity() * std::mem::size_of::<Record>()) as u64
    }

    /// Records evicted to stay within the limit (`serverstats` "Client log records dropped").
    pub fn records_dropped(&self) -> u64 {
        self.records_dropped
    }

    /// Addresses currently logged.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether no address is logged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces a service's limiter (run-time reconfiguration).
    pub fn set_limiter(&mut self, service: Service, limiter: Option<Limiter>) {
        self.limiters[service as usize] = limiter;
    }

    /// The keyed 64-bit hash of a record key.
    #[inline]
    fn hash(&self, addr: &[u8; 16], v6: u8) -> u64 {
        let lo = u64::from_le_bytes([
            addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
        ]);
        let hi = u64::from_le_bytes([
            addr[8], addr[9], addr[10], addr[11], addr[12], addr[13], addr[14], addr[15],
        ]);
        let h = folded_mul(lo ^ self.key[0], hi ^ self.key[1] ^ u64::from(v6));
        folded_mul(h ^ self.key[1], 0x2D35_8DCC_AA6C_78A5 ^ self.key[0])
    }

    /// The two candidate buckets of a hash ("two choices": a record lives in the less full
    /// one, which keeps overflow negligible up to the full table).
    #[inline]
    fn buckets_of(hash: u64, buckets: usize) -> [usize; 2] {
        let mask = buckets.wrapping_sub(1);
        [(hash as usize) & mask, ((hash >> 32) as usize) & mask]
    }

    /// A free slot in the less full candidate bucket, if either has one.
    fn free_slot(slots: &[Record], candidates: [usize; 2]) -> Option<usize> {
        let free_in = |b: usize| {
            let bucket = slots.get(b * WAYS..(b + 1) * WAYS).unwrap_or_default();
            let n = bucket.iter().filter(|r| r.flags & FLAG_USED == 0).count();
            let first = bucket.iter().position(|r| r.flags & FLAG_USED == 0);
            (n, first.map(|i| b * WAYS + i))
        };
        let (n0, s0) = free_in(candidates[0]);
        let (n1, s1) = free_in(candidates[1]);
        if n1 > n0 {
            s1
        } else {
            s0
        }
    }

    /// Doubles the table, re-placing every record. At most half full afterwards, so a record
    /// that finds both its buckets full is practically impossible; it would be dropped and
    /// counted like an eviction.
    fn grow(&mut self) {
        let new_buckets = self.buckets * 2;
        let mut slots = vec![EMPTY; new_buckets * WAYS];
        for r in self.slots.iter().filter(|r| r.flags & FLAG_USED != 0) {
            let candidates = Self::buckets_of(self.hash(&r.addr, r.flags & FLAG_V6), new_buckets);
            match Self::free_slot(&slots, candidates).and_then(|i| slots.get_mut(i)) {
                Some(slot) => *slot = *r,
                None => {
                    self.records_dropped += 1;
                    self.used -= 1;
                    if r.ntp.rx != 0 {
                        self.ntp_held -= 1;
                    }
                }
            }
        }
        self.slots = slots;
        self.buckets = new_buckets;
    }

    /// Both candidate buckets are full: move one of their records to its other bucket if that
    /// has room (one cuckoo step), returning the freed slot. Skipped once the table is nearly
    /// full, so a flood of new addresses costs no more than an eviction.
    fn relocate(&mut self, candidates: [usize; 2]) -> Option<usize> {
        if self.used >= self.max_records() - self.max_records() / 32 {
            return None;
        }
        for b in candidates {
            for i in b * WAYS..(b + 1) * WAYS {
                let r = self.slots[i];
                let [c0, c1] =
                    Self::buckets_of(self.hash(&r.addr, r.flags & FLAG_V6), self.buckets);
                let other = if c0 == b { c1 } else { c0 };
                if other == b {
                    continue;
                }
                if let Some(free) = Self::free_slot(&self.slots, [other, other]) {
                    self.slots[free] = r;
                    self.slots[i] = EMPTY;
                    return Some(i);
                }
            }
        }
        None
    }

    /// Finds or creates the record of `addr`, returning its slot index.
    fn lookup_or_insert(&mut self, addr: IpAddr, now: u32) -> Option<usize> {
        if !self.enabled || self.buckets == 0 {
            return None;
        }
        let (key, v6) = key_of(addr);
        let hash = self.hash(&key, v6);
        loop {
            let candidates = Self::buckets_of(hash, self.buckets);
            for b in candidates {
                for i in b * WAYS..(b + 1) * WAYS {
                    let r = &self.slots[i];
                    if r.flags & FLAG_USED != 0 && r.addr == key && r.flags & FLAG_V6 == v6 {
                        return Some(i);
                    }
                }
            }
            let slot = match Self::free_slot(&self.slots, candidates) {
                Some(i) => {
                    self.used += 1;
                    i
                }
                None if self.buckets < self.max_buckets => {
                    self.grow();
                    continue;
                }
                None => match self.relocate(candidates) {
                    Some(i) => {
                        self.used += 1;
                        i
                    }
                    None => {
                        // Evict the least recently active record of the two buckets.
                        let victim = candidates
                            .into_iter()
                            .flat_map(|b| b * WAYS..(b + 1) * WAYS)
                            .max_by_key(|&i| self.slots[i].idle(now))?;
                        self.records_dropped += 1;
                        if self.slots[victim].ntp.rx != 0 {
                            self.ntp_held -= 1;
                        }
                        victim
                    }
                },
            };
            self.slots[slot] = Record {
                addr: key,
                flags: FLAG_USED | v6,
                ..EMPTY
            };
            return Some(slot);
        }
    }

    /// Logs one access: counts the hit, updates the interval estimates and credits the rate
    /// bucket. Returns the record index for [`limit`](Self::limit), or `None` when client
    /// logging is off.
    pub fn log_access(&mut self, addr: IpAddr, service: Service, now_mono: f64) -> Option<usize> {
        let now = ticks(now_mono);
        let index = self.lookup_or_insert(addr, now)?;
        let s = service as usize;
        let limiter = self.limiters[s];
        let r = &mut self.slots[index];
        if r.seen(s) {
            let interval = now.wrapping_sub(r.last[s]);
            let q = quarter_log2(interval);
            update_average(&mut r.rate[s], q);
            if service == Service::Ntp && r.limited(s) {
                update_average(&mut r.ntp_limited_rate, q);
            }
            if let Some(l) = limiter {
                r.tokens[s] = l.accrue(r.tokens[s], bucket_periods(r.last[s], interval));
            }
        } else {
            r.tokens[s] = limiter.map_or(0, |l| l.initial_tokens());
            r.flags |= FLAG_SEEN_BASE << s;
        }
        r.last[s] = now;
        r.hits[s] = r.hits[s].wrapping_add(1);
        Some(index)
    }

    /// Applies the service's rate limit to the access just logged at `index`.
    pub fn limit(&mut self, index: usize, service: Service, rng: &mut impl RngCore) -> RateVerdict {
        let s = service as usize;
        let Some(limiter) = self.limiters[s] else {
            return RateVerdict::Respond;
        };
        let Some(r) = self.slots.get_mut(index) else {
            return RateVerdict::Respond;
        };
        let suspended = service == Service::Ntp
            && r.ntp_limited_rate != UNKNOWN_INTERVAL
            && r.rate[s] != UNKNOWN_INTERVAL
            && i32::from(r.ntp_limited_rate) + 4 < i32::from(r.rate[s]);
        let verdict = limiter.decide(&mut r.tokens[s], suspended, rng);
        if verdict.responds() {
            r.flags &= !(FLAG_LIMITED_BASE << s);
        } else {
            r.flags |= FLAG_LIMITED_BASE << s;
            r.drops[s] = r.drops[s].wrapping_add(1);
        }
        verdict
    }

    /// The slot of `addr`'s record, if it is logged (no record is created).
    pub fn find(&self, addr: IpAddr) -> Option<usize> {
        if !self.enabled || self.buckets == 0 {
            return None;
        }
        let (key, v6) = key_of(addr);
        let hash = self.hash(&key, v6);
        Self::buckets_of(hash, self.buckets)
            .into_iter()
            .flat_map(|b| b * WAYS..(b + 1) * WAYS)
            .find(|&i| {
                let r = &self.slots[i];
                r.flags & FLAG_USED != 0 && r.addr == key && r.flags & FLAG_V6 == v6
            })
    }

    /// The interleaved-mode timestamps of slot `index` (zero for an empty slot).
    pub fn ntp_timestamps(&self, index: usize) -> NtpTimestamps {
        self.slots
            .get(index)
            .filter(|r| r.flags & FLAG_USED != 0)
            .map_or_else(NtpTimestamps::default, |r| r.ntp)
    }

    /// Records that a response answering a request received at `rx` is being sent to slot
    /// `index`'s client: its transmit time is unknown until [`note_ntp_tx`](Self::note_ntp_tx).
    pub fn save_ntp_rx(&mut self, index: usize, rx: u64) {
        if let Some(r) = self.slots.get_mut(index) {
            if r.flags & FLAG_USED == 0 {
                return;
            }
            match (r.ntp.rx != 0, rx != 0) {
                (false, true) => self.ntp_held += 1,
                (true, false) => self.ntp_held -= 1,
                _ => {}
            }
            r.ntp = NtpTimestamps { rx, tx: 0 };
            r.ntp_flags &= !NTP_TX_KERNEL;
        }
    }

    /// Sets the transmit time of the response that answered the request received at `rx`,
    /// if that is still slot `index`'s last one. A kernel stamp replaces the daemon's reading;
    /// a daemon reading never replaces a kernel stamp. Returns whether it was saved.
    pub fn note_ntp_tx(&mut self, index: usize, rx: u64, tx: u64, kernel: bool) -> bool {
        let Some(r) = self.slots.get_mut(index) else {
            return false;
        };
        if r.flags & FLAG_USED == 0 || r.ntp.rx != rx || rx == 0 {
            return false;
        }
        if !kernel && r.ntp_flags & NTP_TX_KERNEL != 0 {
            return false;
        }
        r.ntp.tx = tx;
        if kernel {
            r.ntp_flags |= NTP_TX_KERNEL;
        }
        true
    }

    /// Whether slot `index`'s client has sent an interleaved request (its responses' transmit
    /// times are then captured).
    pub fn is_interleaved(&self, index: usize) -> bool {
        self.slots
            .get(index)
            .is_some_and(|r| r.flags & FLAG_USED != 0 && r.ntp_flags & NTP_INTERLEAVED != 0)
    }

    /// Marks slot `index`'s client as using the interleaved mode (until its record goes).
    pub fn set_interleaved(&mut self, index: usize) {
        if let Some(r) = self.slots.get_mut(index) {
            r.ntp_flags |= NTP_INTERLEAVED;
        }
    }

    /// Records holding a receive timestamp ("NTP timestamps held" in chronyd's serverstats).
    pub fn ntp_timestamps_held(&self) -> usize {
        self.ntp_held
    }

    /// The report for slot `index` (0..[`slots`](Self::slots)), `None` for an empty slot.
    pub fn report(&self, index: usize, now_mono: f64) -> Option<ClientAccessReport> {
        let r = self.slots.get(index)?;
        if r.flags & FLAG_USED == 0 {
            return None;
        }
        let now = ticks(now_mono);
        let ago = |s: usize| {
            if r.seen(s) {
                (f64::from(now.wrapping_sub(r.last[s])) / TICKS_PER_SECOND) as u32
            } else {
                u32::MAX
            }
        };
        Some(ClientAccessReport {
            addr: r.address(),
            ntp_hits: r.hits[0],
            ntp_drops: r.drops[0],
            ntp_interval: report_interval(r.rate[0]),
            ntp_timeout_interval: report_interval(r.ntp_limited_rate),
            last_ntp_hit_ago: ago(0),
            nke_hits: r.hits[1],
            nke_drops: r.drops[1],
            nke_interval: report_interval(r.rate[1]),
            last_nke_hit_ago: ago(1),
            cmd_hits: r.hits[2],
            cmd_drops: r.drops[2],
            cmd_interval: report_interval(r.rate[2]),
            last_cmd_hit_ago: ago(2),
        })
    }

    /// `chronyc clients -r`: zero the hit and drop counters of slot `index`.
    pub fn reset_counters(&mut self, index: usize) {
        if let Some(r) = self.slots.get_mut(index) {
            r.hits = [0; 3];
            r.drops = [0; 3];
        }
    }
}

#[cfg(test)]
mod tests;
