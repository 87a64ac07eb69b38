//! TESTPLAN C1: the queue, stack, semaphore, once, latch and barrier algorithms checked by `loom` over every interleaving (up to
//! the preemption bound) of small models. The algorithms are the crate's own `src/algo` code,
//! included by path and run on loom's atomics; slots are loom cells, so a read that could race
//! with a write is reported as a data race.
//!
//! `LOOM_MAX_PREEMPTIONS` overrides the bound (default 2 here; 3 for a longer check).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

#[path = "../src/algo/mod.rs"]
mod algo;

use std::sync::atomic::Ordering;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicU32;

use algo::sync::{barrier, latch, once, semaphore};
use algo::{Word, stack, vyukov};

impl Word for AtomicU32 {
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order);
    }
    fn cas_weak(&self, current: u32, new: u32, s: Ordering, f: Ordering) -> Result<u32, u32> {
        self.compare_exchange_weak(current, new, s, f)
    }
    fn cas(&self, current: u32, new: u32, s: Ordering, f: Ordering) -> Result<u32, u32> {
        self.compare_exchange(current, new, s, f)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    fn swap(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::swap(self, value, order)
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

struct LoomQueue {
    head: AtomicU32,
    tail: AtomicU32,
    /// Shared guesses, as a `Queue` handle used by several threads keeps them.
    head_hint: AtomicU32,
    tail_hint: AtomicU32,
    seq: Vec<AtomicU32>,
    slots: Vec<UnsafeCell<u64>>,
}

impl LoomQueue {
    fn new(capacity: u32, start: u32) -> Self {
        Self {
            head: AtomicU32::new(start),
            tail: AtomicU32::new(start),
            head_hint: AtomicU32::new(start),
            tail_hint: AtomicU32::new(start),
            seq: (0..capacity)
                .map(|i| {
                    // seq[p % cap] = p for the positions of the first lap after `start`.
                    let p = start.wrapping_add((i.wrapping_sub(start)) % capacity);
                    AtomicU32::new(p)
                })
                .collect(),
            slots: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
        }
    }
}

impl vyukov::Store for LoomQueue {
    type W = AtomicU32;
    type Item = u64;
    fn head(&self) -> &AtomicU32 {
        &self.head
    }
    fn tail(&self) -> &AtomicU32 {
        &self.tail
    }
    fn seq(&self, slot: u32) -> Option<&AtomicU32> {
        self.seq.get(slot as usize)
    }
    fn mask(&self) -> u32 {
        self.seq.len() as u32 - 1
    }
    fn write(&self, slot: u32, item: u64) {
        // SAFETY: loom checks this claim: the algorithm gives this thread exclusive access to
        // the slot between its CAS and its `seq` store.
        self.slots[slot as usize].with_mut(|p| unsafe { *p = item });
    }
    fn read(&self, slot: u32) -> u64 {
        // SAFETY: as for `write`; a concurrent write would be reported by loom.
        self.slots[slot as usize].with(|p| unsafe { *p })
    }
    fn tail_guess(&self) -> u32 {
        self.tail_hint.load(Ordering::Relaxed)
    }
    fn head_guess(&self) -> u32 {
        self.head_hint.load(Ordering::Relaxed)
    }
    fn note_tail(&self, tail: u32) {
        self.tail_hint.store(tail, Ordering::Relaxed);
    }
    fn note_head(&self, head: u32) {
        self.head_hint.store(head, Ordering::Relaxed);
    }
}

/// Pushes each item once (no waiting: spin loops would explode loom's state space); returns the
/// items the queue refused as full. Live peers never produce an anomaly, in any interleaving.
fn push_all(q: &LoomQueue, items: &[u64]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|&item| match vyukov::push(q, item) {
            Ok(()) => None,
            Err((item, None)) => Some(item),
            Err((_, Some(anomaly))) => panic!("live peers produced {anomaly:?}"),
        })
        .collect()
}

/// One non-blocking pop; live peers never produce an anomaly.
fn pop1(q: &LoomQueue) -> Option<u64> {
    vyukov::pop(q).unwrap_or_else(|anomaly| panic!("live peers produced {anomaly:?}"))
}

/// `n` non-blocking pop attempts.
fn try_pop(q: &LoomQueue, n: usize) -> Vec<u64> {
    (0..n).filter_map(|_| pop1(q)).collect()
}

/// Checks that `popped` (in the order one consumer saw them, or drained) plus `refused` is every
/// item exactly once.
fn assert_exactly_once(mut all: Vec<u64>, want: &[u64]) {
    all.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(all, want, "an item was lost or duplicated");
}

#[test]
fn queue_two_producers_one_consumer() {
    model(|| {
        let q = Arc::new(LoomQueue::new(2, 0));
        let producers: Vec<_> = [[10u64, 11], [20, 21]]
            .into_iter()
            .map(|items| {
                let q = q.clone();
                loom::thread::spawn(move || push_all(&q, &items))
            })
            .collect();
        let mut seen = try_pop(&q, 2);
        let refused: Vec<u64> = producers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        seen.extend(std::iter::from_fn(|| pop1(&q)));
        // Per-producer FIFO: among the items of one producer that got in, order is kept.
        for base in [10, 20] {
            let mine: Vec<u64> = seen
                .iter()
                .copied()
                .filter(|v| v / 10 == base / 10)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "order broken: {seen:?}"
            );
        }
        // A producer's first item is refused only if its second is too (FIFO into a full queue).
        seen.extend(&refused);
        assert_exactly_once(seen, &[10, 11, 20, 21]);
    });
}

