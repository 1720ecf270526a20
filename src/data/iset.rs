//! A lock-free grow-only hash set: the set LVar's core.
//!
//! # Layout
//!
//! A set has one of three representations, fixed when it is made. Sets of
//! the primitive integer types (`u8`..`u64`, `usize`, `i8`..`i64`,
//! `isize`) keep their elements in the slots of their tables ([`inline`]:
//! 8 bytes a slot, no entries); a [dense](RawISet::dense) set keeps one bit
//! per possible element ([`dense`]); every other set keeps entries, as
//! described here and in [`table`]. The three follow the same protocols
//! (publication by one `SeqCst` CAS, the own-range rule for migrations,
//! freeze by closing empty slots, exactly-once delivery by claiming), and
//! the counting, waiter and listener code below is shared.
//!
//! Every element is written once into an [`Entry`](table::Entry) (hash,
//! listener bits, value) in a cell of the set's [`arena`]; entries are never
//! moved or freed before the set is dropped, so an entry's address is the
//! element's identity. The set is a chain of
//! open-addressing tables with linear probing (see [`table`] for the slot
//! words, the probing invariant and the migration protocol), starting at
//! `root`; a table's `next` is its successor during a resize. There is no
//! lock and no single contended word on the insert path: an insert touches
//! its probe sequence, one counter stripe of its own thread, and reads the
//! heads of one waiter stripe, of the size waiters and of the listeners.
//!
//! # Insert
//!
//! Probe from the element's home slot: an equal element means "already
//! present" (`Ok(false)`); the first `EMPTY` slot gets the new entry with a
//! `SeqCst` CAS (allocated there, once, and reused if the CAS is lost); a
//! table that is migrating is left for its successor only after migrating
//! the insert's own probe sequence (the *own-range rule* of [`table`]).
//! **Invariant (exact membership).** Within one table two placements of
//! equal elements contend on one slot, and the own-range rule carries every
//! placement of an element into the successor before anyone probes the
//! successor for it: so the set never holds two entries of equal elements,
//! exactly one of several concurrent inserts of an element returns
//! `Ok(true)`, and an element is present from its CAS on, in every table
//! that a probe for it reaches.
//!
//! # Size
//!
//! A striped counter: each thread increments its own stripe once per
//! successful insert, after the CAS. The sum of the stripes never exceeds the
//! number of distinct elements and reaches it once the inserts return.
//! **Invariant (threshold on size).** Every stripe only grows, so a sum
//! read stripe by stripe is at most the size at the end of the read and at
//! least any sum read entirely before it: "sum >= n" is a monotone
//! condition, valid as a threshold, although no snapshot is ever taken. No
//! size wake-up is lost either: the increments are `SeqCst` RMWs and the
//! sums `SeqCst` loads, so of the inserts that together reach a threshold,
//! the last one in that total order sums every other's increment.
//! Resizes are driven by the same sum, read only when a thread's stripe
//! crosses a multiple of `capacity / 256`.
//!
//! # Threshold reads
//!
//! `wait_contains` parks on one of 64 waiter lists chosen by hash,
//! `wait_size` on one list; both follow the waiter protocol of
//! [`crate::lvar::waiters`]: the getter registers, fences and re-checks; the
//! inserter publishes (CAS and counter increment, both `SeqCst` RMWs), passes
//! the publication fence (`publication_fence`: a `SeqCst` fence under loom,
//! implied by the `SeqCst` RMWs otherwise) and only then loads the list heads
//! with `SeqCst` loads, scanning a list only if it is not empty and testing
//! each waiter against the current state (for `wait_contains`: the inserted
//! element, or a membership probe; for `wait_size`: the sum of the stripes). They resolve to `()`: the exact
//! state is never returned.
//!
//! # Freeze
//!
//! `freeze` completes every pending migration, CASes the last table's
//! `next` from null to the frozen sentinel (so it never grows again), then
//! closes every `EMPTY` slot of that table as `FROZEN` with a CAS and
//! collects the entries. **Invariant (freeze vs insert).** An insert's
//! publication is a CAS from `EMPTY` on one slot word; the freeze closes
//! the same word with a CAS from `EMPTY`, so the two are ordered on that
//! word: either the insert landed first (and the freeze, reading the slot
//! afterwards, returns it) or the insert finds `FROZEN` at the end of its
//! probe sequence and fails with `PutAfterFreeze`. Inserts into earlier
//! tables land before the migration that freeze completes, which copies
//! them. An insert whose element is present succeeds, frozen or not. The
//! frozen elements are only handed out sorted ([`RawISet::freeze_sorted`]),
//! never in table order.
//!
//! # Listeners (handlers)
//!
//! A listener gets a bit `0..64` and is pushed on a lock-free list with a
//! `SeqCst` CAS; then `add_listener` issues a `SeqCst` fence and scans every
//! table of the chain. An insert, after its `SeqCst` CAS and the publication
//! fence, loads the list with a `SeqCst` load. Whoever (scan or insert) wins
//! the listener's bit in the entry's `handled` word with `fetch_or` calls
//! `on_element`.
//! **Invariant (exactly once).** At most once: one `fetch_or` per
//! (entry, listener) wins. At least once (Dekker): the push and the entry's
//! CAS are each followed by a `SeqCst` fence (or, for the insert, an
//! equivalent `SeqCst` RMW + `SeqCst` load pair) and a read of the other's
//! location, so either the scan sees the entry (in its table, or, if that
//! table is complete, in the successor its migration copied it to) or the
//! insert sees the listener. Entries that lost their insert race were never
//! published and are never delivered. `on_element` runs on the inserting (or
//! adding) thread after every internal step.
//!
//! # Memory
//!
//! A complete table is unlinked from `root` but not freed: every table the
//! set ever had stays reachable from `first` through the `next` links and
//! is freed by `Drop`, with the entries and the listener nodes. So a table
//! pointer read from any atomic stays valid for `&self`'s lifetime, and no
//! operation needs an epoch pin (a locked instruction and a thread-local
//! lookup per insert, paid by every visit of a graph edge). The price is
//! memory: the old tables hold fewer slots together than the newest one
//! (each table is twice its predecessor), so at most one word per slot of
//! the newest table is kept beyond what an epoch would keep. Entries
//! live in a bump-allocated [`arena`] (one block cursor per counter stripe),
//! freed as a whole with the set.
//!
//! Modelled by `loom_tests/iset.rs`.

