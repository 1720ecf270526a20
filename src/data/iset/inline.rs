//! Inline sets: elements of the primitive integer types live in the slots
//! themselves, with no entry behind them.
//!
//! A hashed set of `u64` keys stores, per element, a slot word pointing to
//! an entry (hash, listener bits, value: 24 bytes) and the entry; a million
//! such elements are about 40 MB and miss the last-level cache on every
//! insert. An integer is its own identity, so [`RawISet`](super::RawISet)
//! keeps the elements of `u8`..`u64`, `usize`, `i8`..`i64` and `isize`
//! directly in the slot words of the tables below (8 bytes per slot, half
//! of them used at most). The type decides, not the caller: every
//! constructor of a set of such a type makes an inline set (see
//! [`InlineKey`]).
//!
//! # Slot words
//!
//! | word | meaning |
//! |---|---|
//! | `EMPTY` (0) | never used |
//! | `CLOSED` (1) | empty, closed: by a migration if `next` is a table, by `freeze` if `next` is the frozen sentinel |
//! | `bits + 2` (wrapping) | the element whose bits (zero-extended) are `bits` |
//!
//! The two elements whose word would be `EMPTY` or `CLOSED` (bits
//! `u64::MAX - 1` and `u64::MAX`, which only 64-bit types have) are bits 0
//! and 1 of the `specials` word instead, with bit 63 as its `FROZEN` flag:
//! the protocol of a dense set's word (`dense.rs`).
//!
//! A slot is closed only after its table's `next` was set (to a successor
//! or to the frozen sentinel) with the CAS that precedes every closing, so
//! whoever reads `CLOSED` (acquiring the closing CAS) finds `next` set.
//!
//! # Protocols
//!
//! These are the protocols of the entry tables (`table.rs`), with keys in
//! place of entry pointers:
//!
//! **Invariant (slot monotonicity).** A slot leaves `EMPTY` at most once,
//! by a CAS (to an element or to `CLOSED`), and never changes again. With
//! linear probing: an element sits at the first slot from its home that
//! was `EMPTY` when it was placed, every slot between held an element then
//! and still does, so a probe that meets `EMPTY` or `CLOSED` before the
//! element knows it is not in this table, and two placements of one
//! element in one table contend on one slot (no duplicates).
//!
//! **Migration.** A successor twice the size is installed with a CAS on
//! `next`; then every slot of the old table is *migrated*: `EMPTY` is
//! closed with a CAS, an element is *placed* in the successor (an
//! idempotent probe that stops at the element itself or CASes it into the
//! first empty slot). Slots holding elements never change, so they need no
//! mark: placing the same element twice (a chunk owner and an inserter's
//! range pass) finds it the second time. Chunks are shared through
//! [`Migration`]. A placement needs the element's hash, recomputed from its
//! bits with the set's hasher (`rehash`).
//!
//! **Invariant (own range).** A thread that is going to probe the
//! successor for an element `x` first migrates `x`'s probe sequence in the
//! old table, from its home to the first `EMPTY` slot, which it closes; it
//! stops early if it meets `x` (then `x` is present, and whoever probes
//! for it in the successor has migrated this same range first). An insert
//! of `x` into the old table either landed before that closing CAS (and
//! the range pass placed it) or fails on it and goes to the successor: so
//! the successor sees every placement of `x` in one probe sequence, and the
//! no-duplicate argument carries over to the whole chain.
//!
//! **Freeze.** Complete every migration, CAS the last table's `next` from
//! null to the frozen sentinel, close every `EMPTY` slot with a CAS, and
//! set `FROZEN` in `specials`. An insert and the freeze are ordered on the
//! word of the first `EMPTY` slot of the element's probe sequence (or on
//! `specials`): the insert landed first and the freeze collects it, or the
//! insert meets `CLOSED` with the frozen sentinel behind it and fails.
//!
//! Tables are freed only with the set (as for entry tables), so a table
//! pointer read from `root` or a `next` link stays valid for `&self`'s
//! lifetime, and no operation needs an epoch pin.
//!
//! Modelled by `loom_tests/iset.rs` (`inline_*`).