#[test]
fn queue_one_producer_two_consumers_across_the_wrap() {
    model(|| {
        // Counters start just below 2^32, so positions wrap during the model.
        let q = Arc::new(LoomQueue::new(2, u32::MAX - 1));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                loom::thread::spawn(move || try_pop(&q, 2))
            })
            .collect();
        let refused = push_all(&q, &[1, 2, 3]);
        let mut got: Vec<u64> = Vec::new();
        for c in consumers {
            let seen = c.join().unwrap();
            assert!(
                seen.windows(2).all(|w| w[0] < w[1]),
                "a consumer saw items out of order: {seen:?}"
            );
            got.extend(seen);
        }
        got.extend(std::iter::from_fn(|| pop1(&q)));
        got.extend(refused);
        assert_exactly_once(got, &[1, 2, 3]);
        assert_eq!(vyukov::len(&*q), 0);
    });
}

#[test]
fn queue_batches_against_single_operations() {
    model(|| {
        let q = Arc::new(LoomQueue::new(4, u32::MAX - 2));
        let producer = {
            let q = q.clone();
            loom::thread::spawn(move || {
                let first = vyukov::push_batch(&*q, &[1, 2, 3]).unwrap() as u64;
                let second = vyukov::push(&*q, 4).is_ok();
                (first, second)
            })
        };
        let mut out = [0u64; 4];
        let n = vyukov::pop_batch(&*q, &mut out).unwrap();
        let mut seen: Vec<u64> = out[..n].to_vec();
        seen.extend(pop1(&q));
        let (first, second) = producer.join().unwrap();
        seen.extend(std::iter::from_fn(|| pop1(&q)));
        let mut want: Vec<u64> = (1..=first).collect();
        if second {
            want.push(4);
        }
        assert_eq!(seen, want, "FIFO broken, or an item lost or duplicated");
    });
}

struct LoomStack {
    top: AtomicU32,
    state: Vec<AtomicU32>,
    slots: Vec<UnsafeCell<u64>>,
    /// Waits of more than this many attempts give up (unless committed); `None`: never.
    patience: Option<u32>,
}

impl LoomStack {
    fn new(capacity: u32) -> Self {
        Self {
            top: AtomicU32::new(u32::MAX),
            state: (0..capacity)
                .map(|_| AtomicU32::new(stack::EMPTY))
                .collect(),
            slots: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
            patience: None,
        }
    }