mod arena;
mod dense;
mod inline;
mod table;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::ptr;
use std::sync::Arc;

use self::arena::Arena;
pub use self::dense::DenseKey;
use self::dense::{Dense, Handled};
use self::inline::{InlineKey, InlineSet};
use self::table::{frozen_next, is_table, Entry, Probe, Table, COPIED};
use crate::error::Error;
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::striped::{thread_stripe, StripedCount, STRIPES};
use crate::sync::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

/// The hasher a [`RawISet`] uses unless told otherwise.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

/// The hasher of a listener's claim set in an inline set: the set's own
/// default, except under loom, whose models must hash the same way in every
/// execution.
#[cfg(not(loom))]
type ClaimHasher = DefaultHashBuilder;
#[cfg(loom)]
type ClaimHasher = foldhash::fast::FixedState;

/// `wait_contains` waiter lists, chosen by hash.
#[cfg(not(loom))]
const ELEM_STRIPES: usize = 64;
#[cfg(loom)]
const ELEM_STRIPES: usize = 2;

/// At most this many listeners per set (one bit each in `Entry::handled`).
const MAX_LISTENERS: usize = 64;

/// Slots of the smallest table.
const MIN_CAPACITY: usize = 2;

/// Elements a [`RawISet::new`] set holds before its first resize.
const DEFAULT_ELEMENTS: usize = 8;

/// Receives every element of a set exactly once (see the module doc): the
/// hook behind handler pools.
pub(crate) trait Listener<T>: Send + Sync {
    /// Called once per element, on the thread that inserted it (or that
    /// added the listener, for elements already present).
    fn on_element(&self, value: &T);
}

struct ListenerNode<T> {
    listener: Arc<dyn Listener<T>>,
    /// The listener's bit in every entry's `handled` word (hashed sets).
    bit: u64,
    /// The listener's delivered elements (dense sets only).
    dense_handled: Option<Handled>,
    /// The bits of the listener's delivered elements (inline sets only):
    /// an insert into this set claims a delivery.
    inline_claimed: Option<Box<RawISet<u64, ClaimHasher>>>,
    /// Written before the node is published, then immutable.
    next: *mut ListenerNode<T>,
}

/// What a `wait_contains` waits for.
struct Wanted<T> {
    hash: u64,
    value: T,
}

/// The entry arena of a set.
type EntryArena<T> = Arena<T, STRIPES>;

/// An insert's entry, allocated on the first empty slot the insert finds;
/// if the insert then finds the element present after all, its value is
/// dropped again (the cell stays unused).
pub(super) struct NewEntry<'a, T> {
    hash: u64,
    value: Option<T>,
    entry: *mut Entry<T>,
    arena: &'a EntryArena<T>,
    stripe: usize,
}

impl<'a, T> NewEntry<'a, T> {
    fn new(hash: u64, value: T, arena: &'a EntryArena<T>, stripe: usize) -> Self {
        Self {
            hash,
            value: Some(value),
            entry: ptr::null_mut(),
            arena,
            stripe,
        }
    }

    #[inline]
    fn value(&self) -> &T {
        match &self.value {
            Some(v) => v,
            // SAFETY: the value moves into `entry` when `entry` is set, and
            // `entry` is ours until `published`.
            None => unsafe { &(*self.entry).value },
        }
    }

    /// The slot word of the entry, allocating the entry the first time.
    #[inline]
    fn word(&mut self) -> usize {
        if self.entry.is_null() {
            let value = self.value.take().expect("the value moves into the entry once");
            let cell = self.arena.alloc(self.stripe);
            // SAFETY: a fresh cell, exclusively ours (arena invariant).
            unsafe {
                cell.write(Entry {
                    hash: self.hash,
                    handled: AtomicU64::new(0),
                    value,
                })
            };
            self.entry = cell;
        }
        table::encode(self.entry, self.hash)
    }

