# Read by cmake (through CMAKE_TOOLCHAIN_FILE, set in .cargo/config.toml)
# when rusteron-media-driver builds Aeron's C sources: the static libraries
# go into ringcast's Python extension, a shared object, so their code must
# be position independent.
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
