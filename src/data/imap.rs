//! A lock-free grow-only map whose values are LVar-like cells: the map
//! LVar's core (`RawIMap`).
//!
//! # Layout: a grow-only hash trie
//!
//! The map is a trie of [`Node`]s of `FANOUT` link words, indexed by
//! successive `BITS`-bit digits of the key's 64-bit hash (lowest digits
//! first). A link word is one `AtomicUsize`:
//!
//! | word | meaning |
//! |---|---|
//! | `EMPTY` (0) | nothing here yet |
//! | `FROZEN` (`FROZEN_BIT`, no pointer) | empty, closed by `freeze`: nothing more goes here |
//! | leaf pointer | an entry (key, hash, value cell) |
//! | node pointer \| `INNER` | a child node (next digit) |
//! | any of the two pointers \| `FROZEN_BIT` | the same, closed by `freeze` |
//!
//! Leaves and nodes are 8-aligned, so the low bits are free. When the 64
//! hash bits are exhausted (last level), keys with equal hashes are chained
//! through the leaves' own `next` link word, with the same encoding (never
//! `INNER`).
//!
//! **Invariant (link monotonicity).** A link word changes only by a CAS
//! from an *unmarked* `EMPTY` or leaf word, or by freeze's `fetch_or` of
//! `FROZEN_BIT`, and it goes `EMPTY -> leaf -> node containing that leaf`
//! (the split: the node is built privately with the leaf at the leaf's next
//! digit, then published by one CAS), never back, and never changes again
//! once marked or once it holds a node. Nothing is ever unlinked, so no
//! reclamation is needed: a leaf or node pointer read from any reachable
//! word stays valid for `&self`'s lifetime, and a published leaf is
//! reachable forever (in its slot, or in the node that replaced it).
//!
//! **Invariant (no duplicate keys).** A key's search path is determined by
//! its hash: from the root, follow its digits through nodes; a leaf of
//! another key on the path is split (or, at the last level, the chain is
//! followed). So every insert of a key ends by CASing its leaf into the
//! first `EMPTY` word on that one path; two inserts of one key contend on
//! the same word, and the loser re-reads it, follows the same path and
//! meets the winner's leaf. Exactly one `get_or_init` of a key installs a
//! cell; every caller returns the winner's cell; losers drop theirs
//! (their leaf was never published).
//!
//! # Size
//!
//! A striped counter as in [`RawISet`](super::RawISet): each thread
//! increments its own stripe (a `SeqCst` RMW) once per key it installs,
//! after the CAS. The sum never exceeds the number of keys and reaches it
//! once the installing calls return; every stripe only grows, so
//! "sum >= n" is monotone and a valid threshold.
//!
//! # Threshold reads
//!
//! `wait_key` parks on one of `KEY_STRIPES` waiter lists chosen by hash,
//! `wait_size` on one list; both follow the waiter protocol of
//! [`crate::lvar::waiters`]: the getter registers (`SeqCst` CAS + fence) and
//! re-checks; the installer publishes (`SeqCst` CAS on the link and
//! `SeqCst` counter increment), passes `publication_fence`, then loads the
//! list heads with `SeqCst` loads and tests each waiter against the current
//! map (a lookup), never against its own key only. `wait_key` resolves to
//! the key's cell, never to anything about other keys.
//!
//! # Freeze
//!
//! `freeze` walks the trie from the root and `fetch_or`s `FROZEN_BIT` into
//! every link word it reaches (recursing into the nodes and chains it
//! finds), then collects the leaves.
//! **Invariant (freeze vs insert).** An insert's only publication is a CAS
//! from an unmarked word, and freeze marks that very word with an RMW, so
//! the two are ordered on it: either the insert landed first (freeze's
//! `fetch_or` returns the leaf or the node holding it, and collects it), or
//! the insert's CAS fails, it re-reads the marked word and, meeting no leaf
//! of its key, fails with `PutAfterFreeze`. A node is reached by freeze
//! only through its parent's word, and inserts reach it the same way, so
//! nodes published before the parent's marking are frozen too. Keys already
//! present are found, frozen or not. Frozen entries are handed out sorted
//! by key ([`RawIMap::freeze_sorted_with`]), never in trie order.
//!
//! # Listeners
//!
//! As in the set: a listener gets a bit and is pushed with a `SeqCst` CAS,
//! then `add_listener` fences and scans the trie; an installer, after its
//! CAS and the publication fence, loads the listener list. Whoever wins the
//! listener's bit in the leaf's `handled` word (`fetch_or`) delivers.
//! **Invariant (exactly once).** One `fetch_or` per (leaf, listener) wins;
//! by the Dekker argument either the scan sees the leaf (leaves are never
//! unlinked) or the installer sees the listener.
//!
//! # Memory
//!
//! Leaves and nodes are boxed; nothing is freed before the map is dropped
//! (except an insert's own unpublished leaf or split node). `Drop` walks the
//! trie and frees everything, dropping each key and value once.
//!
//! Modelled by `loom_tests/imap.rs`.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::ptr;
use std::sync::Arc;

