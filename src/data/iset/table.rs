//! Entries, slot words and the open-addressing tables of the grow-only set,
//! with their migration protocol. The set-level protocols (counting,
//! waiters, listeners, freeze) live in the parent module.
//!
//! # Slot words
//!
//! A slot is one `AtomicUsize`:
//!
//! | word | meaning |
//! |---|---|
//! | `EMPTY` (0) | never used |
//! | `MOVED` (`MARK`, no pointer) | empty, closed by a migration: look in `next` |
//! | `FROZEN` (`COPIED`, no pointer) | empty, closed by `freeze`: nothing more goes here |
//! | pointer | an entry |
//! | pointer \| `MARK` | an entry being migrated (no longer changes except to `COPIED`) |
//! | pointer \| `MARK` \| `COPIED` | an entry already placed in `next` |
//!
//! Entries are 8-aligned, so the three low bits are free: `MARK`, `COPIED`
//! and `TAGGED`. On 64-bit targets a pointer below 2^48 (every user-space
//! pointer on x86-64 and aarch64 Linux today; checked for each entry) also
//! carries the top 16 bits of the element's hash in its top 16 bits and the
//! `TAGGED` bit, so a probe skips non-matching entries without touching them;
//! an entry that does not fit is stored untagged and always compared.
//!
//! **Invariant (slot monotonicity).** A slot leaves `EMPTY` at most once, by
//! a CAS (to an entry, `MOVED` or `FROZEN`), and a slot holding an entry
//! holds that same entry until the table is freed (migration only adds
//! `MARK` and `COPIED`). With linear probing this gives: an entry sits at
//! the first slot from its home that was `EMPTY` when it was placed, and
//! every slot between its home and it held an entry then and still does. So
//! a probe that meets `EMPTY`, `MOVED` or `FROZEN` before meeting an element
//! knows the element is not in this table, and two placements of the same
//! element (or of the same entry) in one table contend on the same slot, so
//! a table never holds one element twice.
//!
//! # Migration (resize)
//!
//! A full-enough table gets a successor of twice its size, installed once
//! with a CAS on its `next` (null -> table; the `FROZEN_NEXT` sentinel
//! instead means "frozen: never grows"). Then every slot of the old table is
//! *closed*: `fetch_or(MARK)` turns `EMPTY` into `MOVED` (no insert can land
//! there any more) and an entry into a marked entry (frozen in place); a
//! marked entry is then *placed* in the successor (by pointer identity: an
//! idempotent probe that stops at the entry itself or CASes it into the
//! first empty slot) and the slot is flagged `COPIED`. Every step is
//! idempotent, so any number of threads may migrate the same slot.
//!
//! Threads share the work by claiming chunks with `fetch_add` on `claimed`;
//! a chunk's owner adds the chunk's size to `done` after migrating all of
//! it, and the add that reaches the capacity sets `complete`. A thread that
//! cannot wait for preempted owners (`finish`, used by freeze) migrates
//! every slot itself, which completes the table too; one that finds a
//! successor full grows that successor at once (`successor_for_full`)
//! rather than wait for the older migration.
//!
//! **Invariant (no element lost or duplicated by a migration).** A thread
//! that is going to probe the successor for an element `x` first migrates
//! *its own probe sequence* in the old table: every entry from `x`'s home
//! up to the first `EMPTY` slot, which it closes as `MOVED`
//! ([`Table::migrate_range`]). Afterwards any `x` that is or was going to
//! be in the old table is in the successor: an insert of `x` into the old
//! table has either landed before the closing CAS (then the range pass
//! sees it and places it) or fails on that CAS and goes to the successor
//! itself. So the successor, too, sees every placement of `x` in one probe
//! sequence, and the no-duplicate argument above carries over. A
//! migration's copy of an entry follows the same path rule (a copy that
//! meets `MOVED` in a successor that is itself migrating migrates its range
//! there and goes on), so nested resizes are correct as well; normally a
//! table only starts growing once its predecessor's migration is complete
//! (see `RawISet::grow`), so chains are short.
//!
//! A table is unlinked from the set's root once complete, but neither
//! tables nor entries are freed before the set is dropped, so a pointer
//! read from any slot or `next` link stays valid for `&self`'s lifetime.
//!
//! **Invariant (one owning slot).** Once no operation is in progress, every
//! published entry sits in exactly one slot that is not `COPIED`: it enters
//! a table either by its insert's CAS or by a copy, and a copy happens only
//! after the source slot was marked, and the marked slot is flagged
//! `COPIED` by the same `migrate_slot` call, which runs no user code in
//! between. `Drop` relies on it.