    /// Slots `0..=top` are READY and the others EMPTY: what every quiescent stack must show.
    fn assert_consistent(&self) {
        let top = self.top.load(Ordering::Relaxed) as i32;
        for (i, state) in self.state.iter().enumerate() {
            let want = if (i as i32) <= top {
                stack::READY
            } else {
                stack::EMPTY
            };
            assert_eq!(
                state.load(Ordering::Relaxed),
                want,
                "slot {i} with top {top}"
            );
        }
    }
}

impl stack::Store for LoomStack {
    type W = AtomicU32;
    type Item = u64;
    fn top(&self) -> &AtomicU32 {
        &self.top
    }
    fn state(&self, slot: u32) -> Option<&AtomicU32> {
        self.state.get(slot as usize)
    }
    fn capacity(&self) -> u32 {
        self.state.len() as u32
    }
    fn write(&self, slot: u32, item: u64) {
        // SAFETY: exclusive between WRITING and READY; loom reports any overlap.
        self.slots[slot as usize].with_mut(|p| unsafe { *p = item });
    }
    fn read(&self, slot: u32) -> u64 {
        // SAFETY: exclusive between READING and EMPTY; loom reports any overlap.
        self.slots[slot as usize].with(|p| unsafe { *p })
    }
    fn keep_waiting(&self, attempt: u32, committed: bool) -> bool {
        // Let loom run the peer we wait for; give up early when the model asks for it.
        loom::thread::yield_now();
        committed || self.patience.is_none_or(|p| attempt < p)
    }
}

#[test]
fn stack_push_pop_races() {
    model(|| {
        let s = Arc::new(LoomStack::new(2));
        let threads: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|v| {
                let s = s.clone();
                loom::thread::spawn(move || {
                    stack::push(&*s, v).map_err(|(_, f)| f).unwrap();
                    stack::pop(&*s).unwrap()
                })
            })
            .collect();
        let mut got: Vec<u64> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        while let Some(v) = stack::pop(&*s).unwrap() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2], "lost or duplicated");
        assert_eq!(stack::len(&*s), 0);
    });
}

#[test]
fn stack_full_and_empty_are_reported() {
    model(|| {
        let s = Arc::new(LoomStack::new(1));
        let t = {
            let s = s.clone();
            loom::thread::spawn(move || stack::push(&*s, 7).is_ok())
        };
        let mine = stack::push(&*s, 8).is_ok();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one push fits in one slot");
        let popped = stack::pop(&*s).unwrap();
        assert_eq!(popped, Some(if mine { 8 } else { 7 }));
        assert_eq!(stack::pop(&*s).unwrap(), None);
    });
}

#[test]
fn stack_gives_up_only_when_it_can_undo() {
    // Operations give up after one attempt whenever their claim can still be undone: whatever
    // the interleaving, no item is lost or duplicated and the stack stays consistent.
    model(|| {
        let mut s = LoomStack::new(2);
        s.patience = Some(1);
        let s = Arc::new(s);
        let threads: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|v| {
                let s = s.clone();
                loom::thread::spawn(move || {
                    let pushed = stack::push(&*s, v).is_ok();
                    let popped = stack::pop(&*s).ok().flatten();
                    (pushed.then_some(v), popped)
                })
            })
            .collect();
        let (mut pushed, mut popped) = (Vec::new(), Vec::new());
        for t in threads {
            let (a, b) = t.join().unwrap();
            pushed.extend(a);
            popped.extend(b);
        }
        s.assert_consistent();
        while let Some(v) = stack::pop(&*s).unwrap() {
            popped.push(v);
        }
        pushed.sort_unstable();
        popped.sort_unstable();
        assert_eq!(popped, pushed, "an item was lost or duplicated");
    });
}