    /// The CAS succeeded: the entry now belongs to the set.
    fn published(mut self) -> *mut Entry<T> {
        std::mem::replace(&mut self.entry, ptr::null_mut())
    }
}

impl<T> Drop for NewEntry<'_, T> {
    fn drop(&mut self) {
        if !self.entry.is_null() {
            // SAFETY: written by `word` and never published: ours to drop.
            unsafe { ptr::drop_in_place(self.entry) };
        }
    }
}

/// A lock-free grow-only (insert-only) hash set without a session: the
/// core of the set LVar. The protocols are documented in the source
/// (`src/data/iset.rs` and its submodules).
///
/// Inserts are lock-free; reads that would expose timing
/// ([`contains`](Self::contains), [`len`](Self::len)) are documented as
/// such; the deterministic reads are the threshold futures
/// ([`wait_contains`](Self::wait_contains), [`wait_size`](Self::wait_size))
/// and the sorted frozen value ([`freeze_sorted`](Self::freeze_sorted)).
pub struct RawISet<T, S = DefaultHashBuilder> {
    /// The oldest table not yet complete (or the newest); never null.
    root: AtomicPtr<Table<T>>,
    /// The set's first table: with the `next` links, every table the set
    /// ever had (freed by `Drop`).
    first: *mut Table<T>,
    /// `Some` for a dense set (`dense.rs`): its elements are bits there and
    /// the tables stay empty.
    dense: Option<Box<Dense<T>>>,
    /// `Some` for a set of a primitive integer type (`inline.rs`): its
    /// elements live in the slots of these tables, and the entry tables
    /// stay empty.
    inline: Option<Box<InlineSet>>,
    hasher: S,
    /// Heads read on every insert: kept away from the counter stripes.
    listeners: AtomicPtr<ListenerNode<T>>,
    size_waiters: WaiterList<usize>,
    elem_waiters: [WaiterList<Arc<Wanted<T>>>; ELEM_STRIPES],
    listener_count: AtomicUsize,
    frozen: AtomicBool,
    counts: StripedCount,
    arena: EntryArena<T>,
    /// Slot 0's address and the mask of the newest table, for prefetching
    /// an insert's home slot before it is probed. Only a hint, never
    /// dereferenced (a stale or torn pair prefetches a useless line).
    hint: PrefetchHint,
}

// SAFETY: elements are shared by reference between threads (T: Send +
// Sync); tables and entries are reached only through atomics and freed by
// `Drop`; the hasher is used through `&self`.
unsafe impl<T: Send + Sync, S: Send> Send for RawISet<T, S> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync, S: Sync> Sync for RawISet<T, S> {}

impl<T: Hash + Eq + Send + Sync + 'static> Default for RawISet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Hash + Eq + Send + Sync + 'static> RawISet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_ELEMENTS)
    }

    /// An empty set that holds `n` elements before its first resize.
    pub fn with_capacity(n: usize) -> Self {
        Self::with_capacity_and_hasher(n, DefaultHashBuilder::default())
    }
}

impl<T: DenseKey> RawISet<T> {
    /// An empty *dense* set of the integers below `bound`: one bit per
    /// possible element (8 bytes per 63 possible elements, allocated at
    /// once, and as much again per handler or listener for its delivered
    /// bits), no hashing, no entries. For sets of small integer keys such as vertex numbers,
    /// where it makes inserting a present element one cached load.
    /// Inserting an integer `>= bound` fails with `OutOfRange`. Everything
    /// else (threshold reads, listeners, the sorted frozen value) behaves as
    /// for a hashed set.
    ///
    /// ```
    /// use lvars::data::RawISet;
    /// use lvars::Error;
    ///
    /// let s: RawISet<u32> = RawISet::dense(100);
    /// assert_eq!(s.insert(42), Ok(true));
    /// assert_eq!(s.insert(42), Ok(false));
    /// assert_eq!(s.insert(100), Err(Error::OutOfRange { lvar: "dense ISet" }));
    /// assert_eq!(s.extend([7, 99, 7]), Ok(2));
    /// assert_eq!(s.freeze_sorted(), vec![7, 42, 99]);
    /// ```
    pub fn dense(bound: usize) -> Self {
        let mut set = Self::with_capacity_and_hasher(0, DefaultHashBuilder::default());
        set.dense = Some(Box::new(Dense::new(bound)));
        set.inline = None;
        set
    }
}

