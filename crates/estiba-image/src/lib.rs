//! Images: the content store, references, image metadata and the docker-archive / OCI-layout
//! tarballs that `docker load` and `docker save` exchange.
//!
//! [`service::ImageService`] is the one entry point the daemon uses; it speaks domain types
//! (this crate never sees HTTP or the Engine API's JSON shapes, except the image config blob,
//! which is Docker's own format on disk).

pub mod archive;
pub mod config;
pub mod content;
pub mod digest;
pub mod reference;
pub mod service;

#[cfg(test)]
pub(crate) mod testutil;
