//! The allocator of a plugin instance (wasm builds, feature `arena`, on by default). The host
//! gives every call a fresh instance and throws it away afterwards, so memory freed during a call
//! is never needed again and a general-purpose allocator's bookkeeping is wasted work (it was
//! half of the default sanitizer's time). Allocation bumps a pointer through memory this
//! allocator grew itself; the newest block can be freed or grown in place, which keeps building a
//! vector or a string cheap. A plugin that wants its own allocator turns the feature off.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

/// The size of a wasm page.
const PAGE: usize = 64 * 1024;

/// A bump allocator over memory grown with `memory.grow`.
pub struct Arena {
    /// First free byte.
    next: Cell<usize>,
    /// End of the free memory after `next` (which this allocator grew itself).
    end: Cell<usize>,
}

/// What growing the arena did.
enum Reserve {
    /// The arena now reaches the end asked for.
    Done,
    /// The host refused more memory.
    Refused,
    /// The new pages do not follow the arena's (the C library grew memory in between): the
    /// arena starts over in them.
    Moved,
}

// SAFETY: plugins run in a wasm instance with a single thread; nothing else reaches the cells.
#[allow(unsafe_code)]
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that owns no memory yet.
    pub const fn new() -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Grows memory so that the arena reaches `needed_end` (beyond its end).
    fn reserve(&self, needed_end: usize) -> Reserve {
        let pages = (needed_end - self.end.get()).div_ceil(PAGE);
        let previous = wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return Reserve::Refused;
        }
        let start = previous * PAGE;
        let contiguous = start == self.end.get();
        self.end.set(start + pages * PAGE);
        if contiguous {
            return Reserve::Done;
        }
        self.next.set(start);
        Reserve::Moved
    }

    /// A block of `layout` at the end of the arena, or null.
    fn bump(&self, layout: Layout) -> *mut u8 {
        // A restart in new pages may leave too little room: place the block again, at most twice.
        for _ in 0..3 {
            let start = self.next.get().next_multiple_of(layout.align());
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if end > self.end.get() {
                match self.reserve(end) {
                    Reserve::Done => {}
                    Reserve::Refused => return core::ptr::null_mut(),
                    Reserve::Moved => continue,
                }
            }
            self.next.set(end);
            return start as *mut u8;
        }
        core::ptr::null_mut()
    }

    /// Resizes the newest block (starting at `start`) where it is, if it can.
    fn resize_newest(&self, start: usize, new_size: usize) -> bool {
        let Some(end) = start.checked_add(new_size) else {
            return false;
        };
        if end > self.end.get() && !matches!(self.reserve(end), Reserve::Done) {
            return false;
        }
        self.next.set(end);
        true
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks are disjoint (each one ends before `next`, which only moves past them, except
// when the newest block is freed or resized in place), aligned as asked, and inside memory this
// allocator grew itself.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.bump(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let newest = ptr as usize + layout.size() == self.next.get();
        if newest && self.resize_newest(ptr as usize, new_size) {
            return ptr;
        }
        // SAFETY: the layout is valid: it was with the old size, and `new_size` rounded up to the
        // alignment does not overflow (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = self.bump(new_layout);
        if !new.is_null() {
            // SAFETY: both blocks are live and disjoint; the old one holds `layout.size()` bytes.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
