//! The process allocator (mimalloc, installed in `main.rs`): what the rest of the server may
//! ask of it.

/// Returns the memory freed on the calling thread to the operating system at once, instead of
/// keeping it for the thread's next allocations. For threads that just released a large work
/// area they will not need again soon (each argon2 hash takes 19 MiB).
pub fn release_freed_on_this_thread() {
    // SAFETY: a forced collection of the calling thread's heap; it touches no live block.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
