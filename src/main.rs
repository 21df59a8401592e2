fn main() -> std::process::ExitCode {
    kyc_gateway::cli::main()
}
