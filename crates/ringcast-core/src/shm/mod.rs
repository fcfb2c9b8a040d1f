//! Rings in shared memory: the ring file made, found and trusted
//! ([`backing`], [`hugepages`], [`trust`]), its mapping and what happens to it
//! when the file shrinks or the process forks ([`mapping`], [`guard`]), and
//! the mapped ring ([`ring`]): its record tables, the notification of parked
//! ends, and the recovery of slots abandoned by dead producers.

pub(crate) mod backing;
pub mod guard;
pub mod hugepages;
pub(crate) mod mapping;
pub mod ring;
pub mod trust;
