//! The container's seccomp filter from its `--security-opt` values, capabilities and the host:
//! Docker's default profile, `seccomp=unconfined`, or a profile the user sent inline.

use estiba_oci::oci_spec::runtime::LinuxSeccomp;
use estiba_oci::{ContainerOptions, HostInfo, SeccompChoice};

use crate::error::ContainerError;

fn invalid(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::InvalidParameter(e.to_string())
}

/// Refuses unknown `--security-opt` keys at create time, as dockerd does.
pub(crate) fn validate_security_opts(opts: &[String]) -> Result<(), ContainerError> {
    SeccompChoice::from_security_opts(opts)
        .map(|_| ())
        .map_err(invalid)
}

/// The `linux.seccomp` of a container: `None` when privileged or unconfined.
pub(crate) fn seccomp(
    options: &ContainerOptions,
    security_opt: &[String],
    host: &HostInfo,
) -> Result<Option<LinuxSeccomp>, ContainerError> {
    let choice = SeccompChoice::from_security_opts(security_opt).map_err(invalid)?;
    let caps = estiba_oci::caps::tweak_capabilities(
        &options.cap_add,
        &options.cap_drop,
        options.privileged,
        &host.bounding_capabilities,
    )
    .map_err(invalid)?;
    estiba_oci::seccomp_for_choice(&choice, options.privileged, &caps).map_err(invalid)
}
