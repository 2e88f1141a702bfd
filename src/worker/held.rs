//! What a worker holds: the deliveries it has leased, per endpoint: waiting to start, in
//! flight (being sent: these count against the endpoint's cap), or sent and waiting for their
//! result to be written (these count as held, not against the cap).
//!
//! The worker claims ahead: up to twice an endpoint's cap, so that when an attempt ends the
//! next one starts at once instead of after a claim's round trip. It claims for an endpoint
//! again only once what it holds for it has fallen to the cap (the low watermark), so a busy
//! endpoint costs one claim per `cap` deliveries, not one per delivery.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use uuid::Uuid;

use crate::db::webhooks::Claimed;

/// How many deliveries, per endpoint and in all, a worker holds for each slot.
pub(super) const AHEAD: usize = 2;

#[derive(Debug)]
pub(super) struct Held {
    /// Attempts one endpoint may have in flight.
    cap: usize,
    endpoints: HashMap<Uuid, Endpoint>,
    total: usize,
    /// Endpoints that fell to the low watermark since the last claim.
    freed: HashSet<Uuid>,
}

#[derive(Debug, Default)]
struct Endpoint {
    in_flight: usize,
    recording: usize,
    waiting: VecDeque<Waiting>,
}

impl Endpoint {
    fn count(&self) -> usize {
        self.in_flight + self.recording + self.waiting.len()
    }
}

#[derive(Debug)]
struct Waiting {
    claimed: Claimed,
    /// Not started by then, it is given back: its lease would not outlast the attempt.
    start_by: Instant,
}

/// What [`Held::next`] found.
#[derive(Debug)]
pub(super) struct Next<P> {
    /// To start now, each with its global slot.
    pub start: Vec<(Claimed, P)>,
    /// Held too long to start safely: give their leases back.
    pub expired: Vec<Uuid>,
}

