//! A WASI command that is not a herald plugin (test fixture).

fn main() {
    println!("hello from a component that is not a herald plugin");
}