#[test]
fn stack_two_pushers_and_a_popper_that_give_up() {
    // The interleaving that wedges the reference algorithm: a popper claims a slot a pusher is
    // still writing, another pusher claims it again, and waits give up. With undo-or-keep-waiting
    // the stack stays consistent and every item is accounted for.
    model(|| {
        let mut s = LoomStack::new(2);
        s.patience = Some(1);
        let s = Arc::new(s);
        let pushers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|v| {
                let s = s.clone();
                loom::thread::spawn(move || stack::push(&*s, v).is_ok().then_some(v))
            })
            .collect();
        let popper = {
            let s = s.clone();
            loom::thread::spawn(move || stack::pop(&*s).ok().flatten())
        };
        let mut pushed: Vec<u64> = pushers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        let mut popped: Vec<u64> = popper.join().unwrap().into_iter().collect();
        s.assert_consistent();
        while let Some(v) = stack::pop(&*s).unwrap() {
            popped.push(v);
        }
        pushed.sort_unstable();
        popped.sort_unstable();
        assert_eq!(popped, pushed, "an item was lost or duplicated");
    });
}

/// Spins (yielding to loom) until `done`.
fn spin_until(done: impl Fn() -> bool) {
    while !done() {
        loom::thread::yield_now();
    }
}

/// A cell written and read only where the algorithm says the caller has exclusive access (or
/// sees the writer's stores); loom reports any overlap as a data race.
struct Cell(UnsafeCell<u32>);

// SAFETY: loom checks every access for races.
unsafe impl Sync for Cell {}

impl Cell {
    fn new() -> Self {
        Self(UnsafeCell::new(0))
    }
    fn add(&self) {
        // SAFETY: loom checks that no other access overlaps.
        self.0.with_mut(|p| unsafe { *p += 1 });
    }
    fn get(&self) -> u32 {
        // SAFETY: as for `add`.
        self.0.with(|p| unsafe { *p })
    }
}

