fn main() {
    eprintln!("faultline-raft is not built yet");
    std::process::exit(1);
}
