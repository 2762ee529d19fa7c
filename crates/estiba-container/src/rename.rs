//! `docker rename`: a new unique name, with Docker's errors and its `rename` event.

use crate::error::ContainerError;
use crate::names;
use crate::service::{lock, ContainerService};

impl ContainerService {
    /// Renames container `name` to `new_name` (with or without the leading slash).
    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), ContainerError> {
        if name.is_empty() || new_name.is_empty() {
            return Err(ContainerError::InvalidParameter(
                "Neither old nor new names may be empty".to_string(),
            ));
        }
        let c = self.get(name)?;
        let bare_new = new_name.strip_prefix('/').unwrap_or(new_name);
        // The write lock keeps names unique against a concurrent create or rename.
        let index = self.write_index();
        let old = c.snapshot().name;
        if old == bare_new {
            return Err(ContainerError::InvalidParameter(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        let Some(valid) = names::validate_name(bare_new) else {
            return Err(ContainerError::InvalidParameter(format!(
                "Error when allocating new name: Invalid container name (/{bare_new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        };
        if let Some(other) = index.values().find(|o| lock(&o.record).name == valid) {
            return Err(ContainerError::Conflict(format!(
                "Error when allocating new name: Conflict. The container name \"/{valid}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                other.id
            )));
        }
        let record = self.update(&c, |r| r.name = valid.to_string(), false);
        drop(index);
        let old_attr = format!("/{old}");
        self.publish(&record, "rename", &[("oldName", &old_attr)]);
        Ok(())
    }
}