impl<T: Hash + Eq + Send + Sync + 'static, S: BuildHasher> RawISet<T, S> {
    /// An empty set hashing with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        Self::with_capacity_and_hasher(DEFAULT_ELEMENTS, hasher)
    }

    /// An empty set that holds `n` elements before its first resize,
    /// hashing with `hasher`.
    pub fn with_capacity_and_hasher(n: usize, hasher: S) -> Self {
        let capacity = n
            .checked_mul(2)
            .and_then(usize::checked_next_power_of_two)
            .expect("RawISet capacity overflow")
            .max(MIN_CAPACITY);
        let inline = InlineKey::of::<T>().then(|| Box::new(InlineSet::new(capacity)));
        let first = Table::alloc(if inline.is_some() { MIN_CAPACITY } else { capacity });
        Self {
            root: AtomicPtr::new(first),
            first,
            dense: None,
            inline,
            hasher,
            listeners: AtomicPtr::new(ptr::null_mut()),
            size_waiters: WaiterList::new(),
            elem_waiters: std::array::from_fn(|_| WaiterList::new()),
            listener_count: AtomicUsize::new(0),
            frozen: AtomicBool::new(false),
            counts: StripedCount::new(),
            arena: Arena::new(),
            hint: PrefetchHint::default(),
        }
        .with_hint()
    }

    fn with_hint(self) -> Self {
        // SAFETY: the root is alive (`self` owns it).
        let t = unsafe { &*self.root.load(Relaxed) };
        self.hint.set(t.slots_addr(), t.capacity() - 1);
        self
    }

    /// Inserts `value`. Lock-free.
    ///
    /// Returns `Ok(true)` if it was new, `Ok(false)` if an equal element
    /// was already present (which element's insert "wins" is
    /// timing-dependent; sessions hide the flag). Fails with
    /// `PutAfterFreeze` if the set is frozen and `value` is new, and, for a
    /// [dense](Self::dense) set, with `OutOfRange` if `value` is not below
    /// its bound.
    #[inline]
    pub fn insert(&self, value: T) -> Result<bool, Error> {
        if let Some(d) = &self.dense {
            // Present already: one load, inlined into the caller (a graph
            // traversal meets most vertices again and again).
            if d.index(&value).is_some_and(|i| d.has_index(i)) {
                return Ok(false);
            }
            return self.insert_dense(d, value);
        }
        self.insert_hashing(value)
    }

    /// `insert` into a hashed or inline set.
    fn insert_hashing(&self, value: T) -> Result<bool, Error> {
        let hash = self.hasher.hash_one(&value);
        // The home slot's cache miss overlaps with the set-up of the insert.
        self.prefetch(hash);
        self.insert_with_hash(value, hash)
    }

    /// Prefetches the home slot of `hash` in the newest table.
    #[inline]
    fn prefetch(&self, hash: u64) {
        match &self.inline {
            Some(il) => il.prefetch(hash),
            None => self.hint.prefetch(hash),
        }
    }

    /// `insert` after hashing (and prefetching), into a hashed or inline set.
    #[inline]
    fn insert_with_hash(&self, value: T, hash: u64) -> Result<bool, Error> {
        match &self.inline {
            Some(il) => self.insert_inline(il, value, hash),
            None => self.insert_hashed(value, hash),
        }
    }

    /// `insert` into an inline set: the slot's CAS (or the special word's)
    /// is the publication, then the same counting, waking and delivering
    /// as for an entry.
    fn insert_inline(&self, il: &InlineSet, value: T, hash: u64) -> Result<bool, Error> {
        let bits = InlineKey::to_bits(&value);
        let stripe = thread_stripe();
        let counted = || self.counts.increment(stripe);
        if !il.insert(bits, hash, &|b| self.rehash(b), counted, || self.len())? {
            return Ok(false);
        }
        publication_fence();
        self.wake_waiters(hash, &value);
        self.deliver(&value, |l| {
            l.inline_claimed.as_ref().is_some_and(|c| c.insert(bits) == Ok(true))
        });
        Ok(true)
    }

    /// The hash of an inline element, from its bits (for migrations).
    #[inline]
    fn rehash(&self, bits: u64) -> u64 {
        self.hasher.hash_one(InlineKey::from_bits::<T>(bits))
    }

    /// Inserts every element of `values`; returns how many were new.
    /// Stops at the first error (`PutAfterFreeze`: the set is frozen and an
    /// element is new; `OutOfRange`: an element beyond a dense set's bound);
    /// the elements before it are in the set.
    ///
    /// Faster than inserting one by one when the set is larger than the
    /// cache: elements are hashed a batch at a time and every home slot of
    /// the batch is prefetched before the first insert, so the cache misses
    /// of a batch overlap instead of following each other.
    ///
    /// ```
    /// use lvars::data::RawISet;
    ///
    /// let s = RawISet::new();
    /// assert_eq!(s.extend([3, 1, 3, 2]), Ok(3));
    /// assert_eq!(s.len(), 3);
    /// ```
    pub fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<usize, Error> {
        const BATCH: usize = 16;
        let mut values = values.into_iter();
        if self.dense.is_some() {
            // Bits need no prefetching: one by one.
            return values.try_fold(0, |new, v| Ok(new + usize::from(self.insert(v)?)));
        }
        // On the stack: a batch costs no allocation.
        let mut batch: [Option<(u64, T)>; BATCH] = std::array::from_fn(|_| None);
        let mut new = 0;
        loop {
            let mut n = 0;
            for value in values.by_ref().take(BATCH) {
                let hash = self.hasher.hash_one(&value);
                self.prefetch(hash);
                batch[n] = Some((hash, value));
                n += 1;
            }
            if n == 0 {
                return Ok(new);
            }
            for (hash, value) in batch[..n].iter_mut().filter_map(Option::take) {
                new += usize::from(self.insert_with_hash(value, hash)?);
            }
        }
    }

    /// `insert` after hashing (and prefetching).
    fn insert_hashed(&self, value: T, hash: u64) -> Result<bool, Error> {
        let stripe = thread_stripe();
        let mut new = NewEntry::new(hash, value, &self.arena, stripe);
        let entry = {
            // SAFETY: `root` is never null; tables live as long as the set.
            let mut t = unsafe { &*self.root.load(Acquire) };
            loop {
                let next = t.next.load(Acquire);
                if is_table(next) {
                    // SAFETY: tables live as long as the set.
                    let n = unsafe { &*next };
                    let found = self.leave_migrating(t, n, hash, |w| {
                        // SAFETY: entries live as long as the set.
                        table::tag_matches(w, hash) && unsafe { entry_eq(table::entry_of(w), hash, new.value()) }
                    });
                    if found {
                        return Ok(false);
                    }
                    t = n;
                    continue;
                }
                match t.probe_insert(&mut new) {
                    Probe::Inserted => break,
                    Probe::Found => return Ok(false),
                    Probe::Moved => continue, // `next` is set now
                    Probe::Frozen => return Err(Error::PutAfterFreeze { lvar: "ISet" }),
                    Probe::Full => {
                        if t.next.load(Acquire) == frozen_next() {
                            // Absent, and nothing can be added any more.
                            return Err(Error::PutAfterFreeze { lvar: "ISet" });
                        }
                        // The loop goes on in the successor (or, if the table
                        // was frozen meanwhile, reports it on the next probe).
                        let _ = t.successor_for_full();
                    }
                }
            }
            let entry = new.published();
            let count = self.counts.increment(stripe);
            self.maybe_grow(t, count);
            entry
        };
        publication_fence();
        // SAFETY: published entries live as long as the set.
        let e = unsafe { &*entry };
        self.wake_waiters(hash, &e.value);
        self.deliver(&e.value, |l| e.handled.fetch_or(l.bit, AcqRel) & l.bit == 0);
        Ok(true)
    }

    /// `insert` into a dense set: the bit's CAS is the publication, then
    /// the same counting, waking and delivering as for an entry.
    #[inline(never)]
    fn insert_dense(&self, d: &Dense<T>, value: T) -> Result<bool, Error> {
        let i = d.index(&value).ok_or(Error::OutOfRange { lvar: "dense ISet" })?;
        if !d.insert(i)? {
            return Ok(false);
        }
        self.counts.increment(thread_stripe());
        publication_fence();
        self.wake_waiters(d.hash(&value), &value);
        self.deliver(&value, |l| l.dense_handled.as_ref().is_some_and(|h| h.claim(i)));
        Ok(true)
    }

    /// Wakes the waiters an insert of `value` (just published, after the
    /// publication fence) may satisfy.
    fn wake_waiters(&self, hash: u64, value: &T) {
        let stripe = &self.elem_waiters[elem_stripe(hash)];
        if !stripe.is_empty() {
            stripe.wake_matching(|w| (w.hash == hash && w.value == *value) || self.contains_hashed(w.hash, &w.value));
        }
        if !self.size_waiters.is_empty() {
            let n = self.len();
            self.size_waiters.wake_matching(|&want| n >= want);
        }
    }

    /// Before leaving a migrating table `t` for its successor `n`: helps
    /// the migration (claims chunks until none is left) and, unless it is
    /// complete, migrates the caller's own probe sequence. Returns `true`
    /// if `matches` found the element in `t` on the way.
    fn leave_migrating(&self, t: &Table<T>, n: &Table<T>, hash: u64, matches: impl Fn(usize) -> bool) -> bool {
        if !t.is_complete() {
            // SAFETY: `n` is `t`'s successor; tables live as long as the set.
            unsafe { t.help_migrate(n) };
            // SAFETY: as above.
            if !t.is_complete() && unsafe { t.migrate_range(n, hash, matches) } {
                return true;
            }
        }
        if t.is_complete() {
            self.advance_root();
        }
        false
    }

    /// Load-factor check after an insert into `t` by a thread whose stripe
    /// just reached `count`: every `capacity / 256` inserts of a stripe,
    /// read the size and grow beyond a load factor of 1/2.
    fn maybe_grow(&self, t: &Table<T>, count: usize) {
        let cap = t.capacity();
        let interval = (cap >> 8).max(1);
        if count & (interval - 1) != 0 || !t.next.load(Relaxed).is_null() || self.len() * 2 <= cap {
            return;
        }
        // A table grows only once its predecessors are complete (short
        // chains); until then, help them.
        let mut r = self.root.load(Acquire);
        while !ptr::eq(r, t) {
            // SAFETY: tables live as long as the set.
            let rt = unsafe { &*r };
            let next = rt.next.load(Acquire);
            if !is_table(next) {
                return; // `t` left the chain meanwhile
            }
            if !rt.is_complete() {
                // SAFETY: `next` is `rt`'s successor; tables live as long as the set.
                if unsafe { rt.help_migrate(&*next) } {
                    self.advance_root();
                }
                return;
            }
            r = next;
        }
        self.advance_root();
        if !t.claim_growth() {
            return;
        }
        if let Ok(n) = t.install_successor() {
            // SAFETY: just installed; tables live as long as the set.
            let nt = unsafe { &*n };
            self.hint.set(nt.slots_addr(), nt.capacity() - 1);
            // SAFETY: just installed as `t`'s successor; tables live as long as the set.
            if unsafe { t.help_migrate(&*n) } {
                self.advance_root();
            }
        }
    }

    /// Moves the root past complete tables (they stay allocated, reachable
    /// from `first`, until `Drop`).
    fn advance_root(&self) {
        loop {
            let r = self.root.load(Acquire);
            // SAFETY: tables live as long as the set.
            let rt = unsafe { &*r };
            if !rt.is_complete() {
                return;
            }
            // A complete table has a successor holding all its entries.
            let next = rt.next.load(Acquire);
            // SeqCst like every publication a listener scan must not miss.
            if self.root.compare_exchange(r, next, SeqCst, Acquire).is_err() {
                return; // another thread moved it on
            }
        }
    }

    /// Gives a newly published element to every listener for which
    /// `claim` (setting the listener's delivery bit of this element) wins.
    /// Call after the publication fence (module doc: exactly once).
    fn deliver(&self, value: &T, claim: impl Fn(&ListenerNode<T>) -> bool) {
        let mut node = self.listeners.load(SeqCst);
        while !node.is_null() {
            // SAFETY: listener nodes live as long as the set.
            let l = unsafe { &*node };
            if claim(l) {
                l.listener.on_element(value);
            }
            node = l.next;
        }
    }

    /// Whether `value` is in the set now. Quasi-deterministic: the answer
    /// depends on timing (`false` may turn `true` later); deterministic
    /// code waits with [`wait_contains`](Self::wait_contains) instead.
    pub fn contains(&self, value: &T) -> bool {
        self.contains_hashed(self.hash_of(value), value)
    }

    /// The hash the set files `value` under (its waiter stripe, and for a
    /// hashed set its home slot).
    fn hash_of(&self, value: &T) -> u64 {
        match &self.dense {
            Some(d) => d.hash(value),
            None => self.hasher.hash_one(value),
        }
    }

    fn contains_hashed(&self, hash: u64, value: &T) -> bool {
        if let Some(d) = &self.dense {
            return d.index(value).is_some_and(|i| d.contains_index(i));
        }
        if let Some(il) = &self.inline {
            return il.contains(InlineKey::to_bits(value), hash);
        }
        // SAFETY: the root is never null; tables live as long as the set.
        let mut t = unsafe { &*self.root.load(Acquire) };
        loop {
            match t.find(hash, value) {
                Some(found) => return found,
                None => {
                    let next = t.next.load(Acquire);
                    if !is_table(next) {
                        return false;
                    }
                    // SAFETY: tables live as long as the set.
                    t = unsafe { &*next };
                }
            }
        }
    }

    /// The number of elements whose inserts have completed (exact once
    /// every insert has returned). Quasi-deterministic: timing-dependent
    /// while inserts run; deterministic code uses
    /// [`wait_size`](Self::wait_size).
    pub fn len(&self) -> usize {
        self.counts.sum()
    }

    /// Whether [`len`](Self::len) is 0 (equally timing-dependent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until `value` is in the set. Resolves to `()`.
    pub fn wait_contains(&self, value: T) -> impl Future<Output = ()> + Send + '_
    where
        S: Sync,
    {
        let hash = self.hash_of(&value);
        WaitFuture::new(
            ContainsSrc {
                set: self,
                stripe: elem_stripe(hash),
            },
            Arc::new(Wanted { hash, value }),
        )
    }

    /// Waits until the set has at least `n` elements. Resolves to `()`.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_
    where
        S: Sync,
    {
        WaitFuture::new(SizeSrc { set: self }, n)
    }

    /// Freezes the set and returns its exact number of elements. Later
    /// inserts of new elements fail with `PutAfterFreeze`; inserts of
    /// elements already present still succeed.
    pub fn freeze(&self) -> usize {
        if let Some(d) = &self.dense {
            let n = d.freeze().len();
            self.frozen.store(true, SeqCst);
            return n;
        }
        if let Some(il) = &self.inline {
            let n = il.freeze(&|b| self.rehash(b)).len();
            self.frozen.store(true, SeqCst);
            return n;
        }
        self.freeze_entries().len()
    }

    /// Freezes the set and returns its elements, sorted: the same vector
    /// in every run that inserted the same elements.
    pub fn freeze_sorted(&self) -> Vec<T>
    where
        T: Ord + Clone,
    {
        if let Some(d) = &self.dense {
            // Ascending indices are ascending elements (`DenseKey`).
            let out = d.freeze().into_iter().map(|i| d.element(i)).collect();
            self.frozen.store(true, SeqCst);
            return out;
        }
        if let Some(il) = &self.inline {
            let mut out: Vec<T> = il
                .freeze(&|b| self.rehash(b))
                .into_iter()
                .map(InlineKey::from_bits::<T>)
                .collect();
            self.frozen.store(true, SeqCst);
            out.sort_unstable();
            return out;
        }
        let mut out: Vec<T> = self
            .freeze_entries()
            .into_iter()
            // SAFETY: entries live as long as the set.
            .map(|e| unsafe { (*e).value.clone() })
            .collect();
        out.sort_unstable();
        out
    }

    /// Whether [`freeze`](Self::freeze) (or `freeze_sorted`) has returned.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(SeqCst)
    }

    /// The freeze protocol (module doc): complete every migration, seal the
    /// last table, close its empty slots, collect its entries.
    fn freeze_entries(&self) -> Vec<*mut Entry<T>> {
        // SAFETY: the root is never null; tables live as long as the set.
        let mut t = unsafe { &*self.root.load(Acquire) };
        loop {
            let next = t.next.load(Acquire);
            if next.is_null() {
                if t.next
                    .compare_exchange(ptr::null_mut(), frozen_next(), AcqRel, Acquire)
                    .is_ok()
                {
                    break;
                }
                continue; // a successor or another freeze got there first
            }
            if next == frozen_next() {
                break;
            }
            // SAFETY: `next` is `t`'s successor; tables live as long as the set.
            unsafe { t.finish(&*next) };
            self.advance_root();
            // SAFETY: tables live as long as the set.
            t = unsafe { &*next };
        }
        let mut out = Vec::new();
        t.close_for_freeze(&mut out);
        self.frozen.store(true, SeqCst);
        out
    }

    /// Registers a listener: `on_element` will be called exactly once for
    /// every element that is or will be in the set (module doc). Fails with
    /// `OutOfRange` beyond 64 listeners on one set.
    // Used by the handler pools of `par` (and by the tests).
    pub(crate) fn add_listener(&self, listener: Arc<dyn Listener<T>>) -> Result<(), Error> {
        let index = self
            .listener_count
            .fetch_update(Relaxed, Relaxed, |n| (n < MAX_LISTENERS).then_some(n + 1))
            .map_err(|_| Error::OutOfRange { lvar: "ISet listeners" })?;
        let bit = 1u64 << index;
        let node = Box::into_raw(Box::new(ListenerNode {
            listener,
            bit,
            dense_handled: self.dense.as_ref().map(|d| Handled::new(d.bound())),
            inline_claimed: self
                .inline
                .as_ref()
                .map(|_| Box::new(RawISet::with_hasher(ClaimHasher::default()))),
            next: ptr::null_mut(),
        }));
        let mut head = self.listeners.load(Relaxed);
        loop {
            // SAFETY: `node` is ours until the CAS publishes it.
            unsafe { (*node).next = head };
            match self.listeners.compare_exchange_weak(head, node, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        fence(SeqCst);
        // SAFETY: listener nodes live as long as the set.
        let listener = unsafe { &(*node).listener };
        if let Some(d) = &self.dense {
            // SAFETY: as above; set for dense sets.
            let handled = unsafe { (*node).dense_handled.as_ref() }.expect("a dense set's listener has a bitmap");
            let mut won = Vec::new();
            d.for_each_index(|i| {
                if handled.claim(i) {
                    won.push(i);
                }
            });
            for i in won {
                listener.on_element(&d.element(i));
            }
            return Ok(());
        }
        if let Some(il) = &self.inline {
            // SAFETY: as above; set for inline sets.
            let claimed = unsafe { (*node).inline_claimed.as_ref() }.expect("an inline set's listener has a claim set");
            let mut won = Vec::new();
            il.for_each(|bits| {
                if claimed.insert(bits) == Ok(true) {
                    won.push(bits);
                }
            });
            for bits in won {
                listener.on_element(&InlineKey::from_bits::<T>(bits));
            }
            return Ok(());
        }
        let mut won = Vec::new();
        {
            // SAFETY: the root is never null; tables live as long as the set.
            let mut t = unsafe { &*self.root.load(Acquire) };
            loop {
                t.for_each_entry(|e| {
                    // SAFETY: entries live as long as the set.
                    if unsafe { (*e).handled.fetch_or(bit, AcqRel) } & bit == 0 {
                        won.push(e);
                    }
                });
                let next = t.next.load(Acquire);
                if !is_table(next) {
                    break;
                }
                // SAFETY: tables live as long as the set.
                t = unsafe { &*next };
            }
        }
        for e in won {
            // SAFETY: entries live as long as the set.
            listener.on_element(unsafe { &(*e).value });
        }
        Ok(())
    }

    /// Loom hook: [`add_listener`](Self::add_listener) with a closure (the
    /// listener trait is crate-private).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn loom_add_listener(&self, f: impl Fn(&T) + Send + Sync + 'static) -> Result<(), Error> {
        struct F<G>(G);
        impl<T, G: Fn(&T) + Send + Sync> Listener<T> for F<G> {
            fn on_element(&self, value: &T) {
                (self.0)(value)
            }
        }
        self.add_listener(Arc::new(F(f)))
    }
}

