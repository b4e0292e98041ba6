//! The `secpipe` binary: everything lives in the library; this only dispatches.

fn main() -> std::process::ExitCode {
    secpipe::commands::main()
}