use super::iset::DefaultHashBuilder;
use crate::error::Error;
use crate::lattice::Lattice;
use crate::lvar::wait::{WaitFuture, Waitable};
use crate::lvar::waiters::WaiterList;
use crate::lvar::{RawLVar, ThresholdSet};
use crate::striped::{thread_stripe, StripedCount};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};

/// Hash bits per trie level.
const BITS: u32 = 4;
/// Link words per node.
const FANOUT: usize = 1 << BITS;
/// Trie levels (digits of a 64-bit hash); below the last one, chains.
const LEVELS: u32 = 64 / BITS;

const EMPTY: usize = 0;
const FROZEN_BIT: usize = 0b01;
const INNER: usize = 0b10;
const LOW: usize = 0b111;
/// An empty word closed by `freeze`.
const FROZEN: usize = FROZEN_BIT;

/// `wait_key` waiter lists, chosen by hash.
#[cfg(not(loom))]
const KEY_STRIPES: usize = 64;
#[cfg(loom)]
const KEY_STRIPES: usize = 2;

/// At most this many listeners per map (one bit each in `Leaf::handled`).
const MAX_LISTENERS: usize = 64;

/// One entry: written once before it is published, then immutable except
/// for `handled` and `next`. Its address is stable until the map is dropped.
#[repr(align(8))]
struct Leaf<K, V> {
    hash: u64,
    key: K,
    value: V,
    /// Bit `i` set: listener `i` has been (or is being) given this entry.
    handled: AtomicU64,
    /// The chain of keys with the same full hash (last level only), a link
    /// word as in the module doc.
    next: AtomicUsize,
}

/// One trie node: `FANOUT` link words.
#[repr(align(8))]
struct Node {
    slots: [AtomicUsize; FANOUT],
}

impl Node {
    fn alloc() -> *mut Node {
        Box::into_raw(Box::new(Node {
            slots: std::array::from_fn(|_| AtomicUsize::new(EMPTY)),
        }))
    }
}

/// The trie digit of `hash` at `level`.
#[inline]
fn digit(hash: u64, level: u32) -> usize {
    ((hash >> (level * BITS)) as usize) & (FANOUT - 1)
}

#[inline]
fn ptr_of(word: usize) -> usize {
    word & !LOW
}

/// Receives every entry of a map exactly once (see the module doc): the
/// hook for handlers over maps.
pub(crate) trait EntryListener<K, V>: Send + Sync {
    /// Called once per entry, on the thread that installed it (or that
    /// added the listener, for entries already present).
    fn on_entry(&self, key: &K, value: &V);
}

struct ListenerNode<K, V> {
    listener: Arc<dyn EntryListener<K, V>>,
    bit: u64,
    /// Written before the node is published, then immutable.
    next: *mut ListenerNode<K, V>,
}

/// What a `wait_key` waits for.
struct WantedKey<K> {
    hash: u64,
    key: K,
}

