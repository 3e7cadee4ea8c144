//! The admin RPCs of named logs: `CreateLog`, `UpdateLog`, `DeleteLog` and `ListLogs`. Their
//! `name` has no default: an empty one is `INVALID_ARGUMENT`, like any invalid name. The
//! registry checks the name, the settings and the caller's `admin` permission, in that order.

use tonic::Status;

use crate::api::v1::{
    CreateLogRequest, CreateLogResponse, DeleteLogRequest, DeleteLogResponse, ListLogsResponse,
    UpdateLogRequest, UpdateLogResponse,
};
use crate::server::handle::Registry;
use crate::server::security::Caller;
use crate::server::status;
use crate::server::wire::{log_info, settings};

pub(super) async fn create(
    registry: &Registry,
    caller: &Caller,
    request: CreateLogRequest,
) -> Result<CreateLogResponse, Status> {
    let entry = registry.create(caller, request.name, settings(request.settings)).await?;
    Ok(CreateLogResponse { log: Some(log_info(&entry)) })
}

pub(super) async fn update(
    registry: &Registry,
    caller: &Caller,
    request: UpdateLogRequest,
) -> Result<UpdateLogResponse, Status> {
    let entry = registry.update(caller, request.name, settings(request.settings)).await?;
    Ok(UpdateLogResponse { log: Some(log_info(&entry)) })
}

pub(super) async fn delete(
    registry: &Registry,
    caller: &Caller,
    request: DeleteLogRequest,
) -> Result<DeleteLogResponse, Status> {
    registry.delete(caller, request.name).await?;
    Ok(DeleteLogResponse {})
}

/// The logs `caller` may consume or administer; the others are not shown.
pub(super) async fn list(registry: &Registry, caller: &Caller) -> Result<ListLogsResponse, Status> {
    let entries = registry.list(caller);
    // Each description takes a log's locks briefly; thousands of them belong off the workers.
    let logs = tokio::task::spawn_blocking(move || entries.iter().map(|e| log_info(e)).collect())
        .await
        .map_err(status::task_failed)?;
    Ok(ListLogsResponse { logs })
}
