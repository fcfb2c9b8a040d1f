//! The one mechanism that turns the message table (`messages.rs`) into
//! code: for each message type a zero-copy view with big-endian field
//! accessors, its record layout and record writer, and then the
//! [`Message`](super::Message) enum, the [`MessageType`](super::MessageType)
//! table and [`decode`](super::decode).
//!
//! A field is written `name: kind @ wire_offset`, where kind is one of
//! `char`, `ascii(N)`, `u16`, `u32`, `u64`, `price4`, `price8`. A
//! compile-time check proves, for every type, that its fields start right
//! after the 11-byte header, follow each other without gap or overlap, and
//! end exactly at the message length, so every accessor is in bounds.

/// The [`FieldKind`](crate::record::FieldKind) of a field kind token.
macro_rules! field_kind {
    (char) => {
        $crate::record::FieldKind::Char
    };
    (ascii($n:literal)) => {
        $crate::record::FieldKind::Ascii($n)
    };
    (u16) => {
        $crate::record::FieldKind::U16
    };
    (u32) => {
        $crate::record::FieldKind::U32
    };
    (u64) => {
        $crate::record::FieldKind::U64
    };
    (price4) => {
        $crate::record::FieldKind::Price4
    };
    (price8) => {
        $crate::record::FieldKind::Price8
    };
}

/// A big-endian field accessor of a view.
macro_rules! field_accessor {
    ($field:ident, char, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: one ASCII character at offset ", $off, ".")]
        #[inline(always)]
        pub fn $field(&self) -> u8 {
            self.0[$off]
        }
    };
    ($field:ident, ascii($n:literal), $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: ", $n, " space-padded ASCII bytes at offset ", $off,
            " (see [`text`](crate::wire::text)).")]
        #[inline(always)]
        pub fn $field(&self) -> &'a [u8; $n] {
            $crate::wire::bytes_at(self.0, $off)
        }
    };
    ($field:ident, u16, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: `u16` at offset ", $off, ".")]
        #[inline(always)]
        pub fn $field(&self) -> u16 {
            u16::from_be_bytes(*$crate::wire::bytes_at(self.0, $off))
        }
    };
    ($field:ident, u32, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: `u32` at offset ", $off, ".")]
        #[inline(always)]
        pub fn $field(&self) -> u32 {
            u32::from_be_bytes(*$crate::wire::bytes_at(self.0, $off))
        }
    };
    ($field:ident, u64, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: `u64` at offset ", $off, ".")]
        #[inline(always)]
        pub fn $field(&self) -> u64 {
            u64::from_be_bytes(*$crate::wire::bytes_at(self.0, $off))
        }
    };
    ($field:ident, price4, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: Price(4) at offset ", $off,
            ", the raw `u32` with 4 implied decimals.")]
        #[inline(always)]
        pub fn $field(&self) -> u32 {
            u32::from_be_bytes(*$crate::wire::bytes_at(self.0, $off))
        }
    };
    ($field:ident, price8, $off:literal) => {
        #[doc = concat!("`", stringify!($field), "`: Price(8) at offset ", $off,
            ", the raw `u64` with 8 implied decimals.")]
        #[inline(always)]
        pub fn $field(&self) -> u64 {
            u64::from_be_bytes(*$crate::wire::bytes_at(self.0, $off))
        }
    };
}

/// Stores one field's value into a record at `$at` (little-endian).
macro_rules! field_store {
    ($out:ident, $at:expr, char, $v:expr) => {
        $out[$at] = $v
    };
    ($out:ident, $at:expr, ascii($n:literal), $v:expr) => {
        $out[$at..$at + $n].copy_from_slice($v)
    };
    ($out:ident, $at:expr, $kind:ident, $v:expr) => {{
        let le = $v.to_le_bytes();
        $out[$at..$at + le.len()].copy_from_slice(&le)
    }};
}

/// How a field shows in a view's `Debug` output.
macro_rules! field_debug {
    (char, $v:expr) => {
        ($v as char)
    };
    (ascii($n:literal), $v:expr) => {
        $crate::wire::text($v)
    };
    ($kind:ident, $v:expr) => {
        $v
    };
}

