//! Rebuilds the server when a migration changes: `sqlx::migrate!` embeds the migration folders at
//! compile time, and Cargo does not otherwise watch files outside the crate.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