use std::any::TypeId;
use std::ptr;

use crossbeam_utils::CachePadded;

use super::table::{frozen_next, is_table, Migration};
use super::PrefetchHint;
use crate::error::Error;
use crate::sync::{AtomicPtr, AtomicU64, Ordering::*};

const EMPTY: u64 = 0;
const CLOSED: u64 = 1;
/// Added to an element's bits to make its slot word.
const OFFSET: u64 = 2;
/// `specials`: bit 63 is the frozen flag.
const SPECIALS_FROZEN: u64 = 1 << 63;

/// The element types an inline set stores in its slots: the primitive
/// integers of at most 64 bits. Not a trait bound: a set checks its element
/// type once, when it is made ([`InlineKey::of`]).
pub(super) struct InlineKey;

macro_rules! with_inline_types {
    ($m:ident) => {
        $m!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, usize => u64,
            i8 => u8, i16 => u16, i32 => u32, i64 => u64, isize => u64)
    };
}

impl InlineKey {
    /// Whether `T` is one of the inline types.
    pub(super) fn of<T: 'static>() -> bool {
        macro_rules! any {
            ($($t:ty => $u:ty),*) => { false $(|| TypeId::of::<T>() == TypeId::of::<$t>())* };
        }
        with_inline_types!(any) && std::mem::size_of::<T>() <= 8
    }

    /// The bits of `v` (its two's complement pattern, zero-extended): a
    /// bijection between `T` and its image, so equal bits are equal
    /// elements.
    ///
    /// # Panics
    /// If `T` is not an inline type (callers check [`InlineKey::of`]).
    #[inline]
    pub(super) fn to_bits<T: 'static>(v: &T) -> u64 {
        macro_rules! bits {
            ($($t:ty => $u:ty),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    // SAFETY: `T` is `$t` (same type id), so `v` points to
                    // a `$t`.
                    let x = unsafe { *(v as *const T as *const $t) };
                    return x as $u as u64;
                }
            )*};
        }
        with_inline_types!(bits);
        unreachable!("InlineKey::to_bits on a type that is not inline")
    }

    /// The element of `bits` (which came from [`to_bits`](Self::to_bits)).
    ///
    /// # Panics
    /// If `T` is not an inline type.
    #[inline]
    pub(super) fn from_bits<T: 'static>(bits: u64) -> T {
        macro_rules! value {
            ($($t:ty => $u:ty),*) => {$(
                if TypeId::of::<T>() == TypeId::of::<$t>() {
                    let x = bits as $u as $t;
                    // SAFETY: `T` is `$t` (same type id): same size and
                    // validity.
                    return unsafe { std::mem::transmute_copy::<$t, T>(&x) };
                }
            )*};
        }
        with_inline_types!(value);
        unreachable!("InlineKey::from_bits on a type that is not inline")
    }
}

/// The slot word of `bits`, or `None` for the two special elements.
#[inline]
fn encode(bits: u64) -> Option<u64> {
    let w = bits.wrapping_add(OFFSET);
    (w > CLOSED).then_some(w)
}

#[inline]
fn decode(word: u64) -> u64 {
    word.wrapping_sub(OFFSET)
}

/// The `specials` bit of a special element (its word would be 0 or 1).
#[inline]
fn special_bit(bits: u64) -> u64 {
    1 << bits.wrapping_add(OFFSET)
}

/// What a probe for an insert found.
enum Probe {
    Inserted,
    Found,
    /// Met `CLOSED`: look at `next` (a successor, or frozen).
    Closed,
    Full,
}

struct Table {
    slots: Box<[AtomicU64]>,
    mask: usize,
    /// Null, a successor, or the frozen sentinel.
    next: AtomicPtr<Table>,
    migration: CachePadded<Migration>,
}