/// # Safety
/// `e` is a live entry.
#[inline]
unsafe fn entry_eq<T: Eq>(e: *mut Entry<T>, hash: u64, value: &T) -> bool {
    // SAFETY: caller contract.
    unsafe { (*e).hash == hash && (*e).value == *value }
}

/// The fence of the waiter and listener protocols, between an insert's
/// publication (the slot CAS and the counter increment) and its reads of
/// the list heads.
///
/// Under loom it is a `SeqCst` fence, as in the other cores. In normal
/// builds it is omitted because it is implied: the slot CAS and the counter
/// `fetch_add` are `SeqCst` RMWs and the head loads are `SeqCst` loads, so
/// all of them are in the single total order S, publication first. The
/// other side pushes with a `SeqCst` CAS and then fences: if its fence
/// precedes our CAS in S, our head load (later in S than its push) sees the
/// push; otherwise our CAS precedes its fence, and every load it makes after
/// the fence sees our CAS (C++20 [atomics.order] fence rules). Loom models
/// `SeqCst` accesses as acquire/release only, hence the explicit fence there.
/// (On x86-64 the `lock xadd` of the counter is already a full barrier: the
/// fence would only add an `mfence`.)
#[inline]
fn publication_fence() {
    #[cfg(loom)]
    fence(SeqCst);
}