use std::marker::PhantomData;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

/// One element, written once into a cell of the set's arena. Its address
/// is the element's identity: it is never moved or freed before the set is
/// dropped.
#[repr(align(8))]
pub(super) struct Entry<T> {
    pub(super) hash: u64,
    /// Bit `i` set: listener `i` has been (or is being) given this element.
    pub(super) handled: AtomicU64,
    pub(super) value: T,
}

pub(super) const EMPTY: usize = 0;
pub(super) const MARK: usize = 0b001;
pub(super) const COPIED: usize = 0b010;
const TAGGED: usize = 0b100;
const LOW: usize = 0b111;
/// An empty slot closed by a migration.
pub(super) const MOVED: usize = MARK;
/// An empty slot closed by `freeze`.
pub(super) const FROZEN: usize = COPIED;

#[cfg(target_pointer_width = "64")]
const ADDR_BITS: u32 = 48;
#[cfg(target_pointer_width = "64")]
const ADDR_MASK: usize = (1 << ADDR_BITS) - 1;

/// The slot word of an entry (unmarked), tagged with the top of its hash
/// when the pointer leaves room for it.
#[inline]
pub(super) fn encode<T>(entry: *mut Entry<T>, hash: u64) -> usize {
    let p = entry as usize;
    debug_assert_eq!(p & LOW, 0, "entries are 8-aligned");
    #[cfg(target_pointer_width = "64")]
    if p & !ADDR_MASK == 0 {
        return p | (hash as usize & !ADDR_MASK) | TAGGED;
    }
    let _ = hash;
    p
}

/// The entry a slot word points to, or null.
#[inline]
pub(super) fn entry_of<T>(word: usize) -> *mut Entry<T> {
    #[cfg(target_pointer_width = "64")]
    let addr = if word & TAGGED != 0 { word & ADDR_MASK } else { word };
    #[cfg(not(target_pointer_width = "64"))]
    let addr = word;
    (addr & !LOW) as *mut Entry<T>
}

/// Whether the word may hold an element with this hash (false only when
/// the tags differ).
#[inline]
pub(super) fn tag_matches(word: usize, hash: u64) -> bool {
    #[cfg(target_pointer_width = "64")]
    {
        word & TAGGED == 0 || (word ^ hash as usize) & !ADDR_MASK == 0
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        let _ = (word, hash);
        true
    }
}

/// Sentinel for `next`: the table is frozen and never grows. (Generic over
/// the table type: the inline tables of `inline.rs` use it too.)
pub(super) fn frozen_next<X>() -> *mut X {
    // Never dereferenced: only compared.
    8 as *mut X
}

/// Whether `next` is a successor table (not null, not the frozen sentinel).
#[inline]
pub(super) fn is_table<X>(next: *mut X) -> bool {
    !next.is_null() && next != frozen_next()
}

/// Slots migrated per claim.
pub(super) const CHUNK: usize = 1024;
/// How many slots ahead a migrating thread prefetches entries.
const PREFETCH_DISTANCE: usize = 16;

/// Migration bookkeeping, on its own cache line: inserters only read the
/// table's header. Shared by the entry tables here and the inline tables of
/// `inline.rs`, which follow the same chunked migration.
pub(super) struct Migration {
    /// Next slot index to claim (may run past the capacity).
    claimed: AtomicUsize,
    /// Slots migrated by chunk owners.
    done: AtomicUsize,
    /// Every slot is closed (`MOVED`/`COPIED` here, `CLOSED` inline).
    complete: AtomicBool,
    /// Someone is allocating the successor (avoids racing allocations of
    /// a large table; a thread that finds the table full allocates anyway).
    growing: AtomicBool,
}

impl Migration {
    pub(super) fn new() -> CachePadded<Self> {
        CachePadded::new(Migration {
            claimed: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            complete: AtomicBool::new(false),
            growing: AtomicBool::new(false),
        })
    }

    pub(super) fn is_complete(&self) -> bool {
        self.complete.load(Acquire)
    }

    /// Marks the migration complete (by a thread that closed every slot).
    pub(super) fn set_complete(&self) {
        self.complete.store(true, Release);
    }