impl Table {
    fn alloc(capacity: usize) -> *mut Table {
        debug_assert!(capacity.is_power_of_two());
        Box::into_raw(Box::new(Table {
            slots: zeroed_slots(capacity),
            mask: capacity - 1,
            next: AtomicPtr::new(ptr::null_mut()),
            migration: Migration::new(),
        }))
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the index is masked.
        unsafe { self.slots.get_unchecked(i & self.mask) }
    }

    fn probe_insert(&self, word: u64, hash: u64) -> Probe {
        let mut i = hash as usize;
        for _ in 0..=self.mask {
            let slot = self.slot(i);
            let mut v = slot.load(Acquire);
            if v == EMPTY {
                // Publication of the element (SeqCst: the set's waiter and
                // listener protocols).
                match slot.compare_exchange(EMPTY, word, SeqCst, Acquire) {
                    Ok(_) => return Probe::Inserted,
                    Err(actual) => v = actual,
                }
            }
            if v == word {
                return Probe::Found;
            }
            if v == CLOSED {
                return Probe::Closed;
            }
            i = i.wrapping_add(1);
        }
        Probe::Full
    }

    /// Whether `word` is here; `None`: not here, look in `next`.
    fn find(&self, word: u64, hash: u64) -> Option<bool> {
        let mut i = hash as usize;
        for _ in 0..=self.mask {
            match self.slot(i).load(Acquire) {
                EMPTY => return Some(false),
                CLOSED => return None,
                v if v == word => return Some(true),
                _ => i = i.wrapping_add(1),
            }
        }
        None
    }

    /// Migrates the probe sequence of `word` (own-range rule): every
    /// element from `hash`'s home to the first `EMPTY` slot, which is
    /// closed. Returns `true` (and stops) if it meets `word` itself.
    fn migrate_range(&self, next: &Table, word: u64, hash: u64, rehash: &impl Fn(u64) -> u64) -> bool {
        let mut i = hash as usize;
        let mut seen = 0;
        while seen <= self.mask {
            let slot = self.slot(i);
            let v = slot.load(Acquire);
            if v == EMPTY {
                if slot.compare_exchange(EMPTY, CLOSED, SeqCst, Acquire).is_ok() {
                    return false;
                }
                continue; // look at what took the slot
            }
            if v == CLOSED {
                return false;
            }
            if v == word {
                return true;
            }
            next.place(v, rehash(decode(v)), rehash);
            i = i.wrapping_add(1);
            seen += 1;
        }
        false
    }

    /// Closes slot `i` or places its element in `next`. Idempotent.
    fn migrate_slot(&self, next: &Table, i: usize, rehash: &impl Fn(u64) -> u64) {
        let slot = self.slot(i);
        let mut v = slot.load(Acquire);
        if v == EMPTY {
            match slot.compare_exchange(EMPTY, CLOSED, SeqCst, Acquire) {
                Ok(_) => return,
                Err(actual) => v = actual,
            }
        }
        if v != CLOSED {
            next.place(v, rehash(decode(v)), rehash);
        }
    }

