//! Pipelined paging of the daemon's client log for `clients` (CLIENT_ACCESSES_BY_INDEX3,
//! features.md §3.5).
//!
//! chronyc asks for one page at a time: up to 8 records from slot `first_index` on, and the
//! reply's `next_index` says where to continue, so 10,000 clients cost 1,250 sequential round
//! trips. The slots a page covers are only known from its reply, but they are never fewer
//! than the records it holds (one record per slot) and pages of a static table do not depend
//! on each other. So, after the first page shows the table size, the remaining pages are
//! requested speculatively, many in flight, spaced by the slots the last full page spanned.
//! Pages are then merged in slot order: a page starting at or before the covered prefix
//! extends it (records it shares with an earlier page are recognised by address, which
//! the daemon keeps in one slot); where a reply stops short of the next page, the gap is
//! requested in the next round. The output is the same rows, in the same order, as chronyc's
//! one-by-one walk. With `-r` (reset) the walk stays sequential, since an overlapping page would
//! reset and report a record twice.

use gnomon_cmdmon::{Addr, ClientAccess, ClientAccesses};
use std::collections::{BTreeMap, HashSet};

/// Most page requests sent in one round.
const MAX_ROUND: usize = 1024;

/// Merges pages of the client log, fetched in any order, into the rows chronyc would list.
#[derive(Debug, Default)]
pub struct ClientPages {
    /// Slots below this are merged.
    covered: u32,
    /// Table size (`n_indices`) from the first page.
    n_indices: u32,
    /// Slots the last full page spanned: the speculation stride.
    stride: u32,
    /// Fetched pages not merged yet, by first slot.
    pending: BTreeMap<u32, ClientAccesses>,
    seen: HashSet<Addr>,
    rows: Vec<ClientAccess>,
    /// The daemon stopped advancing (or the walk reached the end).
    done: bool,
}

impl ClientPages {
    /// Starts from the page at slot 0.
    pub fn new(first: ClientAccesses) -> ClientPages {
        let mut p = ClientPages {
            n_indices: first.n_indices,
            stride: first
                .next_index
                .max(gnomon_cmdmon::MAX_CLIENT_ACCESSES as u32),
            ..ClientPages::default()
        };
        p.add(0, first);
        p
    }

    /// Adds the reply to the request for `first_index` and merges what it can.
    pub fn add(&mut self, first_index: u32, page: ClientAccesses) {
        self.pending.insert(first_index, page);
        while !self.done {
            let Some((&f, _)) = self.pending.range(..=self.covered).next() else {
                break;
            };
            let Some(page) = self.pending.remove(&f) else {
                break;
            };
            if page.next_index <= self.covered {
                if f == self.covered {
                    // A page that does not advance from the covered prefix: the daemon's
                    // walk ends here (chronyc stops the same way).
                    self.done = true;
                }
                continue;
            }
            if page.clients.len() >= gnomon_cmdmon::MAX_CLIENT_ACCESSES {
                // A full page measures how many slots 8 records take here.
                self.stride = (page.next_index - f).max(gnomon_cmdmon::MAX_CLIENT_ACCESSES as u32);
            }
            for c in page.clients {
                if self.seen.insert(c.ip) {
                    self.rows.push(c);
                }
            }
            self.covered = page.next_index;
            if self.covered >= page.n_indices.min(self.n_indices) {
                self.done = true;
            }
        }
    }

    /// The first slots to request next: the start of every gap between fetched pages, and
    /// stride-spaced pages past the last one. Empty when the walk is complete.
    pub fn wanted(&self) -> Vec<u32> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        let mut c = self.covered;
        for (&f, page) in &self.pending {
            if f > c {
                out.push(c);
            }
            c = c.max(page.next_index).max(f.saturating_add(1));
        }
        while c < self.n_indices && out.len() < MAX_ROUND {
            out.push(c);
            c = c.saturating_add(self.stride);
        }
        out.truncate(MAX_ROUND);
        out
    }

    /// Whether every page has been merged.
    pub fn is_done(&self) -> bool {
        self.done || self.wanted().is_empty()
    }

    /// The merged rows, in slot order.
    pub fn into_rows(self) -> Vec<ClientAccess> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A client table of `slots` slots; `used(i)` says whether slot i holds a client.
    fn table(slots: u32, used: impl Fn(u32) -> bool) -> Vec<Option<ClientAccess>> {
        (0..slots)
            .map(|i| {
                used(i).then(|| ClientAccess {
                    ip: Addr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                    ntp_hits: i,
                    ..ClientAccess::default()
                })
            })
            .collect()
    }

    /// The daemon's answer: up to 8 records from `first` on.
    fn page(t: &[Option<ClientAccess>], first: u32) -> ClientAccesses {
        let mut clients = Vec::new();
        let mut i = first as usize;
        while i < t.len() && clients.len() < 8 {
            if let Some(c) = t[i] {
                clients.push(c);
            }
            i += 1;
        }
        ClientAccesses {
            n_indices: t.len() as u32,
            next_index: i as u32,
            clients,
        }
    }

    /// chronyc's sequential walk.
    fn sequential(t: &[Option<ClientAccess>]) -> Vec<ClientAccess> {
        let mut rows = Vec::new();
        let mut first = 0;
        loop {
            let p = page(t, first);
            rows.extend(p.clients.iter().copied());
            if p.next_index <= first || p.next_index >= p.n_indices {
                return rows;
            }
            first = p.next_index;
        }
    }

    /// The pipelined walk, answering each round's requests in reverse order; returns the rows
    /// and the number of rounds.
    fn pipelined(t: &[Option<ClientAccess>]) -> (Vec<ClientAccess>, usize) {
        let mut p = ClientPages::new(page(t, 0));
        let mut rounds = 0;
        while !p.is_done() {
            rounds += 1;
            assert!(rounds < 1000, "walk does not terminate");
            for f in p.wanted().into_iter().rev() {
                p.add(f, page(t, f));
            }
        }
        (p.into_rows(), rounds)
    }

    #[test]
    fn pipelined_walk_lists_the_same_rows_as_chronycs_walk() {
        let x = |i: u32| (i.wrapping_mul(2_654_435_761) >> 7) % 100;
        let cases: Vec<Vec<Option<ClientAccess>>> = vec![
            table(16_384, |i| x(i) < 61),             // 10,000 hashed clients
            table(16_384, |i| i < 9_000),             // dense start, empty end
            table(16_384, |i| i >= 16_000),           // empty start: a wide first page
            table(4096, |i| x(i) < 3 || i % 97 == 0), // sparse
            table(128, |_| true),
            table(128, |_| false),
            table(7, |i| i != 3),
            table(0, |_| false),
        ];
        for t in &cases {
            let (rows, rounds) = pipelined(t);
            assert_eq!(rows, sequential(t), "table of {} slots", t.len());
            assert!(rounds <= 4, "{rounds} rounds for {} slots", t.len());
        }
    }

    #[test]
    fn a_daemon_that_does_not_advance_ends_the_walk() {
        let stuck = ClientAccesses {
            n_indices: 100,
            next_index: 0,
            clients: Vec::new(),
        };
        let p = ClientPages::new(stuck);
        assert!(p.is_done());
        assert!(p.into_rows().is_empty());
    }
}
