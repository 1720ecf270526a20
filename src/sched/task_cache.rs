//! A per-worker cache of freed task allocations.
//!
//! A fork allocates its task and the await that runs it inline frees it a
//! moment later, on the same worker, with a block of the same size. Going
//! through the global allocator for that pair costs more than the rest of
//! the fork's bookkeeping (two calls of about fifty instructions with
//! mimalloc). So a worker keeps freed task blocks in small free lists, one
//! per size class, and reuses them for its next forks.
//!
//! Classes are powers of two (16 to 512 bytes). Rust's allocator API asks
//! for an alignment with every block, and mimalloc (what benches and many
//! users install) serves an aligned request from its fast path only when
//! the block size is one it aligns naturally: a power of two. Any other
//! size went to its generic path and over-allocated into the next size
//! bin, about 120 instructions per task (callgrind, handler traversal);
//! rounding up costs some memory and brings that to about 55.
//!
//! Blocks are ordinary global-allocator blocks of their class's layout
//! ([`block_layout`]), so any thread may free one: a worker keeps it (if its
//! list for the class has room), any other thread returns it to the global
//! allocator. Each list is bounded ([`MAX_PER_CLASS`]), so a worker holds at
//! most a few hundred kilobytes it does not use, and everything it holds is
//! freed when the worker exits (so once a dropped pool's workers have
//! exited, its tasks have left no allocation behind in them; a block freed
//! on another pool's worker stays in that worker's cache until it exits).
//!
//! The cache belongs to one thread and is never used re-entrantly: the
//! task code drops a task's contents (user code, which may free other
//! tasks) before it hands the block to the cache.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

/// The smallest class (also every block's alignment).
const GRANULE: usize = 16;
/// Tasks up to this size are cached (larger ones use the allocator).
const MAX_SIZE: usize = 512;
/// 16, 32, ..., `MAX_SIZE` bytes.
const CLASSES: usize = (MAX_SIZE / GRANULE).trailing_zeros() as usize + 1;
/// Blocks kept per class: enough for the forks in flight on one worker's
/// stack in a deep recursion, bounded so an idle worker holds little.
const MAX_PER_CLASS: u32 = 64;

/// The size class of a task layout, or `None` if it is not cached.
#[inline]
pub(crate) const fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_SIZE || layout.align() > GRANULE {
        return None;
    }
    let size = if layout.size() < GRANULE {
        GRANULE
    } else {
        layout.size()
    };
    Some((size.next_power_of_two() / GRANULE).trailing_zeros() as usize)
}

/// The layout every block of `class` is allocated and freed with.
#[inline]
pub(crate) const fn block_layout(class: usize) -> Layout {
    // SAFETY: the size is a nonzero multiple of the power-of-two alignment
    // and far below `isize::MAX`.
    unsafe { Layout::from_size_align_unchecked(GRANULE << class, GRANULE) }
}

/// A freed block, linked through its first word.
struct FreeBlock {
    next: *mut FreeBlock,
}

#[derive(Clone, Copy)]
struct FreeList {
    head: *mut FreeBlock,
    len: u32,
}

/// One worker's free lists.
pub(crate) struct TaskCache {
    lists: [FreeList; CLASSES],
}

impl TaskCache {
    pub(crate) const fn new() -> Self {
        Self {
            lists: [FreeList {
                head: ptr::null_mut(),
                len: 0,
            }; CLASSES],
        }
    }

    /// A block of `class`: a cached one, or a new one from the allocator.
    #[inline]
    pub(crate) fn alloc(&mut self, class: usize) -> NonNull<u8> {
        let list = &mut self.lists[class];
        if let Some(block) = NonNull::new(list.head) {
            // SAFETY: cached blocks are valid, unused blocks whose first
            // word links the list.
            list.head = unsafe { (*block.as_ptr()).next };
            list.len -= 1;
            return block.cast();
        }
        alloc_block(class)
    }

    /// Takes back a block of `class` whose contents were dropped, or frees
    /// it if the list is full.
    ///
    /// # Safety
    /// `block` was allocated as a block of `class` (by [`TaskCache::alloc`]
    /// or [`alloc_block`]) and nobody uses it any more.
    #[inline]
    pub(crate) unsafe fn free(&mut self, class: usize, block: NonNull<u8>) {
        let list = &mut self.lists[class];
        if list.len >= MAX_PER_CLASS {
            // SAFETY: forwarded.
            return unsafe { free_block(class, block) };
        }
        let b = block.cast::<FreeBlock>().as_ptr();
        // SAFETY: an unused block of at least one word, aligned to
        // `GRANULE`, now owned by the cache.
        unsafe { b.write(FreeBlock { next: list.head }) };
        list.head = b;
        list.len += 1;
    }
}

impl Drop for TaskCache {
    fn drop(&mut self) {
        for (class, list) in self.lists.iter_mut().enumerate() {
            let mut b = list.head;
            while let Some(block) = NonNull::new(b) {
                // SAFETY: a cached block: valid, linked through its first
                // word, freed once here.
                unsafe {
                    b = (*block.as_ptr()).next;
                    free_block(class, block.cast());
                }
            }
            list.head = ptr::null_mut();
            list.len = 0;
        }
    }
}

/// A new block of `class` from the global allocator.
pub(crate) fn alloc_block(class: usize) -> NonNull<u8> {
    let layout = block_layout(class);
    // SAFETY: the layout has a nonzero size.
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Returns a block of `class` to the global allocator.
///
/// # Safety
/// `block` was allocated as a block of `class` and nobody uses it any more.
pub(crate) unsafe fn free_block(class: usize, block: NonNull<u8>) {
    // SAFETY: allocated with this layout (caller contract).
    unsafe { alloc::dealloc(block.as_ptr(), block_layout(class)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes_and_reject_the_rest() {
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(16, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(17, 8).unwrap()), Some(1));
        assert_eq!(class_of(Layout::from_size_align(216, 8).unwrap()), Some(4));
        assert_eq!(class_of(Layout::from_size_align(257, 8).unwrap()), Some(5));
        assert_eq!(class_of(Layout::from_size_align(512, 16).unwrap()), Some(CLASSES - 1));
        assert_eq!(class_of(Layout::from_size_align(513, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
        for size in 1..=MAX_SIZE {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let block = block_layout(class_of(layout).unwrap());
            // The smallest power of two (of at least `GRANULE`) that fits.
            assert!(block.size() >= size && block.size().is_power_of_two());
            assert!(block.size() == GRANULE || block.size() / 2 < size);
        }
    }

    #[test]
    fn freed_blocks_are_reused_last_in_first_out_and_bounded() {
        let mut cache = TaskCache::new();
        let a = cache.alloc(3);
        let b = cache.alloc(3);
        assert_ne!(a, b);
        // SAFETY: blocks of class 3, unused.
        unsafe {
            cache.free(3, a);
            cache.free(3, b);
        }
        assert_eq!(cache.alloc(3), b);
        assert_eq!(cache.alloc(3), a);
        let blocks: Vec<_> = (0..MAX_PER_CLASS + 5).map(|_| cache.alloc(2)).collect();
        for &block in &blocks {
            // SAFETY: blocks of class 2, unused.
            unsafe { cache.free(2, block) };
        }
        assert_eq!(cache.lists[2].len, MAX_PER_CLASS);
        // SAFETY: `a` and `b` are blocks of class 3; the rest is freed by
        // the cache's `Drop`.
        unsafe {
            free_block(3, a);
            free_block(3, b);
        }
    }
}