    /// Claims the right to allocate the successor for a load-factor resize.
    pub(super) fn claim_growth(&self) -> bool {
        !self.growing.load(Relaxed) && !self.growing.swap(true, AcqRel)
    }

    /// Claims chunks of `0..cap` and runs `migrate(start, end)` on each
    /// until none is left. Returns `true` if this call completed the
    /// migration (its chunk brought `done` to `cap`).
    pub(super) fn help(&self, cap: usize, mut migrate: impl FnMut(usize, usize)) -> bool {
        let chunk = CHUNK.min(cap);
        let mut completed = false;
        while self.claimed.load(Relaxed) < cap {
            let start = self.claimed.fetch_add(chunk, Relaxed);
            if start >= cap {
                break;
            }
            let end = (start + chunk).min(cap);
            migrate(start, end);
            // Release our copies with the count; whoever completes the
            // count acquires everyone's.
            if self.done.fetch_add(end - start, AcqRel) + (end - start) == cap {
                self.set_complete();
                completed = true;
            }
        }
        completed
    }
}

/// One open-addressing table.
pub(super) struct Table<T> {
    slots: Box<[AtomicUsize]>,
    mask: usize,
    /// Null, a successor, or [`frozen_next`].
    pub(super) next: AtomicPtr<Table<T>>,
    migration: CachePadded<Migration>,
    _entries: PhantomData<*mut Entry<T>>,
}

/// What a probe for an insert found.
pub(super) enum Probe {
    /// The new entry was CASed into this slot.
    Inserted,
    /// An equal element is present.
    Found,
    /// Met `MOVED`: the table is migrating; retry through its successor.
    Moved,
    /// Met `FROZEN`: the element is absent and the table is frozen.
    Frozen,
    /// Went round the whole table without an empty slot.
    Full,
}

impl<T> Table<T> {
    /// A table of `capacity` (a power of two) empty slots.
    pub(super) fn alloc(capacity: usize) -> *mut Table<T> {
        debug_assert!(capacity.is_power_of_two());
        Box::into_raw(Box::new(Table {
            slots: zeroed_slots(capacity),
            mask: capacity - 1,
            next: AtomicPtr::new(ptr::null_mut()),
            migration: Migration::new(),
            _entries: PhantomData,
        }))
    }

    /// The address of slot 0 (for prefetch hints only).
    pub(super) fn slots_addr(&self) -> usize {
        self.slots.as_ptr() as usize
    }

    #[inline]
    pub(super) fn capacity(&self) -> usize {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, i: usize) -> &AtomicUsize {
        // SAFETY: every index is masked (or below the capacity).
        unsafe { self.slots.get_unchecked(i & self.mask) }
    }

    /// The entries in this table, including marked ones, in slot order.
    pub(super) fn for_each_entry(&self, mut f: impl FnMut(*mut Entry<T>)) {
        self.for_each_slot(|_, e| f(e));
    }

    /// The slots holding an entry: their words and entries.
    pub(super) fn for_each_slot(&self, mut f: impl FnMut(usize, *mut Entry<T>)) {
        for s in self.slots.iter() {
            let w = s.load(Acquire);
            let e = entry_of::<T>(w);
            if !e.is_null() {
                f(w, e);
            }
        }
    }

    pub(super) fn is_complete(&self) -> bool {
        self.migration.is_complete()
    }

    /// Claims the right to allocate the successor for a load-factor resize.
    pub(super) fn claim_growth(&self) -> bool {
        self.migration.claim_growth()
    }