    /// Places `word` in this table or, if it is migrating or full, in a
    /// successor: stops at `word` itself or CASes it into the first empty
    /// slot. Idempotent.
    fn place(&self, word: u64, hash: u64, rehash: &impl Fn(u64) -> u64) {
        let mut t = self;
        'tables: loop {
            let mut i = hash as usize;
            for _ in 0..=t.mask {
                let slot = t.slot(i);
                let mut v = slot.load(Acquire);
                if v == EMPTY {
                    match slot.compare_exchange(EMPTY, word, SeqCst, Acquire) {
                        Ok(_) => return,
                        Err(actual) => v = actual,
                    }
                }
                if v == word {
                    return;
                }
                if v == CLOSED {
                    let next = t.next.load(Acquire);
                    if !is_table(next) {
                        // Unreachable: a table is frozen only after its
                        // predecessors' migrations completed.
                        debug_assert!(false, "a copy never goes into a frozen table");
                        return;
                    }
                    // SAFETY: tables live as long as the set.
                    let next = unsafe { &*next };
                    if t.migrate_range(next, word, hash, rehash) {
                        return; // in `t`; `t`'s migration carries it on
                    }
                    t = next;
                    continue 'tables;
                }
                i = i.wrapping_add(1);
            }
            match t.successor_for_full() {
                // SAFETY: tables live as long as the set.
                Some(n) => t = unsafe { &*n },
                None => {
                    debug_assert!(false, "a copy never goes into a frozen table");
                    return;
                }
            }
        }
    }

    /// The successor of a full table, installing one if there is none yet;
    /// `None` if the table is frozen.
    fn successor_for_full(&self) -> Option<*mut Table> {
        let next = self.next.load(Acquire);
        if is_table(next) {
            return Some(next);
        }
        let n = match self.install_successor() {
            Ok(n) | Err(n) => n,
        };
        is_table(n).then_some(n)
    }

    /// Allocates a table twice the size and CASes it into `next`: `Ok` if
    /// ours was installed, else `Err` with what `next` holds.
    fn install_successor(&self) -> Result<*mut Table, *mut Table> {
        let new = Table::alloc(self.capacity() * 2);
        // SeqCst like every publication a listener scan must not miss.
        match self.next.compare_exchange(ptr::null_mut(), new, SeqCst, Acquire) {
            Ok(_) => Ok(new),
            Err(actual) => {
                // SAFETY: `new` was never published.
                drop(unsafe { Box::from_raw(new) });
                Err(actual)
            }
        }
    }

    /// Claims chunks of the migration to `next` until none is left; `true`
    /// if this call completed it.
    fn help_migrate(&self, next: &Table, rehash: &impl Fn(u64) -> u64) -> bool {
        self.migration.help(self.capacity(), |start, end| {
            for i in start..end {
                self.migrate_slot(next, i, rehash);
            }
        })
    }

    /// Migrates every slot itself and marks the table complete.
    fn finish(&self, next: &Table, rehash: &impl Fn(u64) -> u64) {
        if self.migration.is_complete() {
            return;
        }
        for i in 0..self.capacity() {
            self.migrate_slot(next, i, rehash);
        }
        self.migration.set_complete();
    }

    /// The elements' words in this table, including those of a migrating
    /// table.
    fn for_each_word(&self, mut f: impl FnMut(u64)) {
        for s in self.slots.iter() {
            let v = s.load(Acquire);
            if v != EMPTY && v != CLOSED {
                f(v);
            }
        }
    }
}

/// `capacity` zeroed (`EMPTY`) slots.
fn zeroed_slots(capacity: usize) -> Box<[AtomicU64]> {
    #[cfg(not(loom))]
    {
        use std::mem::align_of;
        // Where `u64` is less aligned than `AtomicU64` (i686, for one: found
        // by review), the boxes' layouts differ: write the slots instead.
        if align_of::<u64>() != align_of::<AtomicU64>() {
            return (0..capacity).map(|_| AtomicU64::new(EMPTY)).collect();
        }
        // Zeroed memory straight from the allocator (large tables come as
        // untouched zero pages instead of being written slot by slot).
        let zeros: Box<[u64]> = vec![0u64; capacity].into_boxed_slice();
        // SAFETY: `std::sync::atomic::AtomicU64` has the same size and bit
        // validity as `u64`, and the same alignment (checked above), so the
        // allocation's layout is the same for both slice types.
        unsafe { Box::from_raw(Box::into_raw(zeros) as *mut [AtomicU64]) }
    }
    #[cfg(loom)]
    {
        (0..capacity).map(|_| AtomicU64::new(EMPTY)).collect()
    }
}

/// The elements of an inline set: a chain of tables and the two special
/// elements. Counting, waiters and listeners stay with the set.
pub(super) struct InlineSet {
    /// The oldest table not yet complete (or the newest); never null.
    root: AtomicPtr<Table>,
    /// With the `next` links, every table the set ever had (freed by `Drop`).
    first: *mut Table,
    specials: AtomicU64,
    /// Where the newest table's slots are, for prefetching home slots.
    hint: PrefetchHint,
}