/// Where the newest table's slots are (see `RawISet::hint`).
#[derive(Default)]
struct PrefetchHint {
    // Plain std atomics: a hint is no part of any protocol.
    slots: std::sync::atomic::AtomicUsize,
    mask: std::sync::atomic::AtomicUsize,
}

impl PrefetchHint {
    /// Points the hint at a table's slots (`slots`: slot 0's address).
    fn set(&self, slots: usize, mask: usize) {
        self.mask.store(mask, std::sync::atomic::Ordering::Relaxed);
        self.slots.store(slots, std::sync::atomic::Ordering::Relaxed);
    }

    /// Not under loom or Miri: the address is rebuilt from an integer (an
    /// integer-to-pointer cast, which Miri's Tree Borrows warns about even
    /// though a prefetch never dereferences it).
    #[inline]
    fn prefetch(&self, hash: u64) {
        #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
        {
            let base = self.slots.load(std::sync::atomic::Ordering::Relaxed);
            let mask = self.mask.load(std::sync::atomic::Ordering::Relaxed);
            let addr = base.wrapping_add((hash as usize & mask) * std::mem::size_of::<usize>());
            // SAFETY: prefetching is a hint and never faults, whatever the
            // address.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8) };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
        let _ = hash;
    }
}

fn elem_stripe(hash: u64) -> usize {
    (hash >> 32) as usize % ELEM_STRIPES
}

/// The source of a `wait_contains`: the set and the waiter stripe.
struct ContainsSrc<'a, T, S> {
    set: &'a RawISet<T, S>,
    stripe: usize,
}

