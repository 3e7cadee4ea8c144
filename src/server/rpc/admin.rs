//! The admin RPCs of named logs: `CreateLog`, `UpdateLog`, `DeleteLog` and `ListLogs`. Their
//! `name` has no default: an empty one is `INVALID_ARGUMENT`, like any invalid name.

use tonic::Status;

use crate::api::v1::{
    CreateLogRequest, CreateLogResponse, DeleteLogRequest, DeleteLogResponse, ListLogsResponse,
    UpdateLogRequest, UpdateLogResponse,
};
use crate::server::handle::Registry;
use crate::server::status;
use crate::server::wire::{log_info, settings};

pub(super) async fn create(
    registry: &Registry,
    request: CreateLogRequest,
) -> Result<CreateLogResponse, Status> {
    status::check_log_name("name", &request.name)?;
    let entry = registry.create(request.name, settings(request.settings)).await?;
    Ok(CreateLogResponse { log: Some(log_info(&entry)) })
}

pub(super) async fn update(
    registry: &Registry,
    request: UpdateLogRequest,
) -> Result<UpdateLogResponse, Status> {
    status::check_log_name("name", &request.name)?;
    let entry = registry.update(request.name, settings(request.settings)).await?;
    Ok(UpdateLogResponse { log: Some(log_info(&entry)) })
}

pub(super) async fn delete(
    registry: &Registry,
    request: DeleteLogRequest,
) -> Result<DeleteLogResponse, Status> {
    status::check_log_name("name", &request.name)?;
    registry.delete(request.name).await?;
    Ok(DeleteLogResponse {})
}

pub(super) async fn list(registry: &Registry) -> Result<ListLogsResponse, Status> {
    let entries = registry.list();
    // Each description takes a log's locks briefly; thousands of them belong off the workers.
    let logs = tokio::task::spawn_blocking(move || entries.iter().map(|e| log_info(e)).collect())
        .await
        .map_err(status::task_failed)?;
    Ok(ListLogsResponse { logs })
}