/// A lock-free grow-only map without a session: the core of the map LVar.
///
/// Values are cells created on first use ([`get_or_init`](Self::get_or_init)):
/// every caller for a key gets the same cell, which lives as long as the
/// map. Cells are usually LVars themselves (`RawLVar<L>`, `RawISet<T>`,
/// `RawIVar<T>`), which gives nested LVars; a lattice-valued map
/// (`RawIMap<K, RawLVar<L>>`) also has [`insert`](RawIMap::insert).
///
/// Reads that expose timing ([`get`](Self::get), [`len`](Self::len)) are
/// documented as such; the deterministic reads are the threshold futures
/// ([`wait_key`](Self::wait_key), [`wait_size`](Self::wait_size)) and the
/// sorted frozen value ([`freeze_sorted_with`](Self::freeze_sorted_with)).
///
/// ```
/// use lvars::data::{RawIMap, RawISet};
///
/// let graph: RawIMap<u32, RawISet<u32>> = RawIMap::new();
/// graph.get_or_init(1).unwrap().insert(2).unwrap();
/// graph.get_or_init(1).unwrap().insert(3).unwrap();
/// graph.get_or_init(2).unwrap().insert(3).unwrap();
/// assert_eq!(graph.len(), 2);
/// let frozen = graph.freeze_sorted_with(|s| s.freeze_sorted());
/// assert_eq!(frozen, vec![(1, vec![2, 3]), (2, vec![3])]);
/// ```
pub struct RawIMap<K, V, S = DefaultHashBuilder> {
    root: Box<Node>,
    hasher: S,
    listeners: AtomicPtr<ListenerNode<K, V>>,
    size_waiters: WaiterList<usize>,
    key_waiters: [WaiterList<Arc<WantedKey<K>>>; KEY_STRIPES],
    listener_count: AtomicUsize,
    frozen: crate::sync::AtomicBool,
    counts: StripedCount,
}

// SAFETY: keys and values are shared by reference between threads (K, V:
// Send + Sync) and dropped by whichever thread drops the map; leaves and
// nodes are reached only through atomics and freed only by `Drop`.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Send> Send for RawIMap<K, V, S> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for RawIMap<K, V, S> {}

/// What an insert found on its key's path.
enum Outcome<K, V> {
    /// Our leaf was published (this leaf).
    Inserted(*mut Leaf<K, V>),
    /// The key was present (its leaf).
    Found(*mut Leaf<K, V>),
    /// The key is absent and the map is frozen.
    Frozen,
}

impl<K: Hash + Eq + Send + Sync + 'static, V: Send + Sync + 'static> Default for RawIMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Send + Sync + 'static, V: Send + Sync + 'static> RawIMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }
}

impl<K: Hash + Eq + Send + Sync + 'static, V: Send + Sync + 'static, S: BuildHasher> RawIMap<K, V, S> {
    /// An empty map hashing keys with `hasher`.
    pub fn with_hasher(hasher: S) -> Self {
        // SAFETY: `Node::alloc` returns a fresh box.
        let root = unsafe { Box::from_raw(Node::alloc()) };
        Self {
            root,
            hasher,
            listeners: AtomicPtr::new(ptr::null_mut()),
            size_waiters: WaiterList::new(),
            key_waiters: std::array::from_fn(|_| WaiterList::new()),
            listener_count: AtomicUsize::new(0),
            frozen: crate::sync::AtomicBool::new(false),
            counts: StripedCount::new(),
        }
    }

    /// The cell of `key`, installing `V::default()` if the key is new.
    /// Lock-free. Every caller for one key gets the same cell.
    ///
    /// Fails with `PutAfterFreeze` if the map is frozen and `key` is new.
    pub fn get_or_init(&self, key: K) -> Result<&V, Error>
    where
        V: Default,
    {
        self.get_or_init_with(key, V::default)
    }

    /// The cell of `key`, installing `init()` if the key is new (`init`
    /// runs at most once per call, and only if the key was absent when the
    /// call looked; a call that then loses the race drops its cell).
    ///
    /// Fails with `PutAfterFreeze` if the map is frozen and `key` is new.
    pub fn get_or_init_with(&self, key: K, init: impl FnOnce() -> V) -> Result<&V, Error> {
        let hash = self.hasher.hash_one(&key);
        if let Some(v) = self.find(hash, &key) {
            return Ok(v);
        }
        let leaf = Box::into_raw(Box::new(Leaf {
            hash,
            key,
            value: init(),
            handled: AtomicU64::new(0),
            next: AtomicUsize::new(EMPTY),
        }));
        match self.insert_leaf(leaf) {
            Outcome::Found(found) => {
                // SAFETY: `leaf` was never published: ours to free.
                drop(unsafe { Box::from_raw(leaf) });
                // SAFETY: published leaves live as long as the map.
                Ok(unsafe { &(*found).value })
            }
            Outcome::Frozen => {
                // SAFETY: as above.
                drop(unsafe { Box::from_raw(leaf) });
                Err(Error::PutAfterFreeze { lvar: "IMap" })
            }
            Outcome::Inserted(leaf) => {
                let stripe = thread_stripe();
                self.counts.increment(stripe);
                publication_fence();
                // SAFETY: published leaves live as long as the map.
                let l = unsafe { &*leaf };
                let list = &self.key_waiters[key_stripe(hash)];
                if !list.is_empty() {
                    list.wake_matching(|w| (w.hash == hash && w.key == l.key) || self.find(w.hash, &w.key).is_some());
                }
                if !self.size_waiters.is_empty() {
                    let n = self.len();
                    self.size_waiters.wake_matching(|&want| n >= want);
                }
                // SAFETY: published, after the fence.
                unsafe { self.deliver(leaf) };
                Ok(&l.value)
            }
        }
    }

