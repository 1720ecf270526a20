//! Where entries live: blocks of entry-sized cells, bump-allocated.
//!
//! Entries are never moved or freed individually before the set is
//! dropped, so they need no general-purpose allocator: each counter stripe
//! (see the parent module; one per thread in the common case) owns a
//! current block and hands out its cells with a `fetch_add` on the block's
//! cursor (an RMW on a cache line that only this stripe's threads touch).
//! A full block is replaced by one twice its size (up to `MAX_BLOCK`
//! cells). Besides saving a `malloc` per element, this keeps one thread's
//! entries contiguous and makes dropping a large set a handful of `free`s.
//!
//! **Invariant (exclusive cells).** A cell index is handed out by exactly
//! one `fetch_add` of its block's cursor (or, for cell 0 of a new block, by
//! creating the block), so no two inserts ever write the same cell. Blocks
//! are linked into `all` (a lock-free push) before any of their cells is
//! handed out and are freed only by `Drop`; cells are never reused, so an
//! entry's address stays valid and unique for the arena's lifetime.
//!
//! The arena does not drop the values in its cells: the set drops every
//! published value, and an insert that loses its race drops its own.

use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

use super::table::Entry;
use crate::sync::{AtomicPtr, AtomicUsize, Ordering::*};

/// Cells of a stripe's first block.
const FIRST_BLOCK: usize = 8;
/// Cells of the largest blocks.
const MAX_BLOCK: usize = 4096;

struct Block<T> {
    /// Next cell to hand out (runs past `len` when full).
    cursor: AtomicUsize,
    /// `len` cells, from a leaked `Box<[MaybeUninit<Entry<T>>]>` (a raw
    /// pointer: cells are written through it while the block is shared).
    cells: *mut MaybeUninit<Entry<T>>,
    len: usize,
    /// The next block in `Arena::all`; written before this one is pushed.
    older: *mut Block<T>,
}

/// Bump-allocated cells for entries, one current block per stripe.
pub(super) struct Arena<T, const STRIPES: usize> {
    current: [CachePadded<AtomicPtr<Block<T>>>; STRIPES],
    /// Every block ever allocated, for `Drop`.
    all: AtomicPtr<Block<T>>,
}

impl<T, const STRIPES: usize> Arena<T, STRIPES> {
    pub(super) fn new() -> Self {
        Self {
            current: std::array::from_fn(|_| CachePadded::new(AtomicPtr::new(ptr::null_mut()))),
            all: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A fresh cell for stripe `stripe`, exclusively the caller's. Lock-free.
    #[inline]
    pub(super) fn alloc(&self, stripe: usize) -> *mut Entry<T> {
        let current = &self.current[stripe];
        let b = current.load(Acquire);
        if !b.is_null() {
            // SAFETY: blocks are freed only by `Drop`.
            let block = unsafe { &*b };
            let i = block.cursor.fetch_add(1, Relaxed);
            if i < block.len {
                // SAFETY: in bounds; cell `i` is ours alone (exclusive cells).
                return unsafe { block.cells.add(i) } as *mut Entry<T>;
            }
        }
        self.alloc_slow(current, b)
    }

    #[cold]
    fn alloc_slow(&self, current: &AtomicPtr<Block<T>>, full: *mut Block<T>) -> *mut Entry<T> {
        let cells = if full.is_null() {
            FIRST_BLOCK
        } else {
            // SAFETY: as in `alloc`.
            (unsafe { (*full).len } * 2).min(MAX_BLOCK)
        };
        let storage: Box<[MaybeUninit<Entry<T>>]> = (0..cells).map(|_| MaybeUninit::uninit()).collect();
        let block = Box::into_raw(Box::new(Block {
            // Cell 0 is ours.
            cursor: AtomicUsize::new(1),
            cells: Box::into_raw(storage) as *mut MaybeUninit<Entry<T>>,
            len: cells,
            older: ptr::null_mut(),
        }));
        let mut head = self.all.load(Relaxed);
        loop {
            // SAFETY: `block` is ours until the CAS publishes it.
            unsafe { (*block).older = head };
            match self.all.compare_exchange_weak(head, block, AcqRel, Relaxed) {
                Ok(_) => break,
                Err(actual) => head = actual,
            }
        }
        // If another thread of this stripe replaced the block first, ours
        // still serves this one cell (the rest is unused until `Drop`).
        let _ = current.compare_exchange(full, block, AcqRel, Relaxed);
        // SAFETY: just allocated (at least one cell), and linked for `Drop`.
        unsafe { (*block).cells as *mut Entry<T> }
    }
}

impl<T, const STRIPES: usize> Drop for Arena<T, STRIPES> {
    fn drop(&mut self) {
        let mut b = self.all.load(Relaxed);
        while !b.is_null() {
            // SAFETY: `&mut self`: every block is ours; the values in the
            // cells were dropped by the set (`MaybeUninit` drops nothing).
            let block = unsafe { Box::from_raw(b) };
            // SAFETY: the cells' own allocation, as leaked in `alloc_slow`.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(block.cells, block.len)) });
            b = block.older;
        }
    }
}
