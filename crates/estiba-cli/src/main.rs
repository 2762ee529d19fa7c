//! estiba: a docker-compatible command-line client for estibad (and any Docker engine).

fn main() {}