impl Held {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            endpoints: HashMap::new(),
            total: 0,
            freed: HashSet::new(),
        }
    }

    /// Most deliveries held for one endpoint.
    pub fn per_endpoint(&self) -> usize {
        AHEAD * self.cap
    }

    pub fn total(&self) -> usize {
        self.total
    }

    fn count(&self, endpoint: &Uuid) -> usize {
        self.endpoints.get(endpoint).map_or(0, Endpoint::count)
    }

    /// What a claim must know: how many each endpoint holds, and the endpoints to leave out
    /// (above the low watermark: they have enough until they fall to it).
    pub fn for_claim(&self) -> (Vec<(Uuid, i32)>, Vec<Uuid>) {
        let mut busy = Vec::with_capacity(self.endpoints.len());
        let mut full = Vec::new();
        for id in self.endpoints.keys() {
            let n = self.count(id);
            busy.push((*id, n as i32));
            if n > self.cap {
                full.push(*id);
            }
        }
        (busy, full)
    }

    /// Takes claimed deliveries in, in claim order, each to start by `start_by`.
    pub fn hold(&mut self, claimed: Vec<Claimed>, start_by: Instant) {
        self.total += claimed.len();
        for c in claimed {
            self.endpoints
                .entry(c.endpoint_id)
                .or_default()
                .waiting
                .push_back(Waiting {
                    claimed: c,
                    start_by,
                });
        }
    }

    /// The deliveries that may start now: in each endpoint's order, while it has fewer than
    /// `cap` in flight and `slot` gives a global slot.
    pub fn next<P>(&mut self, now: Instant, mut slot: impl FnMut() -> Option<P>) -> Next<P> {
        let mut next = Next {
            start: Vec::new(),
            expired: Vec::new(),
        };
        let mut slots_left = true;
        for e in self.endpoints.values_mut() {
            while let Some(w) = e.waiting.front() {
                if w.start_by <= now {
                    let w = e.waiting.pop_front().expect("a front");
                    next.expired.push(w.claimed.id);
                    continue;
                }
                if !slots_left || e.in_flight >= self.cap {
                    break;
                }
                let Some(p) = slot() else {
                    slots_left = false;
                    break;
                };
                let w = e.waiting.pop_front().expect("a front");
                e.in_flight += 1;
                next.start.push((w.claimed, p));
            }
        }
        self.total -= next.expired.len();
        self.endpoints.retain(|_, e| e.count() > 0);
        next
    }

    /// An attempt of `endpoint` has its answer (or gave up): the endpoint has a slot again.
    pub fn sent(&mut self, endpoint: Uuid) {
        if let Some(e) = self.endpoints.get_mut(&endpoint)
            && e.in_flight > 0
        {
            e.in_flight -= 1;
            e.recording += 1;
        }
    }

    /// An attempt of `endpoint` ended: its result is written (or could not be), or it was
    /// cut short before it was `sent`.
    pub fn finished(&mut self, endpoint: Uuid, sent: bool) {
        let Some(e) = self.endpoints.get_mut(&endpoint) else {
            return;
        };
        if sent {
            e.recording = e.recording.saturating_sub(1);
        } else {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
        self.total = self.total.saturating_sub(1);
        let left = e.count();
        if left == 0 {
            self.endpoints.remove(&endpoint);
        }
        if left <= self.cap {
            self.freed.insert(endpoint);
        }
    }

    /// Whether a claim is worth making for what ended since the last one: an endpoint is at
    /// or below its low watermark (its next deliveries may be due, too). Forgets the ends.
    pub fn take_freed(&mut self) -> bool {
        let freed = std::mem::take(&mut self.freed);
        freed.iter().any(|e| self.count(e) <= self.cap)
    }

    /// Forgets every delivery not started (at shutdown; their leases are given back).
    pub fn drop_waiting(&mut self) {
        for e in self.endpoints.values_mut() {
            self.total -= e.waiting.len();
            e.waiting.clear();
        }
        self.endpoints.retain(|_, e| e.count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn delivery(endpoint: Uuid) -> Claimed {
        Claimed {
            id: Uuid::new_v4(),
            tenant_id: "t".into(),
            endpoint_id: endpoint,
            attempts: 0,
            url: "https://example.com/hook".into(),
            secret: "s".into(),
            previous_secrets: serde_json::json!([]),
            msg_id: "evt".into(),
            body: "{}".into(),
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn starts_at_most_the_cap_per_endpoint_in_claim_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut held = Held::new(2);
        let claimed: Vec<Claimed> = [a, a, a, b].into_iter().map(delivery).collect();
        let order: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
        held.hold(claimed, later());
        let next = held.next(Instant::now(), || Some(()));
        let mut started: Vec<Uuid> = next.start.iter().map(|(c, _)| c.id).collect();
        started.sort();
        let mut expected = vec![order[0], order[1], order[3]];
        expected.sort();
        assert_eq!(started, expected, "the first two of a, and b");
        assert_eq!(held.total(), 4, "in flight and waiting both count");
        // One of a's ends: the third starts.
        held.finished(a, false);
        let next = held.next(Instant::now(), || Some(()));
        assert_eq!(next.start.len(), 1);
        assert_eq!(next.start[0].0.id, order[2]);
    }

    #[test]
    fn global_slots_bound_what_starts() {
        let mut held = Held::new(8);
        held.hold((0..5).map(|_| delivery(Uuid::new_v4())).collect(), later());
        let mut slots = 3;
        let next = held.next(Instant::now(), || {
            (slots > 0).then(|| {
                slots -= 1;
            })
        });
        assert_eq!(next.start.len(), 3);
        assert_eq!(held.total(), 5);
    }

    #[test]
    fn an_endpoint_is_claimed_for_again_only_at_its_low_watermark() {
        let e = Uuid::new_v4();
        let mut held = Held::new(2);
        held.hold((0..4).map(|_| delivery(e)).collect(), later());
        assert_eq!(held.for_claim().1, vec![e], "4 held > cap 2: left out");
        let _ = held.next(Instant::now(), || Some(()));
        held.finished(e, false);
        assert!(!held.take_freed(), "3 held: still above the watermark");
        let _ = held.next(Instant::now(), || Some(()));
        held.finished(e, false);
        assert_eq!(held.for_claim(), (vec![(e, 2)], vec![]));
        assert!(held.take_freed(), "2 held: claim again");
        assert!(!held.take_freed(), "told once");
        let _ = held.next(Instant::now(), || Some(()));
        held.finished(e, false);
        held.finished(e, false);
        assert!(held.take_freed());
        assert_eq!(held.total(), 0);
        assert_eq!(held.for_claim(), (vec![], vec![]));
    }

    #[test]
    fn a_freed_endpoint_refilled_meanwhile_asks_for_nothing() {
        let e = Uuid::new_v4();
        let mut held = Held::new(1);
        held.hold(vec![delivery(e)], later());
        let _ = held.next(Instant::now(), || Some(()));
        held.finished(e, false);
        held.hold(vec![delivery(e), delivery(e)], later());
        assert!(
            !held.take_freed(),
            "a claim already refilled it above the watermark"
        );
    }

    #[test]
    fn a_sent_attempt_frees_its_endpoints_slot_but_stays_held_until_written() {
        let e = Uuid::new_v4();
        let mut held = Held::new(1);
        held.hold(vec![delivery(e), delivery(e)], later());
        assert_eq!(held.next(Instant::now(), || Some(())).start.len(), 1);
        assert!(
            held.next(Instant::now(), || Some(())).start.is_empty(),
            "at the cap"
        );
        held.sent(e);
        assert_eq!(held.next(Instant::now(), || Some(())).start.len(), 1);
        assert_eq!(held.for_claim().0, vec![(e, 2)], "both still held");
        held.finished(e, true);
        held.finished(e, false);
        assert_eq!(held.total(), 0);
        assert_eq!(held.for_claim(), (vec![], vec![]));
    }

    #[test]
    fn deliveries_held_past_their_start_by_are_given_back() {
        let e = Uuid::new_v4();
        let mut held = Held::new(1);
        let soon = Instant::now();
        held.hold(vec![delivery(e), delivery(e)], soon);
        let next = held.next(soon + Duration::from_millis(1), || Some(()));
        assert!(next.start.is_empty());
        assert_eq!(next.expired.len(), 2);
        assert_eq!(held.total(), 0);
    }

    #[test]
    fn dropping_the_waiting_keeps_what_is_in_flight() {
        let e = Uuid::new_v4();
        let mut held = Held::new(1);
        held.hold(vec![delivery(e), delivery(e)], later());
        let _ = held.next(Instant::now(), || Some(()));
        held.drop_waiting();
        assert_eq!(held.total(), 1);
        held.finished(e, false);
        assert_eq!(held.total(), 0);
    }
}