impl<T: Hash + Eq + Send + Sync + 'static, S: BuildHasher> Waitable for ContainsSrc<'_, T, S> {
    type Query = Arc<Wanted<T>>;
    type Output = ();

    fn waiters(&self) -> &WaiterList<Arc<Wanted<T>>> {
        &self.set.elem_waiters[self.stripe]
    }

    fn check(&self, w: &Arc<Wanted<T>>) -> Option<()> {
        self.set.contains_hashed(w.hash, &w.value).then_some(())
    }
}

/// The source of a `wait_size`.
struct SizeSrc<'a, T, S> {
    set: &'a RawISet<T, S>,
}

impl<T: Hash + Eq + Send + Sync + 'static, S: BuildHasher> Waitable for SizeSrc<'_, T, S> {
    type Query = usize;
    type Output = ();

    fn waiters(&self) -> &WaiterList<usize> {
        &self.set.size_waiters
    }

    fn check(&self, n: &usize) -> Option<()> {
        (self.set.len() >= *n).then_some(())
    }
}

impl<T, S> RawISet<T, S> {
    /// Removes every listener and returns them, for the caller to drop.
    /// Sessions call it before dropping their sets: listener closures may
    /// hold handles of other sets of the session, so all closures go first,
    /// while every set is still alive (see `Session`'s `Drop`).
    pub(crate) fn take_listeners(&mut self) -> Vec<Arc<dyn Listener<T>>> {
        let mut out = Vec::new();
        let mut node = self.listeners.swap(ptr::null_mut(), Relaxed);
        while !node.is_null() {
            // SAFETY: listener nodes are owned by the set; unlinked above
            // through `&mut self`, so nobody else can reach them.
            let n = unsafe { Box::from_raw(node) };
            node = n.next;
            out.push(n.listener);
        }
        out
    }
}

impl<T, S> Drop for RawISet<T, S> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in progress, so every `MARK`ed slot
        // has been copied (`migrate_slot` runs no user code between the
        // mark and the `COPIED` flag) and every published entry sits in
        // exactly one slot that is not `COPIED`: drop each value there.
        // Tables before the root are complete: all their entries are
        // `COPIED` and dropped where they were copied to.
        let mut t = self.first;
        while is_table(t) {
            // SAFETY: every table the set had is linked from `first` and
            // owned by the set; each is freed once, here.
            let table = unsafe { Box::from_raw(t) };
            table.for_each_slot(|word, e| {
                if word & COPIED == 0 {
                    // SAFETY: a published entry, dropped once (above); its
                    // cell is freed with the arena.
                    unsafe { ptr::drop_in_place(e) }
                }
            });
            t = table.next.load(Relaxed);
        }
        drop(self.take_listeners());
    }
}
