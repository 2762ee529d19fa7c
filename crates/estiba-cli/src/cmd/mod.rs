//! One module per group of docker commands; each turns parsed flags into API calls and output.

pub(crate) mod build;
pub(crate) mod container;
pub(crate) mod events;
pub(crate) mod image;
pub(crate) mod inspect;
pub(crate) mod network;
pub(crate) mod progress;
pub(crate) mod registry;
pub(crate) mod system;
pub(crate) mod transfer;
pub(crate) mod volume;
