//! estibad: the Estiba daemon, serving the Docker Engine API.

fn main() {}