    /// The insert protocol (module doc): follow `leaf`'s key's path,
    /// splitting other keys' leaves, and CAS `leaf` into the first `EMPTY`
    /// word on it.
    fn insert_leaf(&self, leaf: *mut Leaf<K, V>) -> Outcome<K, V> {
        // SAFETY: `leaf` is ours (unpublished) until the CAS below.
        let (hash, key) = unsafe { ((*leaf).hash, &(*leaf).key) };
        let mut link: &AtomicUsize = &self.root.slots[digit(hash, 0)];
        let mut level = 0;
        let mut w = link.load(Acquire);
        loop {
            if ptr_of(w) == 0 {
                if w == FROZEN {
                    return Outcome::Frozen;
                }
                // Publication of the key (SeqCst: waiter and listener
                // protocols).
                match link.compare_exchange(EMPTY, leaf as usize, SeqCst, Acquire) {
                    Ok(_) => return Outcome::Inserted(leaf),
                    Err(actual) => {
                        w = actual;
                        continue;
                    }
                }
            }
            if w & INNER != 0 {
                // SAFETY: nodes live as long as the map.
                let node = unsafe { &*(ptr_of(w) as *const Node) };
                level += 1;
                link = &node.slots[digit(hash, level)];
                w = link.load(Acquire);
                continue;
            }
            let other = ptr_of(w) as *mut Leaf<K, V>;
            // SAFETY: published leaves live as long as the map.
            let o = unsafe { &*other };
            if o.hash == hash && o.key == *key {
                return Outcome::Found(other);
            }
            if level + 1 >= LEVELS {
                // Hash bits exhausted (equal hashes): follow the chain.
                level = LEVELS;
                link = &o.next;
                w = link.load(Acquire);
                continue;
            }
            if w & FROZEN_BIT != 0 {
                // Our path ends at another key's frozen leaf.
                return Outcome::Frozen;
            }
            // Split: a private node holding `other` at its next digit,
            // published in place of `other` by one CAS.
            let node = Node::alloc();
            // SAFETY: `node` is ours until published.
            unsafe { (*node).slots[digit(o.hash, level + 1)].store(w, Relaxed) };
            // SeqCst like every publication a listener scan must not miss.
            match link.compare_exchange(w, node as usize | INNER, SeqCst, Acquire) {
                Ok(_) => {
                    level += 1;
                    // SAFETY: just published; nodes live as long as the map.
                    link = unsafe { &(*node).slots[digit(hash, level)] };
                    w = link.load(Acquire);
                }
                Err(actual) => {
                    // SAFETY: never published.
                    drop(unsafe { Box::from_raw(node) });
                    w = actual;
                }
            }
        }
    }

    /// The cell of `key` if it is present now.
    fn find(&self, hash: u64, key: &K) -> Option<&V> {
        let mut w = self.root.slots[digit(hash, 0)].load(Acquire);
        let mut level = 0;
        loop {
            if ptr_of(w) == 0 {
                return None;
            }
            if w & INNER != 0 {
                level += 1;
                // SAFETY: nodes live as long as the map.
                w = unsafe { (*(ptr_of(w) as *const Node)).slots[digit(hash, level)].load(Acquire) };
                continue;
            }
            // SAFETY: published leaves live as long as the map.
            let o = unsafe { &*(ptr_of(w) as *const Leaf<K, V>) };
            if o.hash == hash && o.key == *key {
                return Some(&o.value);
            }
            if level + 1 < LEVELS {
                return None; // another key ends our path
            }
            level = LEVELS;
            w = o.next.load(Acquire);
        }
    }

