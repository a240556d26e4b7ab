//! `kubectl-rollouts`: the kubectl plugin (`kubectl rollouts ...`). See [`rollouts::cli`].

fn main() -> std::process::ExitCode {
    rollouts::cli::main()
}
