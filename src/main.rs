//! The `secpipe` binary: everything lives in the library; this only dispatches.

// mimalloc: per-key detection state is many small, short-lived allocations; glibc's malloc
// fragments them (about 25% more peak memory in the 1M-IP flood) and is slower at it. It is
// built without transparent huge pages (Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (mimalloc.h): how long freed pages stay committed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Return freed pages to the OS after 100 ms instead of mimalloc's default second: in the
    // 1M-IP flood the default held 237 MiB at peak, 100 ms holds 218 MiB (DESIGN section 8
    // budgets 256 MiB). Shorter delays save nothing more and cost the archive writer, which
    // frees and reallocates per file: at 2 ms, 8% of its throughput in purges and refaults.
    // mimalloc's own MIMALLOC_PURGE_DELAY variable, when set, still wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option of the allocator; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    }
    secpipe::commands::main()
}
