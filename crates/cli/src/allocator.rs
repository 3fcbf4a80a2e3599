//! The process's allocator: mimalloc, told to keep freed memory.
//!
//! Burn's CPU backend allocates and frees tensor-sized buffers on every
//! operation. glibc handed large ones back to the kernel each time, so every
//! step paid page faults; mimalloc keeps and reuses them. By default it
//! still returns memory idle for a second to the kernel ("purging"), and a
//! CycleGAN run at 128 px, whose steps take longer than that, then spent
//! over a third of its CPU time in the kernel clearing re-faulted pages
//! (docs/benchmarks.md). Purging is switched off: the process keeps its
//! peak, which it reaches in the first step anyway.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `include/mimalloc.h` (the
/// version libmimalloc-sys 0.1.49 builds; Cargo.lock pins it). The Rust
/// bindings export options only with a feature whose dependency is not
/// vendored here, so the two C functions are declared directly.
const MI_OPTION_PURGE_DELAY: i32 = 15;

extern "C" {
    fn mi_option_set(option: i32, value: std::os::raw::c_long);
}

/// Never purge, unless the user set `MIMALLOC_PURGE_DELAY` themselves.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads it on each purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn mi_option_get(option: i32) -> std::os::raw::c_long;
    }

    /// The index names the purge delay: before it is set, the option holds
    /// mimalloc v3's default of 1000 ms (`src/options.c`), and setting it
    /// reads back.
    #[test]
    fn the_option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        keep_freed_memory();
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, -1);
    }
}