    /// The cell of `key`, if present now. Quasi-deterministic (`None` may
    /// turn `Some` later); deterministic code uses
    /// [`wait_key`](Self::wait_key).
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(self.hasher.hash_one(key), key)
    }

    /// Whether `key` is present now (equally timing-dependent).
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The number of keys whose installing calls have completed (exact once
    /// they have all returned). Quasi-deterministic while inserts run;
    /// deterministic code uses [`wait_size`](Self::wait_size).
    pub fn len(&self) -> usize {
        self.counts.sum()
    }

    /// Whether [`len`](Self::len) is 0 (equally timing-dependent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until `key` is present and resolves to its cell.
    pub fn wait_key(&self, key: K) -> impl Future<Output = &V> + Send + '_
    where
        S: Sync,
    {
        let hash = self.hasher.hash_one(&key);
        WaitFuture::new(
            KeySrc {
                map: self,
                stripe: key_stripe(hash),
            },
            Arc::new(WantedKey { hash, key }),
        )
    }

    /// Waits until the map has at least `n` keys. Resolves to `()`.
    pub fn wait_size(&self, n: usize) -> impl Future<Output = ()> + Send + '_
    where
        S: Sync,
    {
        WaitFuture::new(SizeSrc { map: self }, n)
    }

    /// Freezes the key set and returns the exact number of keys. Later
    /// calls that would add a key fail with `PutAfterFreeze`; existing keys
    /// are still found. The cells themselves are not frozen.
    pub fn freeze(&self) -> usize {
        self.freeze_leaves().len()
    }

    /// Freezes the key set, applies `f` to every cell (typically the cell's
    /// own freeze) and returns the pairs sorted by key: the same vector in
    /// every run that made the same map.
    pub fn freeze_sorted_with<F>(&self, mut f: impl FnMut(&V) -> F) -> Vec<(K, F)>
    where
        K: Ord + Clone,
    {
        let mut leaves = self.freeze_leaves();
        // SAFETY: leaves live as long as the map.
        leaves.sort_unstable_by(|&a, &b| unsafe { (*a).key.cmp(&(*b).key) });
        leaves
            .into_iter()
            // SAFETY: as above.
            .map(|l| unsafe { ((*l).key.clone(), f(&(*l).value)) })
            .collect()
    }

    /// Whether [`freeze`](Self::freeze) (or `freeze_sorted_with`) has
    /// returned.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(SeqCst)
    }

    /// The freeze protocol (module doc): mark every reachable link word,
    /// collecting the leaves.
    fn freeze_leaves(&self) -> Vec<*mut Leaf<K, V>> {
        let mut out = Vec::new();
        let mut stack: Vec<&AtomicUsize> = self.root.slots.iter().collect();
        while let Some(link) = stack.pop() {
            let w = link.fetch_or(FROZEN_BIT, SeqCst);
            if ptr_of(w) == 0 {
                continue;
            }
            if w & INNER != 0 {
                // SAFETY: nodes live as long as the map.
                stack.extend(unsafe { &(*(ptr_of(w) as *const Node)).slots }.iter());
            } else {
                let leaf = ptr_of(w) as *mut Leaf<K, V>;
                out.push(leaf);
                // SAFETY: leaves live as long as the map.
                stack.push(unsafe { &(*leaf).next });
            }
        }
        self.frozen.store(true, SeqCst);
        out
    }

    /// Every leaf reachable now (a scan for listeners).
    fn for_each_leaf(&self, mut f: impl FnMut(*mut Leaf<K, V>)) {
        let mut stack: Vec<usize> = self.root.slots.iter().map(|s| s.load(Acquire)).collect();
        while let Some(w) = stack.pop() {
            if ptr_of(w) == 0 {
                continue;
            }
            if w & INNER != 0 {
                // SAFETY: nodes live as long as the map.
                let node = unsafe { &*(ptr_of(w) as *const Node) };
                stack.extend(node.slots.iter().map(|s| s.load(Acquire)));
            } else {
                let leaf = ptr_of(w) as *mut Leaf<K, V>;
                f(leaf);
                // SAFETY: leaves live as long as the map.
                stack.push(unsafe { (*leaf).next.load(Acquire) });
            }
        }
    }

    /// Gives a newly published leaf to every listener whose bit it wins.
    ///
    /// # Safety
    /// `leaf` is a published leaf of this map; call after the fence.
    unsafe fn deliver(&self, leaf: *mut Leaf<K, V>) {
        let mut node = self.listeners.load(SeqCst);
        while !node.is_null() {
            // SAFETY: listener nodes live as long as the map.
            let l = unsafe { &*node };
            // SAFETY: caller contract.
            let e = unsafe { &*leaf };
            if e.handled.fetch_or(l.bit, AcqRel) & l.bit == 0 {
                l.listener.on_entry(&e.key, &e.value);
            }
            node = l.next;
        }
    }

    /// Registers a listener: `on_entry` will be called exactly once for
    /// every entry that is or will be in the map (module doc). Fails with
    /// `OutOfRange` beyond 64 listeners on one map.
    // The hook for handler pools over maps; used by the tests for now.
    #[allow(dead_code)]
    pub(crate) fn add_listener(&self, listener: Arc<dyn EntryListener<K, V>>) -> Result<(), Error> {
        let index = self
            .listener_count
            .fetch_update(Relaxed, Relaxed, |n| (n < MAX_LISTENERS).then_some(n + 1))
            .map_err(|_| Error::OutOfRange { lvar: "IMap listeners" })?;
        let bit = 1u64 << index;
        let node = Box::into_raw(Box::new(ListenerNode {
            listener,
            bit,
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
        crate::sync::fence(SeqCst);
        let mut won = Vec::new();
        self.for_each_leaf(|l| {
            // SAFETY: leaves live as long as the map.
            if unsafe { (*l).handled.fetch_or(bit, AcqRel) } & bit == 0 {
                won.push(l);
            }
        });
        // SAFETY: listener nodes live as long as the map.
        let listener = unsafe { &(*node).listener };
        for l in won {
            // SAFETY: leaves live as long as the map.
            let l = unsafe { &*l };
            listener.on_entry(&l.key, &l.value);
        }
        Ok(())
    }
}

/// A lattice-valued map: each key's cell is a [`RawLVar`].
impl<K, L, S> RawIMap<K, RawLVar<L>, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    L: Lattice + Send + Sync + 'static,
    S: BuildHasher,
{
    /// Joins `value` into `key`'s cell (installing it at bottom first).
    ///
    /// Errors: `ConflictingPut` if the join would be top; `PutAfterFreeze`
    /// if the map is frozen and `key` is new, or the cell is frozen and the
    /// put would change it.
    ///
    /// ```
    /// use lvars::data::RawIMap;
    /// use lvars::lattice::Max;
    /// use lvars::lvar::RawLVar;
    ///
    /// let m: RawIMap<&str, RawLVar<Max<u32>>> = RawIMap::new();
    /// m.insert("a", Max::new(3)).unwrap();
    /// m.insert("a", Max::new(1)).unwrap();
    /// assert_eq!(m.freeze_sorted_with(|c| c.freeze()), vec![("a", Max::new(3))]);
    /// ```
    pub fn insert(&self, key: K, value: L) -> Result<(), Error> {
        self.get_or_init_with(key, RawLVar::new)?.put(&value)
    }

    /// Waits until `key` is present and its state is at or above
    /// `threshold`, and resolves to `threshold` (never the exact state).
    /// Fails at once (`InvalidThreshold`) if `threshold` is top.
    pub fn wait_key_at_least(&self, key: K, threshold: L) -> Result<impl Future<Output = L> + Send + '_, Error>
    where
        S: Sync,
    {
        let thresholds = ThresholdSet::single(threshold)?;
        let cell = self.wait_key(key);
        Ok(async move { cell.await.get(thresholds).await })
    }
}

/// The fence between an installer's publication (link CAS and counter
/// increment) and its reads of the waiter and listener list heads: a
/// `SeqCst` fence under loom; in normal builds implied by the `SeqCst`
/// RMWs followed by `SeqCst` loads (see the set's `publication_fence`).
#[inline]
fn publication_fence() {
    #[cfg(loom)]
    crate::sync::fence(SeqCst);
}

fn key_stripe(hash: u64) -> usize {
    (hash >> 32) as usize % KEY_STRIPES
}

/// The source of a `wait_key`: the map and the waiter stripe.
struct KeySrc<'a, K, V, S> {
    map: &'a RawIMap<K, V, S>,
    stripe: usize,
}

impl<'a, K, V, S> Waitable for KeySrc<'a, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    type Query = Arc<WantedKey<K>>;
    type Output = &'a V;

    fn waiters(&self) -> &WaiterList<Arc<WantedKey<K>>> {
        &self.map.key_waiters[self.stripe]
    }

    fn check(&self, w: &Arc<WantedKey<K>>) -> Option<&'a V> {
        self.map.find(w.hash, &w.key)
    }
}

