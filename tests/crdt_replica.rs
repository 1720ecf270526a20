//! `Replica`: inflationary updates, merges, bytes, threshold queries and
//! waits, errors.

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use common::{block_on, poll_with, CountingWaker};
use lvars::crdt::codec::{to_bytes, DecodeError};
use lvars::crdt::{GCounter, GSet, ORSet, Replica, ReplicaError, ReplicaId, VClock};
use lvars::lattice::{Flat, Max};
use lvars::lvar::ThresholdSet;
use lvars::Error;

fn gset(items: &[&'static str]) -> GSet<&'static str> {
    items.iter().copied().collect()
}

#[test]
fn updates_must_be_inflationary() {
    let r: Replica<GSet<&str>> = Replica::new(ReplicaId(0));
    assert_eq!(r.set(gset(&["Book", "Shoes"])), Ok(true));
    // Removing Shoes by hand from a grow-only set loses information.
    assert_eq!(r.set(gset(&["Book"])), Err(ReplicaError::NotInflationary));
    assert_eq!(r.update(|s| *s = gset(&["Hat"])), Err(ReplicaError::NotInflationary));
    assert_eq!(r.state(), gset(&["Book", "Shoes"]));
    // Setting an equal or larger state is fine.
    assert_eq!(r.set(gset(&["Book", "Shoes"])), Ok(false));
    assert_eq!(r.set(gset(&["Book", "Hat", "Shoes"])), Ok(true));
    assert!(ReplicaError::NotInflationary.to_string().contains("not inflationary"));
}

#[test]
fn reaching_top_is_an_error_and_keeps_the_state() {
    let r: Replica<Flat<u8>> = Replica::new(ReplicaId(0));
    assert_eq!(r.merge(&Flat::Value(1)), Ok(true));
    assert_eq!(r.merge(&Flat::Value(1)), Ok(false));
    let err = r.merge(&Flat::Value(2)).unwrap_err();
    assert_eq!(err, ReplicaError::Lattice(Error::ConflictingPut { lvar: "Replica" }));
    assert!(err.to_string().contains("top"), "{err}");
    assert_eq!(r.update(|s| *s = Flat::Top), Err(err.clone()));
    assert_eq!(r.state(), Flat::Value(1));
    assert!(Replica::with_state(ReplicaId(1), Flat::<u8>::Top).is_err());
}

#[test]
fn merge_bytes_rejects_bad_bytes_and_keeps_the_state() {
    let a: Replica<ORSet<String>> = Replica::new(ReplicaId(0));
    let b: Replica<ORSet<String>> = Replica::new(ReplicaId(1));
    a.update(|s| {
        s.add(ReplicaId(0), "Book".to_string());
    })
    .unwrap();
    let bytes = a.encode_state();
    assert_eq!(
        b.merge_bytes(&bytes[..bytes.len() - 1]),
        Err(ReplicaError::Decode(DecodeError::UnexpectedEnd))
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        b.merge_bytes(&trailing),
        Err(ReplicaError::Decode(DecodeError::TrailingBytes { count: 1 }))
    );
    assert!(b.state().is_empty());
    assert_eq!(b.merge_bytes(&bytes), Ok(true));
    assert_eq!(b.merge_bytes(&bytes), Ok(false)); // duplicates are harmless
    assert!(b.state().contains(&"Book".to_string()));
}

#[test]
fn deltas_ship_only_what_the_peer_lacks() {
    let a: Replica<GCounter> = Replica::new(ReplicaId(0));
    let b: Replica<GCounter> = Replica::new(ReplicaId(1));
    a.update(|c| c.increment(ReplicaId(0), 5)).unwrap();
    b.update(|c| c.increment(ReplicaId(1), 7)).unwrap();
    b.merge_bytes(&a.encode_state()).unwrap();
    a.update(|c| c.increment(ReplicaId(0), 1)).unwrap();
    // b asks with its version; a answers with the counts b lacks.
    let since = b.version();
    let delta = a.delta_since(&since);
    assert_eq!((delta.get(ReplicaId(0)), delta.get(ReplicaId(1))), (6, 0));
    assert_eq!(b.merge_bytes(&a.encode_delta_since(&since)), Ok(true));
    assert_eq!(b.state().value(), 13);
    assert_eq!(b.encode_version(), to_bytes(&b.version()));
}

#[test]
fn query_answers_once_and_for_ever() {
    let r: Replica<Flat<u8>> = Replica::new(ReplicaId(0));
    let yes_or_no = ThresholdSet::new(vec![Flat::Value(1), Flat::Value(2)]).unwrap();
    assert_eq!(r.query(&yes_or_no), None);
    r.merge(&Flat::Value(2)).unwrap();
    assert_eq!(r.query(&yes_or_no), Some(Flat::Value(2)));
    let _ = r.merge(&Flat::Value(1)); // refused: would be top
    assert_eq!(r.query(&yes_or_no), Some(Flat::Value(2)));
}

#[test]
fn wait_parks_until_a_merge_reaches_the_threshold() {
    let r: Replica<GSet<&str>> = Replica::new(ReplicaId(0));
    let waker = CountingWaker::new();
    let mut fut = pin!(r.wait(ThresholdSet::single(gset(&["Book", "Hat"])).unwrap()));
    assert_eq!(poll_with(fut.as_mut(), &waker), Poll::Pending);
    r.merge(&gset(&["Book"])).unwrap();
    assert_eq!(waker.count(), 0, "woken before the threshold was reached");
    r.merge(&gset(&["Hat", "Shoes"])).unwrap();
    assert_eq!(waker.count(), 1);
    // Resolves to the threshold, not to the exact state.
    assert_eq!(poll_with(fut.as_mut(), &waker), Poll::Ready(gset(&["Book", "Hat"])));
}

#[test]
fn wait_view_answers_monotone_questions() {
    let r: Replica<GCounter> = Replica::new(ReplicaId(0));
    let total = |c: &GCounter| Max::new(c.value().min(3));
    let at_least_3 = ThresholdSet::single(Max::new(3)).unwrap();
    let waker = CountingWaker::new();
    let mut fut = pin!(r.wait_view(total, at_least_3.clone()));
    assert_eq!(poll_with(fut.as_mut(), &waker), Poll::Pending);
    r.update(|c| c.increment(ReplicaId(0), 2)).unwrap();
    assert_eq!(r.query_view(total, &at_least_3), None);
    let woken = waker.count();
    assert!(woken >= 1, "a change wakes view waits to re-check");
    assert_eq!(poll_with(fut.as_mut(), &waker), Poll::Pending);
    r.merge(&GCounter::from([(ReplicaId(1), 1)].into_iter().collect::<VClock>()))
        .unwrap();
    assert!(waker.count() > woken);
    assert_eq!(poll_with(fut.as_mut(), &waker), Poll::Ready(Max::new(3)));
    assert_eq!(r.query_view(total, &at_least_3), Some(Max::new(3)));
}

#[test]
fn replicas_are_shared_between_threads() {
    common::within(60, "replica shared by threads", || {
        let r: Arc<Replica<GCounter>> = Arc::new(Replica::new(ReplicaId(0)));
        let target = GCounter::from((0..4).map(|i| (ReplicaId(i), 100)).collect::<VClock>());
        let waiter = {
            let r = Arc::clone(&r);
            let t = ThresholdSet::single(target.clone()).unwrap();
            std::thread::spawn(move || block_on(r.wait(t)))
        };
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        r.update(|c| c.increment(ReplicaId(i), 1)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(waiter.join().unwrap(), target);
        assert_eq!(r.state(), target);
    });
}
