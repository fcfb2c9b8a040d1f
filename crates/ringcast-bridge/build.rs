//! Compiles `csrc/aeron_shims.c` (arc4random and uuid_generate for Aeron's
//! C driver, see the file) and links it whole, so its definitions are in
//! the link before anything needs them.
//!
//! The Aeron crate still asks for `-lbsd -luuid`. So that neither library
//! is recorded as needed (a portable wheel may depend on glibc alone), a
//! directory searched before the system's holds stand-ins by those names:
//! linker scripts that add nothing. (`--as-needed` is not enough: Debian's
//! `libbsd.so` is itself a linker script naming `libbsd.so.0`, which some
//! linkers, zig's among them, then always record; and zig looks for a
//! shared library in every directory before any static one.)

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/aeron_shims.c");
    cc::Build::new()
        .file("csrc/aeron_shims.c")
        .warnings(true)
        .link_lib_modifier("+whole-archive")
        .compile("ringcast_aeron_shims");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let stand_ins = out.join("stand-ins");
    std::fs::create_dir_all(&stand_ins).expect("OUT_DIR is writable");
    for lib in ["bsd", "uuid"] {
        let script = format!(
            "/* ringcast-bridge: what Aeron takes from lib{lib} is defined in \
             csrc/aeron_shims.c; nothing to link. */\n"
        );
        std::fs::write(stand_ins.join(format!("lib{lib}.so")), script)
            .expect("OUT_DIR is writable");
    }
    println!("cargo:rustc-link-search=native={}", stand_ins.display());
}