#[test]
fn semaphore_of_one_permit_excludes_and_hands_over_what_was_written() {
    model(|| {
        let count = Arc::new(AtomicU32::new(1));
        let data = Arc::new(Cell::new());
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (count, data) = (Arc::clone(&count), Arc::clone(&data));
                loom::thread::spawn(move || {
                    spin_until(|| semaphore::try_acquire(&*count).unwrap());
                    data.add();
                    semaphore::release(&*count, 1).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(data.get(), 2);
        assert_eq!(count.load(Ordering::Relaxed), 1);
        // The bound holds: a release beyond it is refused and changes nothing.
        assert_eq!(
            semaphore::release(&*count, 1),
            Err(semaphore::Refused::Full(1))
        );
        assert_eq!(count.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn semaphore_of_two_permits_never_admits_three() {
    model(|| {
        let count = Arc::new(AtomicU32::new(2));
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (count, inside) = (Arc::clone(&count), Arc::clone(&inside));
                loom::thread::spawn(move || {
                    if semaphore::try_acquire(&*count).unwrap() {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 2, "{now} inside");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        semaphore::release(&*count, 2).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count.load(Ordering::Relaxed), 2);
    });
}

#[test]
fn once_runs_exactly_once_and_everyone_sees_what_it_did() {
    model(|| {
        let state = Arc::new(AtomicU32::new(once::PENDING));
        let data = Arc::new(Cell::new());
        let runs = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (state, data, runs) =
                    (Arc::clone(&state), Arc::clone(&data), Arc::clone(&runs));
                loom::thread::spawn(move || {
                    match once::begin(&*state).unwrap() {
                        once::Begin::Run => {
                            data.add();
                            runs.fetch_add(1, Ordering::Relaxed);
                            once::finish(&*state);
                        }
                        once::Begin::Running => {
                            spin_until(|| once::begin(&*state).unwrap() == once::Begin::Done)
                        }
                        once::Begin::Done => {}
                    }
                    // Done: the function's writes are visible.
                    assert_eq!(data.get(), 1);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn latch_opens_only_after_every_count_down_and_shows_their_writes() {
    model(|| {
        let count = Arc::new(AtomicU32::new(2));
        let cells = Arc::new([Cell::new(), Cell::new()]);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (count, cells) = (Arc::clone(&count), Arc::clone(&cells));
                loom::thread::spawn(move || {
                    cells[i].add();
                    latch::count_down(&*count, 1).unwrap()
                })
            })
            .collect();
        spin_until(|| latch::open(&*count));
        assert_eq!(cells[0].get() + cells[1].get(), 2);
        let zeroed: u32 = threads
            .into_iter()
            .map(|t| u32::from(t.join().unwrap()))
            .sum();
        assert_eq!(zeroed, 1, "exactly one count-down reached 0");
        // Saturated: more count-downs leave it at 0.
        assert!(!latch::count_down(&*count, 5).unwrap());
        assert_eq!(count.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn barrier_generations_release_together_and_reset() {
    model(|| {
        let arrived = Arc::new(AtomicU32::new(0));
        let generation = Arc::new(AtomicU32::new(0));
        // One cell per participant and generation: written before arriving, read after.
        let cells = Arc::new([[Cell::new(), Cell::new()], [Cell::new(), Cell::new()]]);
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (arrived, generation, cells) = (
                    Arc::clone(&arrived),
                    Arc::clone(&generation),
                    Arc::clone(&cells),
                );
                loom::thread::spawn(move || {
                    let mut leaders = 0;
                    for round in 0..2usize {
                        cells[round][i].add();
                        match barrier::arrive(&*arrived, &*generation, 2).unwrap() {
                            barrier::Arrival::Last => leaders += 1,
                            barrier::Arrival::Wait(g) => {
                                spin_until(|| barrier::passed(&*generation, g));
                            }
                        }
                        // Past the barrier: the other's write of this round is visible.
                        assert_eq!(cells[round][1 - i].get(), 1);
                    }
                    leaders
                })
            })
            .collect();
        let leaders: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(leaders, 2, "one leader per generation");
        assert_eq!(generation.load(Ordering::Relaxed), 2);
        assert_eq!(arrived.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn barrier_withdrawal_never_disagrees_with_the_release() {
    model(|| {
        let arrived = Arc::new(AtomicU32::new(0));
        let generation = Arc::new(AtomicU32::new(0));
        let a_left = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let a = {
            let (arrived, generation, a_left) = (
                Arc::clone(&arrived),
                Arc::clone(&generation),
                Arc::clone(&a_left),
            );
            loom::thread::spawn(move || {
                match barrier::arrive(&*arrived, &*generation, 2).unwrap() {
                    barrier::Arrival::Last => "last",
                    barrier::Arrival::Wait(g) => {
                        // Times out at once.
                        match barrier::withdraw(&*arrived, &*generation, g, 2).unwrap() {
                            barrier::Withdrawal::Left => {
                                a_left.store(true, Ordering::SeqCst);
                                "left"
                            }
                            // Released means released: the generation has moved on.
                            barrier::Withdrawal::Released => {
                                assert!(barrier::passed(&*generation, g));
                                "released"
                            }
                            barrier::Withdrawal::Completing => {
                                while !barrier::passed(&*generation, g) {
                                    loom::thread::yield_now();
                                }
                                "released"
                            }
                        }
                    }
                }
            })
        };
        let b = match barrier::arrive(&*arrived, &*generation, 2).unwrap() {
            barrier::Arrival::Last => "last",
            barrier::Arrival::Wait(g) => loop {
                if barrier::passed(&*generation, g) {
                    break "released";
                }
                if a_left.load(Ordering::SeqCst) {
                    match barrier::withdraw(&*arrived, &*generation, g, 2).unwrap() {
                        barrier::Withdrawal::Left => break "left",
                        barrier::Withdrawal::Released => {
                            assert!(barrier::passed(&*generation, g));
                            break "released";
                        }
                        // The release lands soon: the loop's next look sees it.
                        barrier::Withdrawal::Completing => {}
                    }
                }
                loom::thread::yield_now();
            },
        };
        let a = a.join().unwrap();
        let g = generation.load(Ordering::SeqCst);
        assert_eq!(arrived.load(Ordering::SeqCst), 0, "a={a} b={b}");
        match g {
            // Completed: one leader, the other released; nobody thinks it timed out.
            1 => assert!(
                matches!((a, b), ("last", "released") | ("released", "last")),
                "a={a} b={b}"
            ),
            // Not completed: both gave up.
            0 => assert_eq!((a, b), ("left", "left")),
            other => panic!("generation {other}"),
        }
    });
}