/// Compile-time proof that a type's fields tile its message exactly:
/// `fields` holds `(wire offset, wire width)` in table order.
pub(crate) const fn check_fields(len: usize, fields: &[(usize, usize)]) {
    let mut at = super::HEADER_LEN;
    let mut i = 0;
    while i < fields.len() {
        assert!(
            fields[i].0 == at,
            "ITCH table: a field does not start where the previous one ends"
        );
        at += fields[i].1;
        i += 1;
    }
    assert!(
        at == len,
        "ITCH table: the fields do not end at the message length"
    );
}

/// Generates everything from the message table (see the module docs).
macro_rules! itch_messages {
    ($(
        $(#[doc = $doc:literal])*
        $view:ident = $byte:literal, $len:literal, $name:literal, $cname:ident {
            $( $field:ident : $kind:ident $(($n:literal))? @ $off:literal ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = concat!("Type `", stringify!($byte), "`, ", $len,
                " bytes; a zero-copy view decoding fields on access.")]
            #[derive(Clone, Copy, PartialEq, Eq)]
            pub struct $view<'a>(&'a [u8; $len]);

            const _: () = $crate::itch::define::check_fields(
                $len, &[$(($off, field_kind!($kind $(($n))?).wire_width())),*]);

            impl<'a> $view<'a> {
                /// The message type byte.
                pub const TYPE: u8 = $byte;
                /// Message length on the wire, type byte included.
                pub const LEN: usize = $len;
                /// Size of this type's record in bytes.
                pub const RECORD_SIZE: usize = $crate::record::record_size($len);
                /// Every field of this type's record, header first.
                pub const RECORD_FIELDS: &'static [$crate::record::RecordField] = &[
                    $crate::record::HEADER_FIELDS[0],
                    $crate::record::HEADER_FIELDS[1],
                    $crate::record::HEADER_FIELDS[2],
                    $crate::record::HEADER_FIELDS[3],
                    $($crate::record::RecordField {
                        name: stringify!($field),
                        kind: field_kind!($kind $(($n))?),
                        offset: $off + $crate::record::RECORD_BODY_SHIFT,
                    },)*
                ];
                /// The description of this type's record.
                pub const RECORD: $crate::record::RecordLayout = $crate::record::RecordLayout {
                    type_byte: $byte,
                    name: $name,
                    const_name: stringify!($cname),
                    size: Self::RECORD_SIZE,
                    fields: Self::RECORD_FIELDS,
                };

                /// A view of `bytes`, which must be exactly one message of
                /// this type.
                pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, $crate::itch::DecodeError> {
                    match $crate::itch::decode(bytes)? {
                        $crate::itch::Message::$view(v) => Ok(v),
                        other => Err($crate::itch::DecodeError::WrongType {
                            expected: $byte,
                            got: other.message_type().byte(),
                        }),
                    }
                }

                /// The message bytes.
                pub fn bytes(&self) -> &'a [u8; $len] {
                    self.0
                }

                /// Stock locate code (0 for market-wide messages).
                #[inline(always)]
                pub fn stock_locate(&self) -> u16 {
                    u16::from_be_bytes(*$crate::wire::bytes_at(self.0, 1))
                }

                /// NASDAQ internal tracking number.
                #[inline(always)]
                pub fn tracking_number(&self) -> u16 {
                    u16::from_be_bytes(*$crate::wire::bytes_at(self.0, 3))
                }

                /// Nanoseconds since midnight (48 bits on the wire).
                #[inline(always)]
                pub fn timestamp(&self) -> u64 {
                    $crate::wire::be_u48(*$crate::wire::bytes_at(self.0, 5))
                }

                $( field_accessor!($field, $kind $(($n))?, $off); )*

                /// The record of this message, received at `recv_ns`.
                #[inline]
                pub fn to_record(&self, recv_ns: u64) -> [u8; $crate::record::record_size($len)] {
                    let mut out = [0u8; $crate::record::record_size($len)];
                    out[0..8].copy_from_slice(&recv_ns.to_le_bytes());
                    out[8..16].copy_from_slice(&self.timestamp().to_le_bytes());
                    out[16..18].copy_from_slice(&self.stock_locate().to_le_bytes());
                    out[18..20].copy_from_slice(&self.tracking_number().to_le_bytes());
                    $( field_store!(out, $off + $crate::record::RECORD_BODY_SHIFT,
                        $kind $(($n))?, self.$field()); )*
                    out
                }
            }

            impl std::fmt::Debug for $view<'_> {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.debug_struct(stringify!($view))
                        .field("stock_locate", &self.stock_locate())
                        .field("tracking_number", &self.tracking_number())
                        .field("timestamp", &self.timestamp())
                        $( .field(stringify!($field), &field_debug!($kind $(($n))?, self.$field())) )*
                        .finish()
                }
            }
        )*

        /// Every ITCH 5.0 message type, in the spec's order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum MessageType {
            $(
                #[doc = concat!("`", stringify!($byte), "`: [`", stringify!($view), "`].")]
                $view,
            )*
        }

        impl MessageType {
            /// Every type, in the spec's order (`ALL[t.index()] == t`).
            pub const ALL: &'static [MessageType] = &[$(MessageType::$view),*];
            /// How many message types there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The type whose type byte is `byte`.
            #[inline]
            pub const fn from_byte(byte: u8) -> Option<Self> {
                match byte {
                    $($byte => Some(MessageType::$view),)*
                    _ => None,
                }
            }

            /// The type byte.
            pub const fn byte(self) -> u8 {
                match self { $(MessageType::$view => $byte,)* }
            }

            /// Message length on the wire, type byte included.
            pub const fn length(self) -> usize {
                match self { $(MessageType::$view => $len,)* }
            }

            /// Snake-case name (`"add_order"`).
            pub const fn name(self) -> &'static str {
                match self { $(MessageType::$view => $name,)* }
            }

            /// Position in [`MessageType::ALL`], for per-type tables.
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The description of this type's record.
            pub const fn record(self) -> &'static $crate::record::RecordLayout {
                match self { $(MessageType::$view => &$view::RECORD,)* }
            }
        }

        /// One decoded message: a view of its bytes, typed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Message<'a> {
            $(
                #[doc = concat!("`", stringify!($byte), "`.")]
                $view($view<'a>),
            )*
        }

        impl<'a> Message<'a> {
            /// The message's type.
            pub fn message_type(&self) -> MessageType {
                match self { $(Message::$view(_) => MessageType::$view,)* }
            }

            /// The message bytes (type byte first).
            pub fn bytes(&self) -> &'a [u8] {
                match self { $(Message::$view(v) => v.bytes(),)* }
            }

            /// Stock locate code (0 for market-wide messages).
            pub fn stock_locate(&self) -> u16 {
                match self { $(Message::$view(v) => v.stock_locate(),)* }
            }

            /// NASDAQ internal tracking number.
            pub fn tracking_number(&self) -> u16 {
                match self { $(Message::$view(v) => v.tracking_number(),)* }
            }

            /// Nanoseconds since midnight.
            pub fn timestamp(&self) -> u64 {
                match self { $(Message::$view(v) => v.timestamp(),)* }
            }

            /// The message's record, received at `recv_ns`.
            #[inline]
            pub fn record(&self, recv_ns: u64) -> $crate::record::RecordBuf {
                let mut out = [0u8; $crate::record::MAX_RECORD_SIZE];
                let len = self.write_record(recv_ns, &mut out).unwrap_or(0);
                $crate::record::RecordBuf::new(out, len)
            }

            /// Writes the message's record, received at `recv_ns`, to the
            /// start of `out`; returns its size, or `None` (nothing
            /// written) when `out` is shorter than the record.
            #[inline]
            pub fn write_record(&self, recv_ns: u64, out: &mut [u8]) -> Option<usize> {
                match self {
                    $(Message::$view(v) => {
                        let dst = out.get_mut(..$view::RECORD_SIZE)?;
                        dst.copy_from_slice(&v.to_record(recv_ns));
                        Some($view::RECORD_SIZE)
                    })*
                }
            }
        }

        /// Decodes one message: `bytes` must be exactly one message (as a
        /// length prefix or a MoldUDP64 block frames it). Never panics.
        #[inline]
        pub fn decode(bytes: &[u8]) -> Result<Message<'_>, $crate::itch::DecodeError> {
            let Some(&type_byte) = bytes.first() else {
                return Err($crate::itch::DecodeError::Empty);
            };
            match type_byte {
                $($byte => match <&[u8; $len]>::try_from(bytes) {
                    Ok(exact) => Ok(Message::$view($view(exact))),
                    Err(_) => Err($crate::itch::DecodeError::WrongLength {
                        type_byte, expected: $len, got: bytes.len(),
                    }),
                },)*
                other => Err($crate::itch::DecodeError::UnknownType(other)),
            }
        }
    };
}