    /// Probes for `value` and inserts the entry of `new` at the first empty
    /// slot (allocating it only then, once per insert).
    pub(super) fn probe_insert(&self, new: &mut super::NewEntry<'_, T>) -> Probe
    where
        T: Eq,
    {
        let hash = new.hash;
        let mut i = hash as usize;
        let mut seen = 0;
        loop {
            let slot = self.slot(i);
            let mut v = slot.load(Acquire);
            if v == EMPTY {
                let word = new.word();
                // Publication of the element (SeqCst: see the set's
                // protocols for waiters and listeners).
                match slot.compare_exchange(EMPTY, word, SeqCst, Acquire) {
                    Ok(_) => return Probe::Inserted,
                    Err(actual) => v = actual,
                }
            }
            let e = entry_of::<T>(v);
            if e.is_null() {
                return if v & MARK != 0 { Probe::Moved } else { Probe::Frozen };
            }
            // SAFETY: entries are never freed before the set is dropped.
            if tag_matches(v, hash) && unsafe { (*e).hash == hash && (*e).value == *new.value() } {
                return Probe::Found;
            }
            i = i.wrapping_add(1);
            seen += 1;
            if seen > self.mask {
                return Probe::Full;
            }
        }
    }

    /// Whether `value` is in this table; `None`: not here, look in `next`.
    pub(super) fn find(&self, hash: u64, value: &T) -> Option<bool>
    where
        T: Eq,
    {
        let mut i = hash as usize;
        for _ in 0..=self.mask {
            let v = self.slot(i).load(Acquire);
            let e = entry_of::<T>(v);
            if e.is_null() {
                // EMPTY / FROZEN: absent; MOVED: ask the successor.
                return if v == MOVED { None } else { Some(false) };
            }
            // SAFETY: entries are never freed before the set is dropped.
            if tag_matches(v, hash) && unsafe { (*e).hash == hash && (*e).value == *value } {
                return Some(true);
            }
            i = i.wrapping_add(1);
        }
        None
    }

    /// Migrates `x`'s probe sequence (see the module doc): every entry from
    /// `hash`'s home to the first `EMPTY` slot, which is closed as `MOVED`.
    /// Returns `true` (and stops) if `matches` holds for an entry on the way.
    ///
    /// # Safety
    /// `next` is this table's successor.
    pub(super) unsafe fn migrate_range(&self, next: &Table<T>, hash: u64, matches: impl Fn(usize) -> bool) -> bool {
        let mut i = hash as usize;
        let mut seen = 0;
        while seen <= self.mask {
            let slot = self.slot(i);
            let v = slot.load(Acquire);
            if v == EMPTY {
                if slot.compare_exchange(EMPTY, MOVED, SeqCst, Acquire).is_ok() {
                    return false;
                }
                continue; // look at what took the slot
            }
            if entry_of::<T>(v).is_null() {
                return false; // MOVED (FROZEN cannot occur in a table with a successor)
            }
            if matches(v) {
                return true;
            }
            // SAFETY: caller contract.
            unsafe { self.migrate_slot(next, i) };
            i = i.wrapping_add(1);
            seen += 1;
        }
        false
    }

    /// Closes slot `i` and, if it holds an entry, places the entry in
    /// `next` and flags it `COPIED`. Idempotent.
    ///
    /// # Safety
    /// `next` is this table's successor.
    unsafe fn migrate_slot(&self, next: &Table<T>, i: usize) {
        let slot = self.slot(i);
        let mut v = slot.load(Acquire);
        if v & MARK == 0 {
            v = slot.fetch_or(MARK, AcqRel);
        }
        let e = entry_of::<T>(v);
        if e.is_null() || v & COPIED != 0 {
            return; // was EMPTY (now MOVED), MOVED, or already copied
        }
        // SAFETY: entries and tables live as long as the set.
        unsafe { next.place(e, (*e).hash) };
        // The slot is frozen (marked): nothing else changes it but this
        // same flag, so a store is enough.
        slot.store(v | MARK | COPIED, Release);
    }

    /// Places entry `e` in this table, or in a successor if this table is
    /// migrating or full: stops at `e` itself or CASes it into the first
    /// empty slot. Idempotent.
    ///
    /// # Safety
    /// `e` is a live entry of the set.
    unsafe fn place(&self, e: *mut Entry<T>, hash: u64) {
        let word = encode(e, hash);
        let mut t = self;
        'tables: loop {
            let mut i = hash as usize;
            let mut seen = 0;
            while seen <= t.mask {
                let slot = t.slot(i);
                let mut v = slot.load(Acquire);
                if v == EMPTY {
                    match slot.compare_exchange(EMPTY, word, SeqCst, Acquire) {
                        Ok(_) => return,
                        Err(actual) => v = actual,
                    }
                }
                if entry_of::<T>(v) == e {
                    return;
                }
                if v == FROZEN {
                    // Unreachable: a table is frozen only after its
                    // predecessors' migrations completed, so every entry
                    // copied into it is already there (found above).
                    debug_assert!(false, "a copy never goes into a frozen table");
                    return;
                }
                if entry_of::<T>(v).is_null() {
                    // SAFETY: MOVED is only written once `next` is a table;
                    // tables live as long as the set.
                    let next = unsafe { &*t.next.load(Acquire) };
                    // SAFETY: as above.
                    if unsafe { t.migrate_range(next, hash, |w| entry_of::<T>(w) == e) } {
                        return; // `e` is in `t`; `t`'s migration carries it on
                    }
                    t = next;
                    continue 'tables;
                }
                i = i.wrapping_add(1);
                seen += 1;
            }
            // `t` is full and does not hold `e`: go on to its successor,
            // creating it if need be (nothing can be placed in `t` any
            // more, so no range needs migrating first).
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

    /// The successor of a full table, installing one if there is none yet.
    /// Used where waiting for anyone is not an option. `None` if the table
    /// was frozen (its `next` is the frozen sentinel, which is no table), even
    /// if that happened after the caller last looked.
    pub(super) fn successor_for_full(&self) -> Option<*mut Table<T>> {
        let next = self.next.load(Acquire);
        if is_table(next) {
            return Some(next);
        }
        let n = match self.install_successor() {
            Ok(n) | Err(n) => n,
        };
        is_table(n).then_some(n)
    }

    /// Allocates a table twice the size and CASes it into `next`. `Ok`:
    /// ours was installed; `Err`: `next` was already set (to the returned
    /// table or to the frozen sentinel) and ours was freed unpublished.
    pub(super) fn install_successor(&self) -> Result<*mut Table<T>, *mut Table<T>> {
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

    /// Claims chunks of the migration to `next` until none is left.
    /// Returns `true` if this call completed the migration.
    ///
    /// # Safety
    /// `next` is this table's successor.
    pub(super) unsafe fn help_migrate(&self, next: &Table<T>) -> bool {
        self.migration.help(self.capacity(), |start, end| {
            for i in start..end {
                self.prefetch_entry(i + PREFETCH_DISTANCE, end);
                // SAFETY: caller contract.
                unsafe { self.migrate_slot(next, i) };
            }
        })
    }

    /// Migrates every slot itself (without waiting for chunk owners) and
    /// marks the table complete.
    ///
    /// # Safety
    /// `next` is this table's successor.
    pub(super) unsafe fn finish(&self, next: &Table<T>) {
        if self.is_complete() {
            return;
        }
        for i in 0..self.capacity() {
            // SAFETY: caller contract.
            unsafe { self.migrate_slot(next, i) };
        }
        self.migration.set_complete();
    }

    /// Closes every `EMPTY` slot as `FROZEN` and returns the entries. Only
    /// for a table whose `next` is the frozen sentinel (it never migrates).
    pub(super) fn close_for_freeze(&self, out: &mut Vec<*mut Entry<T>>) {
        for slot in self.slots.iter() {
            let mut v = slot.load(Acquire);
            if v == EMPTY {
                match slot.compare_exchange(EMPTY, FROZEN, AcqRel, Acquire) {
                    Ok(_) => continue,
                    Err(actual) => v = actual,
                }
            }
            let e = entry_of::<T>(v);
            if !e.is_null() {
                debug_assert_eq!(v & (MARK | COPIED), 0, "a frozen table never migrates");
                out.push(e);
            }
        }
    }

    /// Hints the CPU to fetch the entry in slot `i` (if `i < end`): a copy
    /// needs the entry's hash, and prefetching a few slots ahead lets those
    /// cache misses overlap instead of being serialised by the RMWs of the
    /// copy loop.
    #[inline]
    fn prefetch_entry(&self, i: usize, end: usize) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        if i < end {
            let e = entry_of::<T>(self.slot(i).load(Relaxed));
            if !e.is_null() {
                // SAFETY: prefetching is a hint and never faults.
                unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(e as *const i8) };
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = (i, end);
    }
}

/// `capacity` zeroed (`EMPTY`) slots.
fn zeroed_slots(capacity: usize) -> Box<[AtomicUsize]> {
    #[cfg(not(loom))]
    {
        // Zeroed memory straight from the allocator (large tables come as
        // untouched zero pages instead of being written slot by slot).
        let zeros: Box<[usize]> = vec![0usize; capacity].into_boxed_slice();
        // SAFETY: `std::sync::atomic::AtomicUsize` has the same size, alignment
        // and bit validity as `usize`.
        unsafe { Box::from_raw(Box::into_raw(zeros) as *mut [AtomicUsize]) }
    }
    #[cfg(loom)]
    {
        (0..capacity).map(|_| AtomicUsize::new(EMPTY)).collect()
    }
}