/// The source of a `wait_size`.
struct SizeSrc<'a, K, V, S> {
    map: &'a RawIMap<K, V, S>,
}

impl<K, V, S> Waitable for SizeSrc<'_, K, V, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: BuildHasher,
{
    type Query = usize;
    type Output = ();

    fn waiters(&self) -> &WaiterList<usize> {
        &self.map.size_waiters
    }

    fn check(&self, n: &usize) -> Option<()> {
        (self.map.len() >= *n).then_some(())
    }
}

impl<K, V, S> Drop for RawIMap<K, V, S> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in progress; every leaf and node is
        // reachable from exactly one link word (a split moves a leaf's only
        // link into the new node), so each is freed once.
        let mut stack: Vec<usize> = self.root.slots.iter().map(|s| s.load(Relaxed)).collect();
        while let Some(w) = stack.pop() {
            if ptr_of(w) == 0 {
                continue;
            }
            if w & INNER != 0 {
                // SAFETY: owned by the map, reached once.
                let node = unsafe { Box::from_raw(ptr_of(w) as *mut Node) };
                stack.extend(node.slots.iter().map(|s| s.load(Relaxed)));
            } else {
                // SAFETY: as above; drops the key and the value.
                let leaf = unsafe { Box::from_raw(ptr_of(w) as *mut Leaf<K, V>) };
                stack.push(leaf.next.load(Relaxed));
            }
        }
        let mut node = self.listeners.load(Relaxed);
        while !node.is_null() {
            // SAFETY: listener nodes are owned by the map.
            let n = unsafe { Box::from_raw(node) };
            node = n.next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    std::thread_local! {
        /// Set while this thread adds a listener: its deliveries then come
        /// from the installation's scan of the entries already there.
        static ADDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Records every delivery, and how many the installation scan made.
    struct Record(Mutex<HashMap<u64, usize>>, AtomicUsize);
    impl Record {
        fn new() -> Arc<Self> {
            Arc::new(Record(Mutex::new(HashMap::new()), AtomicUsize::new(0)))
        }
    }
    impl EntryListener<u64, u64> for Record {
        fn on_entry(&self, key: &u64, value: &u64) {
            assert_eq!(*value, key * 10);
            *self.0.lock().unwrap().entry(*key).or_default() += 1;
            if ADDING.with(|a| a.get()) {
                self.1.fetch_add(1, SeqCst);
            }
        }
    }

    #[test]
    fn listeners_see_every_entry_exactly_once_under_racing_inserts() {
        // Twenty rounds, and more (up to 200) until the late listener was
        // added while inserts ran (its scan delivered some entries but not
        // all): otherwise nothing raced.
        let mut raced = 0;
        for round in 0..200 {
            if round >= 20 && raced > 0 {
                break;
            }
            let map: RawIMap<u64, u64> = RawIMap::new();
            let early = Record::new();
            map.add_listener(early.clone()).unwrap();
            let late = Record::new();
            std::thread::scope(|s| {
                for t in 0..4u64 {
                    let map = &map;
                    s.spawn(move || {
                        for k in 0..200u64 {
                            map.get_or_init_with((k * 7 + t * 13) % 300, || ((k * 7 + t * 13) % 300) * 10)
                                .unwrap();
                        }
                    });
                }
                // Registered while the inserts run.
                ADDING.with(|a| a.set(true));
                map.add_listener(late.clone()).unwrap();
                ADDING.with(|a| a.set(false));
            });
            let n = map.len();
            for r in [&early, &late] {
                let seen = r.0.lock().unwrap();
                assert_eq!(seen.len(), n);
                assert!(seen.values().all(|&c| c == 1), "an entry was delivered twice");
            }
            let scanned = late.1.load(SeqCst);
            raced += usize::from(scanned > 0 && scanned < n);
        }
        // (Miri interleaves threads its own way: the race is not guaranteed there.)
        assert!(raced > 0 || cfg!(miri), "the late listener never raced the inserts");
    }
}
