//! [`CallArena`]: a bump allocator that starts over whenever nothing is allocated.
//!
//! A mapping call allocates a few dozen small blocks (the host's copy of the
//! input, the answer, temporaries) and frees every one of them by the end of
//! the call's post-return. dlmalloc keeps free lists for that, which costs
//! a few hundred instructions per `malloc`/`free` pair, 13-19% of a
//! built-in's warm call (host included). This arena hands out memory
//! by moving a pointer, frees the most recent block in place, and rewinds to
//! its start when the count of live blocks drops to zero: a warm call reuses
//! the same few KiB every time.
//!
//! The price: memory freed out of order is only reused once everything is
//! freed, so a call holds at most the sum of what it allocated. That is small
//! and bounded for a mapping (its input and answer are capped by the host),
//! but a plugin that keeps allocations alive across calls (a cache in a
//! `static`) never rewinds and grows until the host's memory cap stops it:
//! such a plugin must keep the default allocator.
//!
//! Growth goes through `memory.grow`, so the host's memory limit applies as
//! with any allocator. wasm32 guests are single-threaded; the atomics below
//! are plain loads and stores there.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const PAGE: usize = 65536;

/// The allocator; install it with `#[global_allocator]` (wasm32 only).
#[derive(Debug)]
pub struct CallArena {
    /// Where the arena starts over once nothing is live.
    start: AtomicUsize,
    /// The first free byte.
    next: AtomicUsize,
    /// The end of the memory the arena owns (0 before the first growth).
    end: AtomicUsize,
    /// Blocks allocated and not yet freed.
    live: AtomicUsize,
}

impl CallArena {
    /// An arena that owns no memory yet.
    pub const fn new() -> Self {
        CallArena {
            start: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
        }
    }

    /// Grows the linear memory so that `size` bytes at any alignment up to
    /// `align` fit after `next`. False when the host refuses the growth.
    fn grow(&self, size: usize, align: usize) -> bool {
        let Some(want) = size.checked_add(align) else {
            return false;
        };
        let pages = want.div_ceil(PAGE).max(1);
        let Some(old) = memory_grow(pages) else {
            return false;
        };
        let base = old * PAGE;
        if self.end.load(Relaxed) != base {
            // First growth (or memory grown by someone else): a fresh region.
            // Live blocks elsewhere stay valid; rewinding goes to the new start.
            self.start.store(base, Relaxed);
            self.next.store(base, Relaxed);
        }
        self.end.store(base + pages * PAGE, Relaxed);
        true
    }
}

impl CallArena {
    /// The canonical ABI's `cabi_realloc` on this arena: the host calls it
    /// once per string and list of a call's arguments (~20 times a call),
    /// so it skips wit-bindgen's forwarding through `__rust_alloc`.
    ///
    /// # Safety
    /// As `cabi_realloc`: `old_ptr`/`old_len`/`align` describe a block this
    /// arena handed out (or `old_len` is 0), `align` is a power of two.
    pub unsafe fn cabi_realloc(
        &self,
        old_ptr: *mut u8,
        old_len: usize,
        align: usize,
        new_len: usize,
    ) -> *mut u8 {
        // SAFETY: the layouts are the caller's (see above).
        let ptr = unsafe {
            if old_len == 0 {
                if new_len == 0 {
                    return align as *mut u8;
                }
                self.alloc(Layout::from_size_align_unchecked(new_len, align))
            } else {
                self.realloc(
                    old_ptr,
                    Layout::from_size_align_unchecked(old_len, align),
                    new_len,
                )
            }
        };
        if ptr.is_null() {
            // Out of memory under the host's cap: trap, as wit-bindgen does.
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_arch = "wasm32"))]
            unreachable!("the call arena only allocates in wasm32 guests");
        }
        ptr
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_arch = "wasm32")]
fn memory_grow(pages: usize) -> Option<usize> {
    let old = core::arch::wasm32::memory_grow(0, pages);
    (old != usize::MAX).then_some(old)
}

/// Not a wasm guest (host builds of the workspace, unit tests): never grows.
#[cfg(not(target_arch = "wasm32"))]
fn memory_grow(_pages: usize) -> Option<usize> {
    None
}

// SAFETY: blocks are disjoint ranges of linear memory between `start` and
// `end`, aligned as asked; a range is handed out again only after it was
// freed (the last block) or after every block was freed (`live` == 0). The
// guest is single-threaded, so the loads and stores do not race.
unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let size = layout.size();
        for _ in 0..2 {
            let next = self.next.load(Relaxed);
            let end = self.end.load(Relaxed);
            if end != 0
                && let Some(addr) = next.checked_add(align - 1).map(|a| a & !(align - 1))
                && let Some(after) = addr.checked_add(size)
                && after <= end
            {
                self.next.store(after, Relaxed);
                self.live.store(self.live.load(Relaxed) + 1, Relaxed);
                return addr as *mut u8;
            }
            if !self.grow(size, align) {
                break;
            }
        }
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let live = self.live.load(Relaxed) - 1;
        self.live.store(live, Relaxed);
        if live == 0 {
            self.next.store(self.start.load(Relaxed), Relaxed);
        } else if ptr as usize + layout.size() == self.next.load(Relaxed) {
            self.next.store(ptr as usize, Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let addr = ptr as usize;
        let next = self.next.load(Relaxed);
        if addr + layout.size() == next
            && let Some(after) = addr.checked_add(new_size)
            && after <= self.end.load(Relaxed)
        {
            // The last block: grow or shrink it in place.
            self.next.store(after, Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees a valid layout for `new_size`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded from the caller; the blocks are disjoint.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
