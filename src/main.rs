//! The `secpipe` binary: everything lives in the library; this only dispatches.

// mimalloc: per-key detection state is many small, short-lived allocations; glibc's malloc
// fragments them (about 25% more peak memory in the 1M-IP flood) and is slower at it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    secpipe::commands::main()
}
