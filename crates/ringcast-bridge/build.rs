//! Compiles `csrc/aeron_shims.c` (arc4random and uuid_generate for Aeron's
//! C driver, see the file) and links it whole, so that its definitions are
//! there before the linker reaches `-lbsd -luuid` (which the Aeron crate
//! asks for): with `--as-needed` neither library is then recorded as needed.

fn main() {
    println!("cargo:rerun-if-changed=csrc/aeron_shims.c");
    cc::Build::new()
        .file("csrc/aeron_shims.c")
        .warnings(true)
        .link_lib_modifier("+whole-archive")
        .compile("ringcast_aeron_shims");
}
