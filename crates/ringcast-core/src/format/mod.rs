//! The ring file format: the header, the subscriber and producer tables, the
//! slots ([`layout`]); the message schema stored in the header ([`schema`]);
//! ring names and where their files live ([`name`]). Pure data and its
//! validation: no mapping, no system call.

pub mod layout;
pub mod name;
pub mod schema;
pub mod stage_name;