// SAFETY: tables are reached only through atomics and freed by `Drop`.
unsafe impl Send for InlineSet {}
// SAFETY: as above.
unsafe impl Sync for InlineSet {}

impl InlineSet {
    pub(super) fn new(capacity: usize) -> Self {
        let first = Table::alloc(capacity);
        let set = Self {
            root: AtomicPtr::new(first),
            first,
            specials: AtomicU64::new(0),
            hint: PrefetchHint::default(),
        };
        set.set_hint(first);
        set
    }

    fn set_hint(&self, t: *mut Table) {
        // SAFETY: tables live as long as the set.
        let t = unsafe { &*t };
        self.hint.set(t.slots.as_ptr() as usize, t.mask);
    }

    /// Hints the CPU to fetch the home slot of `hash` in the newest table.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        self.hint.prefetch(hash);
    }

    #[inline]
    fn root(&self) -> &Table {
        // SAFETY: never null; tables live as long as the set.
        unsafe { &*self.root.load(Acquire) }
    }

    /// Inserts the element of `bits`, whose hash is `hash`. On success,
    /// `counted` is called (it counts the element and returns the caller's
    /// stripe count) and `len` may be read to decide on growing. `Ok(true)`
    /// if it was new; `PutAfterFreeze` if it was new and the set is frozen.
    pub(super) fn insert(
        &self,
        bits: u64,
        hash: u64,
        rehash: &impl Fn(u64) -> u64,
        counted: impl FnOnce() -> usize,
        len: impl Fn() -> usize,
    ) -> Result<bool, Error> {
        let Some(word) = encode(bits) else {
            let new = self.insert_special(special_bit(bits))?;
            if new {
                counted();
            }
            return Ok(new);
        };
        let mut t = self.root();
        loop {
            let next = t.next.load(Acquire);
            if is_table(next) {
                // SAFETY: tables live as long as the set.
                let n = unsafe { &*next };
                if self.leave_migrating(t, n, word, hash, rehash) {
                    return Ok(false);
                }
                t = n;
                continue;
            }
            match t.probe_insert(word, hash) {
                Probe::Inserted => break,
                Probe::Found => return Ok(false),
                Probe::Closed | Probe::Full if t.next.load(Acquire) == frozen_next() => {
                    // Absent (a closed slot ends the probe sequence), and
                    // nothing can be added any more.
                    return Err(Error::PutAfterFreeze { lvar: "ISet" });
                }
                Probe::Closed => {} // `next` is a successor now
                Probe::Full => {
                    // Goes on in the successor (or, if the table was frozen
                    // meanwhile, fails on the next probe).
                    let _ = t.successor_for_full();
                }
            }
        }
        let count = counted();
        self.maybe_grow(t, count, len, rehash);
        Ok(true)
    }

    /// The dense word protocol on `specials`.
    fn insert_special(&self, bit: u64) -> Result<bool, Error> {
        let mut cur = self.specials.load(Acquire);
        loop {
            if cur & bit != 0 {
                return Ok(false);
            }
            if cur & SPECIALS_FROZEN != 0 {
                return Err(Error::PutAfterFreeze { lvar: "ISet" });
            }
            // SeqCst: the publication of the element.
            match self.specials.compare_exchange_weak(cur, cur | bit, SeqCst, Acquire) {
                Ok(_) => return Ok(true),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Whether the element of `bits` is in the set now.
    pub(super) fn contains(&self, bits: u64, hash: u64) -> bool {
        let Some(word) = encode(bits) else {
            return self.specials.load(SeqCst) & special_bit(bits) != 0;
        };
        let mut t = self.root();
        loop {
            if let Some(found) = t.find(word, hash) {
                return found;
            }
            let next = t.next.load(Acquire);
            if !is_table(next) {
                return false;
            }
            // SAFETY: tables live as long as the set.
            t = unsafe { &*next };
        }
    }

    /// Before leaving a migrating table `t` for its successor `n`: helps the
    /// migration and, unless it is complete, migrates the element's own
    /// probe sequence. `true` if the element was found in `t` on the way.
    fn leave_migrating(&self, t: &Table, n: &Table, word: u64, hash: u64, rehash: &impl Fn(u64) -> u64) -> bool {
        if !t.migration.is_complete() {
            t.help_migrate(n, rehash);
            if !t.migration.is_complete() && t.migrate_range(n, word, hash, rehash) {
                return true;
            }
        }
        if t.migration.is_complete() {
            self.advance_root();
        }
        false
    }

    /// The load-factor check of `RawISet::maybe_grow`: every
    /// `capacity / 256` inserts of a stripe, grow beyond a load factor of
    /// 1/2, once the predecessors are complete.
    fn maybe_grow(&self, t: &Table, count: usize, len: impl Fn() -> usize, rehash: &impl Fn(u64) -> u64) {
        let cap = t.capacity();
        let interval = (cap >> 8).max(1);
        if count & (interval - 1) != 0 || !t.next.load(Relaxed).is_null() || len() * 2 <= cap {
            return;
        }
        let mut r = self.root.load(Acquire);
        while !ptr::eq(r, t) {
            // SAFETY: tables live as long as the set.
            let rt = unsafe { &*r };
            let next = rt.next.load(Acquire);
            if !is_table(next) {
                return; // `t` left the chain meanwhile
            }
            if !rt.migration.is_complete() {
                // SAFETY: tables live as long as the set.
                if rt.help_migrate(unsafe { &*next }, rehash) {
                    self.advance_root();
                }
                return;
            }
            r = next;
        }
        self.advance_root();
        if !t.migration.claim_growth() {
            return;
        }
        if let Ok(n) = t.install_successor() {
            self.set_hint(n);
            // SAFETY: just installed; tables live as long as the set.
            if t.help_migrate(unsafe { &*n }, rehash) {
                self.advance_root();
            }
        }
    }

    /// Moves the root past complete tables.
    fn advance_root(&self) {
        loop {
            let r = self.root.load(Acquire);
            // SAFETY: tables live as long as the set.
            let rt = unsafe { &*r };
            if !rt.migration.is_complete() {
                return;
            }
            let next = rt.next.load(Acquire);
            if self.root.compare_exchange(r, next, SeqCst, Acquire).is_err() {
                return;
            }
        }
    }

    /// Calls `f` on the bits of every element present now (each at least
    /// once; an element being migrated may be seen in two tables, so
    /// callers deduplicate, as listener claims do). Call after a `SeqCst`
    /// fence to take part in the listener protocol.
    pub(super) fn for_each(&self, mut f: impl FnMut(u64)) {
        let specials = self.specials.load(SeqCst);
        for bits in [u64::MAX - 1, u64::MAX] {
            if specials & special_bit(bits) != 0 {
                f(bits);
            }
        }
        let mut t = self.root();
        loop {
            t.for_each_word(|w| f(decode(w)));
            let next = t.next.load(Acquire);
            if !is_table(next) {
                return;
            }
            // SAFETY: tables live as long as the set.
            t = unsafe { &*next };
        }
    }

    /// The freeze protocol (module doc): the bits of every element, each
    /// once, in no particular order.
    pub(super) fn freeze(&self, rehash: &impl Fn(u64) -> u64) -> Vec<u64> {
        let mut t = self.root();
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
            // SAFETY: tables live as long as the set.
            let n = unsafe { &*next };
            t.finish(n, rehash);
            self.advance_root();
            t = n;
        }
        let mut out = Vec::new();
        for slot in t.slots.iter() {
            let mut v = slot.load(Acquire);
            if v == EMPTY {
                match slot.compare_exchange(EMPTY, CLOSED, AcqRel, Acquire) {
                    Ok(_) => continue,
                    Err(actual) => v = actual,
                }
            }
            if v != CLOSED {
                out.push(decode(v));
            }
        }
        let specials = self.specials.fetch_or(SPECIALS_FROZEN, SeqCst);
        for bits in [u64::MAX - 1, u64::MAX] {
            if specials & special_bit(bits) != 0 {
                out.push(bits);
            }
        }
        out
    }
}

impl Drop for InlineSet {
    fn drop(&mut self) {
        let mut t = self.first;
        while is_table(t) {
            // SAFETY: every table the set had is linked from `first` and
            // owned by the set; each is freed once, here.
            let table = unsafe { Box::from_raw(t) };
            t = table.next.load(Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_for_every_inline_type() {
        fn round_trip<T: 'static + Copy + PartialEq + std::fmt::Debug>(values: &[T]) {
            assert!(InlineKey::of::<T>());
            for &v in values {
                assert_eq!(InlineKey::from_bits::<T>(InlineKey::to_bits(&v)), v);
            }
        }
        round_trip(&[0u8, 1, 255]);
        round_trip(&[0u16, 65535]);
        round_trip(&[0u32, u32::MAX]);
        round_trip(&[0u64, u64::MAX - 1, u64::MAX]);
        round_trip(&[0usize, usize::MAX]);
        round_trip(&[i8::MIN, -1, 0, i8::MAX]);
        round_trip(&[i16::MIN, -1]);
        round_trip(&[i32::MIN, -1, i32::MAX]);
        round_trip(&[i64::MIN, -1, -2, i64::MAX]);
        round_trip(&[isize::MIN, -1]);
        assert_eq!(InlineKey::to_bits(&-1i32), u32::MAX as u64, "zero-extended");
        assert!(!InlineKey::of::<String>() && !InlineKey::of::<(u32, u32)>() && !InlineKey::of::<u128>());
    }

    #[test]
    fn a_half_done_migration_keeps_every_element_once() {
        let s = InlineSet::new(16);
        let rehash = |b: u64| b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let insert = |k: u64| s.insert(k, rehash(k), &rehash, || 1, || 0);
        for k in 0..6 {
            assert_eq!(insert(k), Ok(true));
        }
        // A resize nobody has helped yet, then one range migrated by hand.
        let root = s.root();
        // SAFETY: just installed; tables live as long as the set.
        let next = unsafe { &*root.install_successor().unwrap() };
        let w = encode(2).unwrap();
        assert!(root.migrate_range(next, w, rehash(2), &rehash), "meets 2 itself");
        root.migrate_range(next, encode(9).unwrap(), rehash(9), &rehash);
        assert!((0..6).all(|k| s.contains(k, rehash(k))));
        assert!(!s.contains(6, rehash(6)));
        assert_eq!(insert(3), Ok(false));
        assert_eq!(insert(6), Ok(true));
        assert_eq!(insert(6), Ok(false));
        let mut all = s.freeze(&rehash);
        all.sort_unstable();
        assert_eq!(
            all,
            [0, 1, 2, 3, 4, 5, 6],
            "each element once, after the migration completed"
        );
    }

    #[test]
    fn special_elements_live_beside_the_tables() {
        let s = InlineSet::new(2);
        let rehash = |b: u64| b;
        let mut n = 0;
        for bits in [u64::MAX, u64::MAX - 1, 0, 1, 2, u64::MAX] {
            let _ = s.insert(
                bits,
                bits,
                &rehash,
                || {
                    n += 1;
                    n
                },
                || 0,
            );
        }
        assert_eq!(n, 5, "u64::MAX counted once");
        assert!(s.contains(u64::MAX, 0) && s.contains(u64::MAX - 1, 0) && s.contains(1, 1));
        assert!(!s.contains(3, 3));
        let mut all = s.freeze(&rehash);
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, u64::MAX - 1, u64::MAX]);
        assert_eq!(
            s.insert(u64::MAX, 0, &rehash, || 0, || 0),
            Ok(false),
            "present: fine after freeze"
        );
        assert_eq!(
            s.insert(7, 7, &rehash, || 0, || 0),
            Err(Error::PutAfterFreeze { lvar: "ISet" })
        );
    }
}
